package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The client's budget: what travels (all of static/ gzip -9 as one
// stream) and, so that nothing hides in well-compressing bulk, the raw size.
const (
	maxClientGzip  = 40_000
	maxClientBytes = 160_000
)

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

// TestSubmitStartsDisabled: a form submitted before main.js has attached
// its handler would be a native GET of the page (a reload that drops what
// the user typed), so every submit button starts disabled and render()
// enables it.
func TestSubmitStartsDisabled(t *testing.T) {
	t.Parallel()
	html, err := fs.ReadFile(Static(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tag := range strings.Split(string(html), "<button")[1:] {
		tag, _, _ = strings.Cut(tag, ">")
		if !strings.Contains(tag, `type="submit"`) {
			continue
		}
		n++
		if !strings.Contains(tag, " disabled") {
			t.Errorf("<button%s> is enabled before the script runs", tag)
		}
	}
	if n == 0 {
		t.Fatal("no submit button found in index.html")
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

// TestCompressed: a client that accepts gzip gets the gzip -9 bytes made at
// start-up, one that does not gets the raw file; both decode to the same
// bytes, carry Vary, and keep working ETags of their own.
func TestCompressed(t *testing.T) {
	t.Parallel()
	h := Handler()
	get := func(path, ae, inm string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, p := range []string{"/", "/main.js", "/style.css", "/i18n.js"} {
		raw := get(p, "", "")
		gz := get(p, "br, gzip, deflate", "")
		if raw.Code != 200 || gz.Code != 200 {
			t.Fatalf("GET %s: codes %d, %d", p, raw.Code, gz.Code)
		}
		if ce := raw.Header().Get("Content-Encoding"); ce != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", p, ce)
		}
		if ce := gz.Header().Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("GET %s with gzip: Content-Encoding %q", p, ce)
		}
		for _, w := range []*httptest.ResponseRecorder{raw, gz} {
			if v := w.Header().Get("Vary"); v != "Accept-Encoding" {
				t.Errorf("GET %s: Vary %q", p, v)
			}
		}
		if gz.Body.Len() >= raw.Body.Len() {
			t.Errorf("GET %s: gzip %d bytes, raw %d", p, gz.Body.Len(), raw.Body.Len())
		}
		zr, err := gzip.NewReader(gz.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		dec, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		if !bytes.Equal(dec, raw.Body.Bytes()) {
			t.Errorf("GET %s: decoded gzip differs from the raw body", p)
		}
		re, ge := raw.Header().Get("ETag"), gz.Header().Get("ETag")
		if re == ge || re == "" || ge == "" {
			t.Errorf("GET %s: ETags raw %q gzip %q: want two different ones", p, re, ge)
		}
		if w := get(p, "gzip", ge); w.Code != http.StatusNotModified {
			t.Errorf("GET %s gzip revalidation: %d", p, w.Code)
		}
		if w := get(p, "", re); w.Code != http.StatusNotModified {
			t.Errorf("GET %s raw revalidation: %d", p, w.Code)
		}
	}
	for ae, want := range map[string]bool{
		"gzip": true, "GZIP;q=0.5": true, "x-gzip": true, "*": true, "deflate, *;q=0.1": true,
		"": false, "identity": false, "br": false, "gzip;q=0": false, "gzip;q=0, *": false, "gzip; q=0.000": false,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}

// TestClientGzipSize: what travels, all of static/ gzip -9, stays in budget.
func TestClientGzipSize(t *testing.T) {
	t.Parallel()
	var all bytes.Buffer
	err := fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Static(), p)
		all.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzipped(all.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client: %d bytes raw, %d gzip -9", all.Len(), len(gz))
	if len(gz) > maxClientGzip {
		t.Errorf("client is %d bytes gzip -9, budget %d", len(gz), maxClientGzip)
	}
}
