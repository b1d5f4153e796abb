package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A panicking handler is answered with 500 even while the log output is
// stuck: the panic is logged through the queue.
func TestRecovererDoesNotWaitForTheLog(t *testing.T) {
	t.Parallel()
	h := &stuckLog{Handler: slog.NewTextHandler(io.Discard, nil), entered: make(chan struct{}), release: make(chan struct{})}
	s := New(Config{}, slog.New(h))
	defer close(h.release)
	rec := httptest.NewRecorder()
	s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	<-h.entered // and it was logged
}
