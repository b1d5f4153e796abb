//go:build linux

package wsloop

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenOpen starts a loop that accepts on 127.0.0.1 and attaches every
// WebSocket request with open; it returns the address.
func listenOpen(t *testing.T, open func(*Conn) Handler) string {
	return listenOpenHook(t, open, nil)
}

// listenOpenHook is listenOpen with the loop's afterStart hook.
func listenOpenHook(t *testing.T, open func(*Conn) Handler, afterStart func(*Conn)) string {
	t.Helper()
	loop, err := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	loop.afterStart = afterStart // before the loop accepts anything
	t.Cleanup(loop.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if nc, pending, err := Accept(w, r, nil); err == nil {
			_ = loop.Attach(nc, pending, open)
		}
	})
	hl, err := loop.Listen(ln, ws)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hl.Close() })
	return ln.Addr().String()
}

// upgradeRaw opens a WebSocket on addr over a plain TCP connection with
// a deadline, and returns it with a reader positioned after the 101.
func upgradeRaw(t *testing.T, addr string, deadline time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(nc, upgradeRequest("h", "")); err != nil {
		nc.Close()
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc, br
}

// A message queued while the loop attaches a connection it accepted, after
// the loop's first write and before the connection is registered, goes
// out, and so do the ones after it: it once only marked the connection,
// which was then never listed for output. The hook puts a Send exactly
// there; the race it stands for is another goroutine's Send.
func TestListenAttachRacesWithSend(t *testing.T) {
	t.Parallel()
	attached := make(chan *Conn, 1)
	addr := listenOpenHook(t, func(c *Conn) Handler { return nopHandler{} }, func(c *Conn) {
		c.Send([]byte("in the window"))
		attached <- c
	})
	nc, br := upgradeRaw(t, addr, 5*time.Second)
	defer nc.Close()
	if got := readFrame(t, br); got != "in the window" {
		t.Fatalf("got %q, want the message queued before registration", got)
	}
	(<-attached).Send([]byte("after"))
	if got := readFrame(t, br); got != "after" {
		t.Fatalf("got %q, want the message queued after registration", got)
	}
}

// A greeting larger than the socket's send buffer still arrives whole
// from a connection the loop accepted: the part the first write could not
// take goes out when the socket is writable again.
func TestListenLargeGreeting(t *testing.T) {
	t.Parallel()
	greeting := bytes.Repeat([]byte("g"), 8<<20)
	addr := listenOpen(t, func(c *Conn) Handler {
		c.Send(greeting)
		return nopHandler{}
	})
	nc, br := upgradeRaw(t, addr, 5*time.Second)
	defer nc.Close()
	var h [10]byte // text frame, 64-bit length
	if _, err := io.ReadFull(br, h[:]); err != nil || h[1] != 127 {
		t.Fatalf("frame header %x: %v", h, err)
	}
	got, err := io.Copy(io.Discard, io.LimitReader(br, int64(len(greeting))))
	if err != nil || got != int64(len(greeting)) {
		t.Fatalf("read %d of %d bytes of the greeting: %v", got, len(greeting), err)
	}
}

// The frames behind a long head all reach the handler: net/http reads
// only part of what the loop handed it, and Attach takes the rest.
func TestListenLongHeadKeepsTheBytesBehindIt(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	cookie := "Cookie: c=" + strings.Repeat("x", 9000) + "\r\n"
	req := []byte(upgradeRequest(s.addr, cookie))
	// More than net/http's 4 KiB buffer holds after the head.
	for i := range 500 {
		req = append(req, clientFrame(true, opText, []byte(strconv.Itoa(i)), 0x01020304)...)
	}
	br := upgradeInParts(t, s.addr, req)
	for i := range 500 {
		if got := readFrame(t, br); got != "echo:"+strconv.Itoa(i) {
			t.Fatalf("echo %q, want %q", got, "echo:"+strconv.Itoa(i))
		}
	}
}

// A plain request before the upgrade on the same keep-alive connection,
// everything in one write: the page, then the WebSocket, in sync.
func TestListenRequestBeforeUpgrade(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	req := []byte("GET / HTTP/1.1\r\nHost: " + s.addr + "\r\n\r\n" + upgradeRequest(s.addr, ""))
	for i := range 500 { // more than net/http's 4 KiB buffer holds
		req = append(req, clientFrame(true, opText, []byte(strconv.Itoa(i)), 0x01020304)...)
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "page" {
		t.Fatalf("page %q", body)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got := readFrame(t, br); !strings.HasPrefix(got, "hello ") {
		t.Fatalf("greeting %q", got)
	}
	for i := range 500 {
		if got := readFrame(t, br); got != "echo:"+strconv.Itoa(i) {
			t.Fatalf("echo %q, want %q", got, "echo:"+strconv.Itoa(i))
		}
	}
}

// A head whose lines end in a bare LF is answered, not left waiting for
// the head timeout.
func TestListenBareLFHead(t *testing.T) {
	t.Parallel()
	s := startListening(t, Config{})
	req := strings.ReplaceAll(upgradeRequest(s.addr, ""), "\r\n", "\n")
	br := upgradeInParts(t, s.addr, append([]byte(req), clientFrame(true, opText, []byte("lf"), 7)...))
	if got := readFrame(t, br); got != "echo:lf" {
		t.Fatalf("echo %q", got)
	}
}

func TestHeadEnd(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nxx": 27,
		"GET / HTTP/1.1\nHost: a\n\nxx":       24,
		"GET / HTTP/1.1\nHost: a\r\n\nxx":     25,
		"GET / HTTP/1.1\r\nHost: a\n\r\nxx":   26,
		"GET / HTTP/1.1\r\nHost: a\r\n":       -1,
		"GET / HTTP/1.1\r\nHost: a\r\n\r":     -1,
		"":                                    -1,
	} {
		if got := headEnd([]byte(in)); got != want {
			t.Errorf("headEnd(%q) = %d, want %d", in, got, want)
		}
	}
}
