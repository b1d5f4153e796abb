package server

import (
	"net/http"
	"runtime/debug"
)

// recoverer turns a handler's panic into a 500 and one log line. It
// replaces chi's middleware.Recoverer, which writes the stack straight to
// os.Stderr: the event loop runs WebSocket upgrades through this router
// on the goroutine that serves every connection, and a stderr that drains
// slowly would stop them all. s.log is queued (server/logqueue).
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's own way to abort
				panic(v)
			}
			s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if r.Header.Get("Connection") != "Upgrade" {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
