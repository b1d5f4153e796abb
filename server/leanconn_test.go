package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestLeanConnReads(t *testing.T) {
	t.Parallel()
	s, peer := tcpPair(t)
	lc := newLeanConn(s, []byte("pre"))
	if lc.raw == nil {
		t.Fatal("a TCP connection must use the raw read path")
	}
	// Bytes buffered by net/http come first, and small reads get one byte
	// at a time so that no layer above holds unread bytes.
	if err := lc.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, bufioMin)
	if n, err := lc.Read(p); n != 1 || err != nil || p[0] != 'p' {
		t.Fatalf("small read: %d %v %q", n, err, p[:n])
	}
	big := make([]byte, 100)
	if n, err := lc.Read(big); n != 2 || string(big[:n]) != "re" || err != nil {
		t.Fatalf("large read of the pending rest: %d %v %q", n, err, big[:n])
	}
	if lc.rbuf != nil {
		t.Error("read buffer kept after it was drained")
	}

	// Then the socket; WaitReadable returns once data is there and leaves
	// it for Read.
	msg := bytes.Repeat([]byte("x"), 5000)
	if _, err := peer.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := lc.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for len(got) < len(msg) {
		n, err := lc.Read(big)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, big[:n]...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, want the %d sent", len(got), len(msg))
	}
	peer.Close()
	if _, err := lc.Read(big); !errors.Is(err, io.EOF) {
		t.Fatalf("after the peer closed: %v, want EOF", err)
	}
}

func TestLeanConnCorkedWritesGoOutTogether(t *testing.T) {
	t.Parallel()
	s, peer := tcpPair(t)
	lc := newLeanConn(s, nil)
	lc.Cork()
	for _, part := range []string{"one,", "two,", "three"} {
		if _, err := lc.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is sent while corked.
	_ = peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer read %d bytes (%v) before Flush", n, err)
	}
	if err := lc.Flush(time.Second); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	var got []byte
	for len(got) < len("one,two,three") {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "one,two,three" {
		t.Fatalf("peer got %q", got)
	}
	// Uncorked, writes go straight out.
	if _, err := lc.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "now" {
		t.Fatalf("uncorked write: %q %v", buf[:n], err)
	}
}

// TestLeanConnFlushTimesOut checks that a peer that stops reading cannot
// hold a writer forever.
func TestLeanConnFlushTimesOut(t *testing.T) {
	t.Parallel()
	s, _ := tcpPair(t)
	lc := newLeanConn(s, nil)
	chunk := make([]byte, 1<<20)
	start := time.Now()
	var err error
	for i := 0; i < 64 && err == nil; i++ { // far beyond the socket buffers
		lc.Cork()
		_, _ = lc.Write(chunk)
		err = lc.Flush(100 * time.Millisecond)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("flush to a peer that never reads: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("flush took %v", d)
	}
}

// TestLeanConnNotASocket checks the fallback for connections without a
// file descriptor (TLS): reads pass through, WaitReadable does not block.
func TestLeanConnNotASocket(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lc := newLeanConn(a, nil)
	if err := lc.WaitReadable(); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = b.Write([]byte("hello")) }()
	p := make([]byte, bufioMin)
	if n, err := lc.Read(p); err != nil || string(p[:n]) != "hello" {
		t.Fatalf("read %q %v", p[:n], err)
	}
}

// TestLeanConnLargeReadThenWait checks that data left in the socket by a
// large direct read is found by the next WaitReadable (no readiness event
// announces it).
func TestLeanConnLargeReadThenWait(t *testing.T) {
	t.Parallel()
	s, peer := tcpPair(t)
	lc := newLeanConn(s, nil)
	if _, err := peer.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := lc.WaitReadable(); err != nil { // drains the socket
		t.Fatal(err)
	}
	if n, err := lc.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read %d %v", n, err)
	}
	msg := bytes.Repeat([]byte("y"), 3*readChunk)
	go func() { _, _ = peer.Write(msg) }()
	got := 0
	big := make([]byte, readChunk)
	for got < readChunk { // one large direct read, leaving the rest
		n, err := lc.Read(big[:readChunk-got])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	done := make(chan error, 1)
	go func() { done <- lc.WaitReadable() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitReadable blocked with data in the socket")
	}
}

// TestLeanConnDataBeforeWait checks that a message which arrived while the
// reader was busy (its readiness already reported) is not left waiting for
// the next one.
func TestLeanConnDataBeforeWait(t *testing.T) {
	t.Parallel()
	s, peer := tcpPair(t)
	lc := newLeanConn(s, nil)
	for i := range 20 {
		if _, err := peer.Write([]byte{'a'}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // let the poller see it first
		done := make(chan error, 1)
		go func() { done <- lc.WaitReadable() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: WaitReadable blocked with data in the socket", i)
		}
		if n, err := lc.Read(make([]byte, 1)); n != 1 || err != nil {
			t.Fatalf("read %d %v", n, err)
		}
	}
}

// TestLeanConnCloseSendsCorkedFrames checks that frames collected while
// corked (a close frame written as the peer closed) still go out when the
// connection is closed before the writer's Flush.
func TestLeanConnCloseSendsCorkedFrames(t *testing.T) {
	t.Parallel()
	s, peer := tcpPair(t)
	lc := newLeanConn(s, nil)
	lc.Cork()
	if _, err := lc.Write([]byte("data+close")); err != nil {
		t.Fatal(err)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(peer)
	if err != nil || string(got) != "data+close" {
		t.Fatalf("peer got %q, %v; want the corked bytes, then EOF", got, err)
	}
	if err := lc.Flush(time.Second); err != nil {
		t.Errorf("Flush after Close with nothing left: %v", err)
	}
}

// TestWebSocketOverTLS runs a session through the HTTPS server, where the
// hijacked connection is a tls.Conn: leanConn then only batches writes.
func TestWebSocketOverTLS(t *testing.T) {
	t.Parallel()
	s := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewTLSServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})
	dial := func() *websocket.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(ts.URL, "https")+"/ws",
			&websocket.DialOptions{HTTPClient: ts.Client()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		c.SetReadLimit(1 << 20)
		readType(t, c, "hello")
		return c
	}
	alice, bob := dial(), dial()
	send(t, alice, `{"type":"login","name":"alice"}`)
	readType(t, alice, "login")
	send(t, bob, `{"type":"login","name":"bob"}`)
	readType(t, bob, "login")
	big := strings.Repeat("x", 40<<10) // larger than any buffer on the way
	send(t, alice, `{"type":"offer","name":"bob","offer":{"sdp":"`+big+`"}}`)
	if msg := readType(t, bob, "offer"); !strings.Contains(msg, big) {
		t.Fatalf("offer arrived cut: %d bytes", len(msg))
	}
	for i := range 50 {
		send(t, bob, `{"type":"candidate","name":"alice","candidate":{"i":`+strconv.Itoa(i)+`}}`)
	}
	for i := range 50 {
		if msg := readType(t, alice, "candidate"); !strings.Contains(msg, `{"i":`+strconv.Itoa(i)+`}`) {
			t.Fatalf("candidate %d: %s", i, msg)
		}
	}
	if err := alice.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close handshake over TLS: %v", err)
	}
}
