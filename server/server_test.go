package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	return startWatched(t, cfg, nil)
}

// startWatched is start with a ConnState hook on net/http's side.
func startWatched(t *testing.T, cfg Config, connState func(net.Conn, http.ConnState)) (*Server, *httptest.Server) {
	t.Helper()
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// As cmd/p2pchat serves: the event loop accepts, and only what is not
	// a WebSocket request reaches net/http.
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.ConnState = connState
	ln, err := s.Listener(ts.Listener)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})
	return s, ts
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	_, ts := start(t, Config{})
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	_, ts := start(t, Config{})
	for _, path := range []string{"/", "/healthz", "/no-such-file"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q allows inline code or another origin", path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", path, got)
		}
		if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy = %q", path, got)
		}
	}
}

func TestIndexServed(t *testing.T) {
	t.Parallel()
	_, ts := start(t, Config{})
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<title>") {
		t.Fatalf("GET /: %d %.100q", resp.StatusCode, body)
	}
}

// dialOrigin opens /ws with the given Origin header.
func dialOrigin(t *testing.T, ts *httptest.Server, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func TestWebSocketOriginCheck(t *testing.T) {
	t.Parallel()
	_, strict := start(t, Config{})
	_, open := start(t, Config{AllowOrigins: []string{"chat.example.org", "*.example.net"}})
	tests := []struct {
		name   string
		ts     *httptest.Server
		origin string
		ok     bool
	}{
		{"same origin", strict, strict.URL, true},
		{"no origin header (non-browser client)", strict, "", true},
		{"foreign origin refused", strict, "http://evil.example", false},
		{"listed origin", open, "https://chat.example.org", true},
		{"pattern origin", open, "https://a.example.net", true},
		{"unlisted origin", open, "https://evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, resp, err := dialOrigin(t, tt.ts, tt.origin)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, msg, err := conn.Read(ctx); err != nil || !strings.Contains(string(msg), `"hello"`) {
					t.Fatalf("no hello: %q %v", msg, err)
				}
				return
			}
			if err == nil {
				t.Fatal("cross-origin WebSocket accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("want 403, got %v", resp)
			}
		})
	}
}

func TestShutdownClosesWebSockets(t *testing.T) {
	t.Parallel()
	s, ts := start(t, Config{})
	conn, _, err := dialOrigin(t, ts, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := conn.Read(ctx); err != nil { // hello
		t.Fatal(err)
	}
	go func() { _ = s.Shutdown(ctx) }()
	_, _, err = conn.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("close status %v (%v), want 1001", got, err)
	}
	// New connections are turned away too.
	conn2, _, err := dialOrigin(t, ts, "")
	if err == nil {
		_, _, err = conn2.Read(ctx)
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Fatalf("new connection after shutdown: %v", err)
		}
	}
}

// The event loop serves plain-HTTP WebSockets unless NoEventLoop says
// otherwise; either way a client gets its hello.
func TestEventLoopSwitch(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		s, ts := start(t, Config{NoEventLoop: off})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
		if err != nil {
			cancel()
			t.Fatalf("NoEventLoop=%v: dial: %v", off, err)
		}
		_, msg, err := c.Read(ctx)
		cancel()
		c.CloseNow()
		if err != nil || !strings.Contains(string(msg), `"type":"hello"`) {
			t.Fatalf("NoEventLoop=%v: first message %q, %v", off, msg, err)
		}
		want := !off && runtime.GOOS == "linux" // epoll only there
		if got := s.eventLoop() != nil; got != want {
			t.Errorf("NoEventLoop=%v: event loop running: %v, want %v", off, got, want)
		}
	}
}

// Where the event loop runs, it accepts and upgrades WebSockets itself:
// net/http is given only the other requests.
func TestWebSocketsBypassNetHTTP(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the event loop needs epoll")
	}
	var seen atomic.Int32
	_, ts := startWatched(t, Config{}, func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			seen.Add(1)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), `"type":"hello"`) {
		t.Fatalf("first message %q, %v", msg, err)
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("net/http was given %d connections for one WebSocket", n)
	}
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := seen.Load(); resp.StatusCode != http.StatusOK || n != 1 {
		t.Fatalf("healthz %d; net/http was given %d connections, want 1", resp.StatusCode, n)
	}
}

func TestHealthzNotReady(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	_, ts := start(t, Config{Health: func() error {
		if down.Load() {
			return errors.New("nats unreachable")
		}
		return nil
	}})
	get := func() (int, string) {
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	down.Store(true)
	if code, body := get(); code != http.StatusServiceUnavailable || body != "not ready: nats unreachable\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
}
