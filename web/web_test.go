package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// maxClientBytes is the budget for the client's HTML, CSS and JS together
// ("under 50 KB", read strictly as 50,000 bytes uncompressed).
const maxClientBytes = 50_000

func TestClientSize(t *testing.T) {
	t.Parallel()
	total := 0
	err := fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += int(info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client size: %d bytes", total)
	if total > maxClientBytes {
		t.Errorf("client is %d bytes, budget %d", total, maxClientBytes)
	}
}

// TestNoInlineCode guards the CSP: no inline script or style, no innerHTML.
func TestNoInlineCode(t *testing.T) {
	t.Parallel()
	banned := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "style=", "<style", "onclick=", "eval(", "http://", "https://"}
	err := fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Static(), p)
		if err != nil {
			return err
		}
		for _, b := range banned {
			if strings.Contains(string(data), b) {
				t.Errorf("%s contains %q", p, b)
			}
		}
		if strings.HasSuffix(p, ".html") && strings.Contains(string(data), "<script>") {
			t.Errorf("%s has an inline script", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler()
	get := func(path, inm string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	tests := []struct {
		path, wantType string
		wantCode       int
	}{
		{"/", "text/html; charset=utf-8", 200},
		{"/index.html", "text/html; charset=utf-8", 200},
		{"/main.js", "text/javascript; charset=utf-8", 200},
		{"/style.css", "text/css; charset=utf-8", 200},
		{"/nope.js", "", 404},
		{"/../web.go", "", 404},
	}
	for _, tc := range tests {
		w := get(tc.path, "")
		if w.Code != tc.wantCode {
			t.Errorf("GET %s: code %d, want %d", tc.path, w.Code, tc.wantCode)
			continue
		}
		if tc.wantCode != 200 {
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.wantType)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", tc.path, got)
		}
		etag := w.Header().Get("ETag")
		if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
			t.Errorf("GET %s: ETag %q", tc.path, etag)
		}
		if w2 := get(tc.path, etag); w2.Code != http.StatusNotModified || w2.Body.Len() != 0 {
			t.Errorf("GET %s with If-None-Match: code %d, %d bytes; want 304, empty", tc.path, w2.Code, w2.Body.Len())
		}
		if w3 := get(tc.path, `"other"`); w3.Code != 200 {
			t.Errorf("GET %s with stale ETag: code %d", tc.path, w3.Code)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: code %d", w.Code)
	}
}
