//go:build linux

package wsloop

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A connection one loop accepted can be served by another (as the server
// spreads connections over its loops): the accepting loop lets go of the
// socket, and the other serves it from the first byte, including the
// bytes that came with the request head.
func TestAcceptedConnectionServedByAnotherLoop(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	accepting, err := New(Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := New(Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *echo, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		nc, pending, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		if err := serving.Attach(nc, pending, func(c *Conn) Handler {
			e := &echo{c: c, closed: make(chan error, 1)}
			conns <- e
			return e
		}); err != nil {
			t.Errorf("attach: %v", err)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := accepting.Listen(ln, mux)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hl.Close()
		accepting.Close()
		serving.Close()
	})

	// A frame sent right behind the request head.
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := upgradeRequest(ln.Addr().String(), "")
	if _, err := nc.Write(append([]byte(req), clientFrame(true, opText, []byte("early"), 0x01020304)...)); err != nil {
		t.Fatal(err)
	}
	e := <-conns
	if e.c.loop != serving {
		t.Fatal("the connection is served by the accepting loop")
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got := readFrame(t, br); got != "echo:early" {
		t.Fatalf("got %q, want the echo of the frame sent with the head", got)
	}
	accepting.mu.Lock()
	for fd, c := range accepting.byFD {
		if c != nil {
			t.Errorf("the accepting loop still lists fd %d", fd)
		}
	}
	accepting.mu.Unlock()

	// And a second client, through a WebSocket library, both ways.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	e2 := <-conns
	if err := ws.Write(ctx, websocket.MessageText, []byte("later")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ws.Read(ctx); err != nil || string(got) != "echo:later" {
		t.Fatalf("read %q, %v", got, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-e2.closed:
	case <-ctx.Done():
		t.Fatal("OnClose never came on the serving loop")
	}
}
