package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// testServer is the real p2pchat server on a fixed loopback address that
// can be stopped and started again (to test reconnects).
type testServer struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *server.Server
	http *http.Server
}

// startServer starts a server on a free loopback port; it stops at cleanup.
func startServer(t *testing.T) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{t: t, addr: ln.Addr().String()}
	s.serve(ln)
	t.Cleanup(s.stop)
	return s
}

// URL returns the page's address, with query (e.g. "ring=2") if not empty.
func (s *testServer) URL(query string) string {
	u := "http://" + s.addr + "/"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (s *testServer) serve(ln net.Listener) {
	cfg := signaling.DefaultConfig()
	// No STUN: tests must never try the internet; host candidates on
	// loopback connect the two browsers.
	cfg.ICE = signaling.StaticICE{}
	cfg.PresenceInterval = 200 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New(server.Config{Signaling: cfg}, log)
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv, s.http = srv, hs
	s.mu.Unlock()
	// As cmd/p2pchat does: the event loop accepts, and upgrades
	// WebSocket requests without net/http.
	ln, err := srv.Listener(ln)
	if err != nil {
		s.t.Fatal(err)
	}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("serve: %v", err)
		}
	}()
}

// stop closes every WebSocket (status 1001, as a real restart does) and the
// listener. It is safe to call twice.
func (s *testServer) stop() {
	s.mu.Lock()
	srv, hs := s.srv, s.http
	s.srv, s.http = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = hs.Shutdown(ctx)
}

// restart starts a fresh server (empty registry) on the same address.
func (s *testServer) start() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}
