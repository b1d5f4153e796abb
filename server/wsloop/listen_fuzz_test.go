//go:build linux

package wsloop

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FuzzListenHead sends arbitrary bytes to a loop that accepts, as the
// start of a connection, then half-closes it. Whatever the bytes, the
// connection must be answered or closed within seconds, the process must
// not crash, and the loop must go on serving: after each input a proper
// WebSocket request is still upgraded.
func FuzzListenHead(f *testing.F) {
	for _, seed := range []string{
		upgradeRequest("h", ""),
		upgradeRequest("h", "") + "\x81\x85\x00\x00\x00\x00hello",    // a masked frame right behind
		upgradeRequest("h", "") + "\x88\x82\x00\x00\x00\x00\x03\xe8", // a close frame right behind
		upgradeRequest("h", "") + upgradeRequest("h", ""),            // pipelined
		upgradeRequest("h", "Origin: http://elsewhere.example\r\n"),
		upgradeRequest("h", "Content-Length: 5\r\n") + "abcde",
		upgradeRequest("h", "X: "+strings.Repeat("a", 9000)+"\r\n"),                        // past the loop's head limit
		strings.TrimSuffix(upgradeRequest("h", ""), "\r\n"),                                // unfinished
		"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", // no key
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		strings.ReplaceAll(upgradeRequest("h", ""), "\r\n", "\n"), // bare LF line ends
		"GET / HTTP/1.1\nHost: h\n\n" + upgradeRequest("h", ""),   // a request first, then the upgrade
		"GET /ws HTTP/1.0\r\n\r\n",
		"\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", // a TLS ClientHello on the plain port
	} {
		f.Add([]byte(seed))
	}
	s := startListening(f, Config{})
	stop := make(chan struct{})
	f.Cleanup(func() { close(stop) })
	go func() { // upgraded connections' handlers, not looked at here
		for {
			select {
			case <-s.conns:
			case <-stop:
				return
			}
		}
	}()
	f.Fuzz(func(t *testing.T, input []byte) {
		exchange(t, s.addr, input)
		if got := exchange(t, s.addr, []byte(upgradeRequest(s.addr, ""))); !bytes.HasPrefix(got, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("after %q, a WebSocket request got %q", input, got)
		}
	})
}

// exchange sends input on a new connection, half-closes it and returns
// what the server sent until it closed the connection. A reset is a
// close too: a server may hang up before reading everything.
func exchange(t *testing.T, addr string, input []byte) []byte {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(input); err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil
		}
		t.Fatalf("sending %q: %v", input, err)
	}
	_ = nc.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after %q the connection was neither answered nor closed: %v (got %q)", input, err, out)
	}
	return out
}

// FuzzHeadEnd checks headEnd against its definition: the head ends at the
// first empty line, whether lines end in CRLF or in a bare LF.
func FuzzHeadEnd(f *testing.F) {
	for _, seed := range []string{upgradeRequest("h", ""), "GET / HTTP/1.1\nHost: h\n\n", "\n\n", "a\r\n\r", "a\n\r\nb"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := -1
		for i := 1; i < len(b) && want < 0; i++ {
			switch {
			case b[i-1] == '\n' && b[i] == '\n':
				want = i + 1
			case b[i-1] == '\n' && b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
				want = i + 2
			}
		}
		if got := headEnd(b); got != want {
			t.Fatalf("headEnd(%q) = %d, want %d", b, got, want)
		}
	})
}
