//go:build linux

package wsloop

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
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echo is a Handler that sends every message back and records the end.
type echo struct {
	c      *Conn
	closed chan error
}

func (e *echo) OnMessage(p []byte) { e.c.Send(append([]byte("echo:"), p...)) }

func (e *echo) OnClose(err error) { e.closed <- err }

// startEcho serves echo handlers from a loop on 127.0.0.1. conns receives
// every handler as it is attached.
func startEcho(t *testing.T, cfg Config) (url string, conns chan *echo) {
	t.Helper()
	loop, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	conns = make(chan *echo, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, pending, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		err = loop.Attach(nc, pending, func(c *Conn) Handler {
			e := &echo{c: c, closed: make(chan error, 1)}
			conns <- e
			return e
		})
		if err != nil {
			t.Errorf("attach: %v", err)
		}
	}))
	t.Cleanup(func() { srv.Close(); loop.Close() })
	return "ws" + strings.TrimPrefix(srv.URL, "http"), conns
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func roundTrip(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != "echo:"+msg {
		t.Fatalf("echo of %.20q: %.30q, %v", msg, got, err)
	}
}

func waitClosed(t *testing.T, e *echo) error {
	t.Helper()
	select {
	case err := <-e.closed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose not called within 10 s")
		return nil
	}
}

func TestEchoAndClientClose(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{ReadLimit: 1 << 20})
	c := dial(t, url)
	e := <-conns
	roundTrip(t, c, "hello")
	roundTrip(t, c, strings.Repeat("large ", 20000)) // 120 KB: many reads, one message
	// The client's ping is answered by the loop.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _, _, _ = c.Read(ctx) }() // Ping needs a reader
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	var ce *CloseError
	if err := waitClosed(t, e); !errors.As(err, &ce) || ce.Code != 1000 || ce.Reason != "bye" {
		t.Fatalf("OnClose got %v, want the client's 1000 bye", err)
	}
}

// An idle connection holds no goroutine: that is the point of the loop.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	url, conns := startEcho(t, Config{})
	c := dial(t, url) // warm up: the loop goroutine exists from here on
	<-conns
	roundTrip(t, c, "warm")
	before := settledGoroutines()

	const n = 50
	raws := make([]net.Conn, n)
	for i := range raws {
		raws[i] = rawUpgrade(t, url, nil)
		<-conns
	}
	// The raw clients hold no goroutines of their own; the test server's
	// handlers have returned.
	if got := settledGoroutines(); got > before+2 {
		t.Fatalf("%d goroutines with %d more idle connections, %d before", got, n, before)
	}
}

func TestServerCloseStatus(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{})
	c := dial(t, url)
	e := <-conns
	e.c.Close(1001, "server shutting down")
	if n := e.c.Send([]byte("late")); n != -1 {
		t.Errorf("Send after Close returned %d, want -1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("client read %v, want status 1001", err)
	}
	var ce *CloseError
	if err := waitClosed(t, e); !errors.As(err, &ce) || ce.Code != 1001 {
		t.Fatalf("OnClose got %v, want 1001", err)
	}
}

func TestProtocolErrorsCloseWithStatus(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{ReadLimit: 1000})
	tests := []struct {
		name  string
		frame []byte
		want  websocket.StatusCode
	}{
		{"oversized", clientFrame(true, opText, make([]byte, 1001), 7), websocket.StatusMessageTooBig},
		{"oversized header only", []byte{0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}, websocket.StatusMessageTooBig},
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, websocket.StatusProtocolError},
		{"reserved bits", clientFrame(true, opText|0x40, []byte("x"), 7), websocket.StatusProtocolError},
	}
	for _, tt := range tests {
		nc := rawUpgrade(t, url, nil)
		e := <-conns
		if _, err := nc.Write(tt.frame); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(nc, hdr); err != nil {
			t.Fatalf("%s: reading the close frame: %v", tt.name, err)
		}
		if hdr[0] != 0x88 || websocket.StatusCode(int(hdr[2])<<8|int(hdr[3])) != tt.want {
			t.Fatalf("%s: got frame % x, want a close frame with %d", tt.name, hdr, tt.want)
		}
		nc.Close() // the client hangs up; the loop finishes the connection
		var ce *CloseError
		if err := waitClosed(t, e); !errors.As(err, &ce) || websocket.StatusCode(ce.Code) != tt.want {
			t.Fatalf("%s: OnClose got %v", tt.name, err)
		}
	}
}

// A peer that stops answering pings is dropped; one that answers stays.
func TestPingDropsSilentPeer(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: 100 * time.Millisecond})
	live := dial(t, url)
	liveEcho := <-conns
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _, _ = live.Read(ctx) }() // answers pings

	silent := rawUpgrade(t, url, nil) // never reads, never answers
	silentEcho := <-conns
	start := time.Now()
	waitClosed(t, silentEcho)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("silent peer dropped after %v, before a ping could go unanswered", d)
	}
	_ = silent
	select {
	case err := <-liveEcho.closed:
		t.Fatalf("live peer dropped: %v", err)
	default:
	}
}

// Loop.Close ends every connection and tells each handler.
func TestLoopCloseEndsConnections(t *testing.T) {
	t.Parallel()
	loop, err := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, pending, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = loop.Attach(nc, pending, func(c *Conn) Handler {
			return &echo{c: c, closed: make(chan error, 1)}
		})
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	var clients []*websocket.Conn
	for range 3 {
		clients = append(clients, dial(t, url))
	}
	loop.Close()
	for _, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, _, err := c.Read(ctx); err == nil {
			t.Error("client still connected after Loop.Close")
		}
		cancel()
	}
}

// settledGoroutines returns the number of goroutines once it has stopped
// falling: handlers that are returning are waited for, not slept for.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for stable := 0; stable < 20; {
		runtime.Gosched()
		time.Sleep(time.Millisecond) // a poll of a state
		if m := runtime.NumGoroutine(); m < n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
	return n
}
