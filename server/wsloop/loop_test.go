//go:build linux

package wsloop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

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
func (e *echo) OnClose(err error)  { e.closed <- err }

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

// rawUpgrade opens a WebSocket with a hand-written request, followed in
// the same write by extra bytes, and reads the 101 response.
func rawUpgrade(t *testing.T, url string, extra []byte) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(url, "ws://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), extra...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &bufConn{Conn: nc, br: br} // frames may have come with the response
}

// bufConn reads what the response reader buffered first.
type bufConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// Bytes sent right behind the handshake request reach the handler even
// though no more data ever arrives to wake the loop.
func TestBytesBehindTheHandshake(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{})
	nc := rawUpgrade(t, url, clientFrame(true, opText, []byte("early"), 0x01020304))
	<-conns
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := appendFrame(nil, opText, []byte("echo:early"))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != string(want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
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

// A client that never reads: its queue grows, and once the socket has
// taken nothing for the write timeout the connection ends, while another
// connection keeps working.
func TestStuckWriterTimesOut(t *testing.T) {
	t.Parallel()
	// The timeout leaves room for a slow machine: the queue must grow to
	// 100 messages before the socket has taken nothing for that long.
	url, conns := startEcho(t, Config{WriteTimeout: time.Second, PingInterval: time.Hour})
	_ = rawUpgrade(t, url, nil)
	stuck := <-conns
	other := dial(t, url)
	<-conns
	msg := make([]byte, 32<<10)
	most := 0
	for i := 0; i < 2000 && most < 100*len(msg); i++ {
		n := stuck.c.Send(msg)
		if n < 0 {
			// On a loaded machine the write timeout can pass while this
			// loop still sends: the end came, after output had waited.
			break
		}
		most = max(most, n)
	}
	if most < 10*len(msg) {
		t.Fatalf("64 MB sent to a client that does not read, and at most %d bytes waiting", most)
	}
	roundTrip(t, other, "still here")
	waitClosed(t, stuck)
	if n := stuck.c.Send(msg); n != -1 {
		t.Fatalf("Send after the end returned %d", n)
	}
}

// Send reports the bytes still waiting for the socket: once the client
// has read what was queued, a Send counts only its own frame again.
func TestSendCountsBytesStillWaiting(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	c := dial(t, url)
	e := <-conns
	msg := []byte("counted")
	frame := len(appendFrame(nil, opText, msg))
	for i := range 3 {
		if n := e.c.Send(msg); n != frame {
			t.Fatalf("send %d: %d bytes waiting, want %d (this frame only)", i, n, frame)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, got, err := c.Read(ctx)
		cancel()
		if err != nil || string(got) != string(msg) {
			t.Fatalf("read %q, %v", got, err)
		}
	}
}

// A peer that floods pings and never reads gets at most one pong queued:
// it cannot make the server buffer without bound.
func TestPingFloodDoesNotGrowOutput(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	nc := rawUpgrade(t, url, nil)
	e := <-conns
	ping := clientFrame(true, opPing, make([]byte, 125), 0x0A0B0C0D)
	burst := bytes.Repeat(ping, 1000)
	for range 100 { // 13 MB of pings, more than both socket buffers hold
		_ = nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(burst); err != nil {
			t.Fatalf("writing pings: %v", err)
		}
	}
	// Wait until the loop has read every ping: nothing is left in flight
	// from the client or unread at the server.
	deadline := time.Now().Add(10 * time.Second)
	for unsent(t, nc) > 0 || unread(t, e.c.fd) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop never read the pings")
		}
		time.Sleep(time.Millisecond) // a poll of a state
	}
	e.c.mu.Lock()
	pending := len(e.c.out) - e.c.written
	e.c.mu.Unlock()
	if pending > 2*(maxControlPayload+2) {
		t.Fatalf("%d bytes of pongs queued for a peer that does not read", pending)
	}
}

// Sends from many goroutines at once all arrive, each goroutine's in
// order: no message is lost to the hand-over between senders and the
// loop, which alone writes (a lost wake-up would stall the reader).
func TestConcurrentSendsAllArrive(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{})
	c := dial(t, url)
	e := <-conns
	const senders, each = 8, 2000
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if e.c.Send([]byte(strconv.Itoa(g)+":"+strconv.Itoa(i))) < 0 {
					t.Errorf("sender %d: message %d refused", g, i)
					return
				}
				if i%100 == 0 {
					runtime.Gosched() // let the loop flush in between
				}
			}
		}()
	}
	next := make([]int, senders)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range senders * each {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v messages: %v", next, err)
		}
		g, i, _ := strings.Cut(string(msg), ":")
		gi, _ := strconv.Atoi(g)
		ii, _ := strconv.Atoi(i)
		if ii != next[gi] {
			t.Fatalf("sender %d: got message %d, want %d", gi, ii, next[gi])
		}
		next[gi]++
	}
	wg.Wait()

	// A send from another goroutine while the loop sleeps wakes it: the
	// message does not wait for the loop's next tick (1 s here).
	for i := range 3 {
		time.Sleep(50 * time.Millisecond) // the loop is back in epoll_wait
		start := time.Now()
		go e.c.Send([]byte("wake"))
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "wake" {
			t.Fatalf("wake-up %d: %q, %v", i, msg, err)
		}
		if d := time.Since(start); d > 800*time.Millisecond {
			t.Fatalf("wake-up %d: a send from another goroutine took %v, as if it waited for a tick", i, d)
		}
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

// TestHandshakeLeavesNothingBehind churns connections through Accept and
// Attach and checks that one garbage collection frees what they held.
// coder/websocket's Conn, built by the handshake and not used, has a
// finalizer: unless Accept closes it, it and its buffers survive a
// collection cycle, and under churn the heap grew by ~2 KiB for every
// connection of the last cycle. Not parallel: it reads the heap's size.
func TestHandshakeLeavesNothingBehind(t *testing.T) {
	url, conns := startEcho(t, Config{})
	churn := func(n int) {
		for range n {
			// Not dial: its cleanup would hold every client until the end.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, _, err := websocket.Dial(ctx, url, nil)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c, "hi")
			e := <-conns
			c.Close(websocket.StatusNormalClosure, "")
			waitClosed(t, e)
		}
	}
	churn(20) // pools and the loop's tables reach their size
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapObjects
	}
	before := heap()
	const n = 300
	churn(n)
	after := heap()
	per := (float64(after) - float64(before)) / n
	t.Logf("%.1f heap objects per closed connection survive a collection", per)
	if per > 10 {
		t.Errorf("%.1f heap objects per closed connection survive a collection (%d before, %d after), want ≤ 10", per, before, after)
	}
}

// The 101 response is held back by Accept and written by Attach in one
// system call with the greeting: until Attach the client has nothing, and
// then its first read holds the whole response and the first frame.
func TestHandshakeResponseGoesOutWithGreeting(t *testing.T) {
	t.Parallel()
	loop, err := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	accepted, attach := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Kept", "yes") // headers set before the upgrade go out with it
		nc, pending, err := Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		close(accepted)
		<-attach
		_ = loop.Attach(nc, pending, func(c *Conn) Handler {
			c.Send([]byte("hello"))
			return &echo{c: c, closed: make(chan error, 1)}
		})
	}))
	t.Cleanup(func() { srv.Close(); loop.Close() })

	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's example
	req := "GET / HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	<-accepted
	buf := make([]byte, 4096)
	_ = nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := nc.Read(buf); n > 0 || err == nil {
		t.Fatalf("client got %q before Attach", buf[:n])
	}
	close(attach)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := nc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(bytes.NewReader(buf[:n]))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the 101 response from %q: %v", buf[:n], err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		resp.Header.Get("X-Kept") != "yes" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	frame, _ := io.ReadAll(br)
	if want := "\x81\x05hello"; string(frame) != want {
		t.Fatalf("first read after the response holds %q, want the greeting frame %q", frame, want)
	}
}

// A tick pass sends due pings a chunk at a time, so that connections that
// came due together cannot hold the loop for one long stretch.
func TestTickPingsInChunks(t *testing.T) {
	t.Parallel()
	const n = 600
	l := &Loop{cfg: Config{}.withDefaults(), start: time.Now(), lfd: -1, newLFD: -1}
	peers := make([]int, n)
	for i := range n {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
		l.byFD = append(l.byFD, &Conn{loop: l, fd: fds[0], state: stateOpen}) // ping due at once
		peers[i] = fds[1]
	}
	pinged := func() int {
		count := 0
		for _, fd := range peers {
			var b [16]byte
			if n, _ := syscall.Read(fd, b[:]); n > 0 {
				count++
			}
		}
		return count
	}
	l.startTick()
	total := 0
	for _, want := range []int{tickChunk, tickChunk, n - 2*tickChunk} {
		l.tickSome(time.Millisecond, tickChunk)
		if got := pinged(); got != want {
			t.Fatalf("%d connections pinged by one chunk, want %d", got, want)
		}
		total += want
	}
	if len(l.snap) != 0 || total != n {
		t.Fatalf("%d connections left in the pass after pinging %d", len(l.snap), total)
	}
}

// A message followed in the same read by ten pings: the pongs may skip
// pings, but only in favour of the most recent one (RFC 6455 5.5.3), so
// the last ping is always answered, and nothing is answered twice.
func TestLatestPingIsAnswered(t *testing.T) {
	t.Parallel()
	url, conns := startEcho(t, Config{PingInterval: time.Hour})
	in := clientFrame(true, opText, []byte("m"), 1)
	for i := range 10 {
		in = append(in, clientFrame(true, opPing, []byte{'0' + byte(i)}, 2)...)
	}
	in = append(in, clientFrame(true, opText, []byte("end"), 3)...)
	nc := rawUpgrade(t, url, in)
	<-conns
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	last, echoes := -1, 0
	for last != 9 || echoes < 2 {
		var h [2]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			t.Fatalf("after pong %d and %d echoes: %v", last, echoes, err)
		}
		p := make([]byte, h[1]&0x7f)
		if _, err := io.ReadFull(nc, p); err != nil {
			t.Fatal(err)
		}
		switch h[0] & 0x0f {
		case opPong:
			if n := int(p[0] - '0'); len(p) != 1 || n <= last {
				t.Fatalf("pong %q after pong %d", p, last)
			} else {
				last = n
			}
		case opText:
			echoes++
		}
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

// unread is how many bytes wait in fd's receive queue (FIONREAD).
func unread(t *testing.T, fd int) int {
	t.Helper()
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("FIONREAD: %v", errno)
	}
	return int(n)
}

// unsent is how many bytes nc has not had acknowledged yet (SIOCOUTQ).
func unsent(t *testing.T, nc net.Conn) int {
	t.Helper()
	if bc, ok := nc.(*bufConn); ok {
		nc = bc.Conn
	}
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 {
		t.Fatalf("SIOCOUTQ: %v %v", err, errno)
	}
	return int(n)
}
