package wspump

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nopHandler ignores the client's messages.
type nopHandler struct{ closed chan error }

func (nopHandler) OnMessage([]byte)    {}
func (h nopHandler) OnClose(err error) { h.closed <- err }

// serve runs one connection with Serve and returns the client and the
// server's Conn.
func serve(t *testing.T) (*websocket.Conn, *Conn) {
	t.Helper()
	conns := make(chan *Conn, 1)
	closed := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		Serve(context.Background(), ws, nil, Config{}, func(c *Conn) Handler {
			conns <- c
			return nopHandler{closed}
		})
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ws.CloseNow()
		<-closed
		srv.Close()
	})
	return ws, <-conns
}

// waiting is the output queued or being written, in bytes.
func (w *Conn) waiting() int {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return w.queued + w.inflight
}

// Send reports the bytes still waiting: once a message is written, it no
// longer counts.
func TestSendCountsBytesStillWaiting(t *testing.T) {
	t.Parallel()
	ws, c := serve(t)
	msg := []byte("counted")
	for i := range 3 {
		if n := c.Send(msg); n != len(msg) {
			t.Fatalf("send %d: %d bytes waiting, want %d (this message only)", i, n, len(msg))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, got, err := ws.Read(ctx)
		cancel()
		if err != nil || string(got) != string(msg) {
			t.Fatalf("read %q, %v", got, err)
		}
		// The writer forgets the message right after writing it.
		deadline := time.Now().Add(5 * time.Second)
		for c.waiting() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d bytes still counted after the client read them", c.waiting())
			}
			time.Sleep(time.Millisecond) // a poll of a state
		}
	}
}

// A client that does not read: what waits grows by each message's size.
func TestSendCountsQueuedBytes(t *testing.T) {
	t.Parallel()
	_, c := serve(t)
	msg := make([]byte, 64<<10)
	n := 0
	for range 400 { // 25 MiB: more than the sockets hold
		n = c.Send(msg)
	}
	if n < 100*len(msg) {
		t.Fatalf("%d bytes waiting after 400 sends of %d to a client that does not read", n, len(msg))
	}
	c.CloseNow()
	if n := c.Send(msg); n != -1 {
		t.Fatalf("Send after CloseNow = %d, want -1", n)
	}
}
