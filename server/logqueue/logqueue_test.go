package logqueue

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// gate is an output that blocks until opened.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func TestHandleNeverWaitsForTheOutput(t *testing.T) {
	t.Parallel()
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	h := New(slog.NewTextHandler(g, nil), 3)
	log := slog.New(h).With("conn", 7)
	log.Info("first")
	<-g.entered // the drain is stuck writing "first"
	for i := range 10 {
		log.Info("queued", "i", i) // 3 are kept, 7 dropped
	}
	close(g.open)
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := g.buf.String()
	if n := strings.Count(out, "msg=queued"); n != 3 {
		t.Errorf("%d queued records written, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, "msg=first conn=7") || !strings.Contains(out, "dropped=7") {
		t.Errorf("output lacks the first record or the drop count:\n%s", out)
	}
}
