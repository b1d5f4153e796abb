// Package web embeds the browser client and serves it.
//
// The client is plain HTML, CSS and ES modules with no build step, so what is
// in static/ is exactly what the browser runs. Embedding it keeps p2pchat a
// single binary that works on a LAN with no internet access.
//
// # Caching
//
// File names carry no content hash (there is no build step to add one), so
// every response says Cache-Control: no-cache: the browser keeps its copy
// but asks each time whether it is still current. The ETag is a hash of the
// file's content computed once at start-up, so that question costs a 304
// with no body, and a new binary is picked up on the next page load. The
// files are small (about 50 KB together), which makes revalidation cheap.
//
// # Compression
//
// Each file is gzipped once, at start-up, at the best compression level:
// the client's budget is counted in gzip -9 bytes because that is what
// travels. A client whose Accept-Encoding admits gzip gets those bytes with
// Content-Encoding: gzip; any other gets the raw file. Every response says
// Vary: Accept-Encoding, so a shared cache keeps the two apart, and the two
// encodings have different ETags (a strong ETag names exact bytes).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

// Static returns the client's files, rooted at static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory exists
	}
	return sub
}

// file is one embedded file ready to serve.
type file struct {
	name string
	data []byte
	etag string
	gz   []byte // data gzipped, nil if that would not be smaller
}

// Handler serves the embedded client: "/" is index.html, other paths are
// files of static/ (no directory listings). Responses carry a strong ETag
// and Cache-Control: no-cache, and conditional requests get 304.
func Handler() http.Handler {
	byPath, err := load(Static())
	if err != nil {
		panic(err) // the embedded files are part of the binary; they cannot be unreadable
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if p == "/" {
			p = "/index.html"
		}
		f, ok := byPath[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Vary", "Accept-Encoding")
		body, etag := f.data, f.etag
		if f.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", etag)
		// ServeContent answers If-None-Match with 304 and sets
		// Content-Type from the extension (.js is text/javascript, which
		// module scripts require under nosniff).
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
	})
}

// load reads every file of fsys and computes its ETag.
func load(fsys fs.FS) (map[string]file, error) {
	out := make(map[string]file)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("reading embedded %s: %w", p, err)
		}
		sum := sha256.Sum256(data)
		gz, err := gzipped(data)
		if err != nil {
			return fmt.Errorf("compressing embedded %s: %w", p, err)
		}
		out["/"+p] = file{
			name: path.Base(p),
			data: data,
			etag: `"` + hex.EncodeToString(sum[:12]) + `"`,
			gz:   gz,
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading embedded client: %w", err)
	}
	return out, nil
}

// gzipped returns data compressed at the best level, or nil if that is
// not smaller than data.
func gzipped(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if b.Len() >= len(data) {
		return nil, nil
	}
	return b.Bytes(), nil
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip: it
// names gzip (or x-gzip) with a q-value above zero, or does not name it
// and admits "*".
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					f = 0
				}
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzipQ = max(gzipQ, q)
		case "*":
			starQ = max(starQ, q)
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
