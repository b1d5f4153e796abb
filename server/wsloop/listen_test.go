//go:build linux

package wsloop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// listening is a loop that accepts on 127.0.0.1 (Listen), with net/http
// serving what the loop hands over.
type listening struct {
	loop     *Loop
	addr     string
	conns    chan *echo
	httpSeen atomic.Int32 // connections net/http was given
	handoff  net.Listener
}

// startListening serves "/" with a page and "/ws" with echo WebSockets.
// A foreign Origin is refused with 403, as server.Server does.
func startListening(t testing.TB, cfg Config) *listening {
	t.Helper()
	loop, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &listening{loop: loop, addr: ln.Addr().String(), conns: make(chan *echo, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "page") })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "ws")
		nc, pending, err := Accept(w, r, nil) // writes 403 for a foreign origin
		if err != nil {
			return
		}
		_ = loop.Attach(nc, pending, func(c *Conn) Handler {
			e := &echo{c: c, closed: make(chan error, 1)}
			c.Send([]byte("hello " + r.RemoteAddr[:strings.LastIndexByte(r.RemoteAddr, ':')]))
			s.conns <- e
			return e
		})
	})
	s.handoff, err = loop.Listen(ln, mux)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.httpSeen.Add(1)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(s.handoff) }()
	t.Cleanup(func() {
		_ = hs.Shutdown(context.Background())
		// net.ErrClosed: the test closed the listener under Serve.
		if err := <-done; !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
		loop.Close()
	})
	return s
}

// upgradeRequest is a WebSocket request for /ws with extra header lines.
func upgradeRequest(host, extra string) string {
	return "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// readFrame reads one unmasked server frame of up to 125 bytes.
func readFrame(t *testing.T, r io.Reader) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	p := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return string(p)
}

// A WebSocket request is served by the loop from accept to the echo,
// without net/http; other requests go to net/http on the same port.
func TestListenUpgradesWithoutNetHTTP(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	c := dial(t, "ws://"+s.addr+"/ws")
	e := <-s.conns
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "hello 127.0.0.1" {
		t.Fatalf("greeting %q, %v: RemoteAddr must be the TCP peer", msg, err)
	}
	roundTrip(t, c, "hi")
	if n := s.httpSeen.Load(); n != 0 {
		t.Fatalf("net/http was given %d connections for a WebSocket", n)
	}
	c.Close(1000, "")
	waitClosed(t, e)

	resp, err := http.Get("http://" + s.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "page" || s.httpSeen.Load() != 1 {
		t.Fatalf("page %q; net/http saw %d connections, want 1", body, s.httpSeen.Load())
	}
}

// upgradeInParts dials addr, writes parts with a pause between them, and
// reads a 101 response; the reader holds what came after it.
func upgradeInParts(t *testing.T, addr string, parts ...[]byte) *bufio.Reader {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	for i, part := range parts {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := nc.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Handler") != "ws" {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got := readFrame(t, br); got != "hello 127.0.0.1" {
		t.Fatalf("greeting %q", got)
	}
	return br
}

// A request head that arrives in pieces, with a frame right behind it,
// is put together; the frame reaches the handler.
func TestListenHeadInPieces(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	req := []byte(upgradeRequest(s.addr, ""))
	req = append(req, clientFrame(true, opText, []byte("early"), 0x01020304)...)
	br := upgradeInParts(t, s.addr, req[:7], req[7:60], req[60:])
	if got := readFrame(t, br); got != "echo:early" {
		t.Fatalf("echo %q", got)
	}
	if n := s.httpSeen.Load(); n != 0 {
		t.Fatalf("net/http was given %d connections", n)
	}
}

// The handler's refusal (403 for a foreign origin) is written as it
// wrote it, and the connection is closed after it.
func TestListenRefusalIsAnsweredAndClosed(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, upgradeRequest(s.addr, "Origin: http://evil.example\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(nc) // ends only if the server closes
	if err != nil {
		t.Fatalf("reading the refusal: %v (got %q)", err, all)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
	if err != nil {
		t.Fatalf("parsing %q: %v", all, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !resp.Close || resp.Header.Get("X-Handler") != "ws" ||
		!strings.Contains(string(body), "not authorized") {
		t.Fatalf("got %d close=%v %v %q", resp.StatusCode, resp.Close, resp.Header, body)
	}
	if n := s.httpSeen.Load(); n != 0 {
		t.Fatalf("net/http was given %d connections", n)
	}
}

// A head longer than the loop parses goes to net/http, bytes and all,
// and the WebSocket is still opened (the usual way, through Accept).
func TestListenHandsLongHeadsToNetHTTP(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	cookie := "Cookie: c=" + strings.Repeat("x", headLimit+100) + "\r\n"
	upgradeInParts(t, s.addr, []byte(upgradeRequest(s.addr, cookie)))
	if n := s.httpSeen.Load(); n != 1 {
		t.Fatalf("net/http was given %d connections, want 1", n)
	}
}

// A connection that never finishes its request head is closed after
// HeaderTimeout.
func TestListenHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{HeaderTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want the server to hang up", n, err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("closed after %v, before the timeout", waited)
	}
}

// Closing the listener net/http serves stops the loop from accepting.
func TestListenCloseStopsAccepting(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	if err := s.handoff.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.handoff.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			return // refused: nobody listens
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 5 s after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Accepted sockets have Nagle's algorithm off, as Go's own would: set on
// the listening socket, the option is inherited.
func TestListenConnectionsHaveNoDelay(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	dial(t, "ws://"+s.addr+"/ws")
	e := <-s.conns
	v, err := syscall.GetsockoptInt(e.c.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	if err != nil || v == 0 {
		t.Fatalf("TCP_NODELAY = %d, %v; want it on", v, err)
	}
}

// Out of file descriptors, the loop stops accepting instead of spinning on
// the listening socket, and takes the waiting connection once there is
// room again. Not parallel: it lowers the process's open-file limit.
func TestListenRecoversFromDescriptorExhaustion(t *testing.T) {
	s := startListening(t, Config{})
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	restore := func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved) }
	t.Cleanup(restore)

	// The lowest free descriptor goes to the client's socket; with the
	// limit just above it, the server's accept finds none.
	probe, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(probe)
	low := saved
	low.Cur = uint64(probe) + 1
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		restore()
		t.Fatalf("dial with the limit lowered: %v", err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, upgradeRequest(s.addr, "")); err != nil {
		restore()
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := nc.Read(make([]byte, 1)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		restore()
		t.Fatalf("read %d, %v while the server had no descriptor to accept with", n, err)
	}
	restore()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after the limit was raised: %v %v", resp, err)
	}
}

// Only a plain WebSocket request is served by the loop; anything else, or
// anything unusual, goes to net/http.
func TestIsUpgrade(t *testing.T) {
	t.Parallel()
	const ws = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	tests := []struct {
		name, head string
		want       bool
	}{
		{"plain", "GET /ws HTTP/1.1\r\nHost: h\r\n" + ws, true},
		{"token lists and case", "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: keep-alive, upgrade\r\n", true},
		{"not an upgrade", "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n", false},
		{"another protocol", "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n", false},
		{"POST", "POST /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n" + ws, false},
		{"with a body", "GET /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n" + ws, false},
		{"HTTP/1.0", "GET /ws HTTP/1.0\r\nHost: h\r\n" + ws, false},
		{"no host", "GET /ws HTTP/1.1\r\n" + ws, false},
	}
	for _, tt := range tests {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.head + "\r\n")))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := isUpgrade(r); got != tt.want {
			t.Errorf("%s: isUpgrade = %v, want %v", tt.name, got, tt.want)
		}
	}
}
