//go:build linux

package wsloop

import (
	"bufio"
	"bytes"
	"context"
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
)

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
