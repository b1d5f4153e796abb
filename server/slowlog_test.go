package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// stuckLog is a log output that, from the first warning on, blocks until
// released: a stderr that nobody drains.
type stuckLog struct {
	slog.Handler
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *stuckLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
	return h.Handler.Handle(ctx, r)
}

// A log write that never returns, made on the event loop's goroutine (a
// refused connection is logged there), does not stop the relays between
// other users.
func TestStuckLogDoesNotStopRelays(t *testing.T) {
	t.Parallel()
	h := &stuckLog{Handler: slog.NewTextHandler(io.Discard, nil), entered: make(chan struct{}), release: make(chan struct{})}
	s := New(Config{MaxConnsPerIP: 2}, slog.New(h))
	ts := httptest.NewUnstartedServer(s.Handler())
	ln, err := s.Listener(ts.Listener)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = ln
	ts.Start()
	released := false
	t.Cleanup(func() {
		if !released {
			close(h.release)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})

	a, _, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	write := func(c *websocket.Conn, msg string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	write(a, `{"type":"login","name":"a"}`)
	readType(t, a, "login")
	write(b, `{"type":"login","name":"b"}`)
	readType(t, b, "login")

	// A third connection from the address is refused, and the refusal
	// logged: the log output is stuck from here on.
	refused := make(chan int, 1)
	go func() {
		_, resp, _ := dialFrom(t, ts, "127.0.0.1")
		if resp == nil {
			refused <- 0
			return
		}
		refused <- resp.StatusCode
	}()
	<-h.entered
	for i := range 20 {
		write(a, `{"type":"offer","name":"b","offer":{"n":`+string(rune('0'+i%10))+`}}`)
		readType(t, b, "offer")
	}
	if code := <-refused; code != http.StatusTooManyRequests {
		t.Errorf("third connection: status %d, want 429", code)
	}
	close(h.release)
	released = true
}
