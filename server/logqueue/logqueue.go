// Package logqueue is a slog.Handler that never makes its caller wait
// for the log output.
//
// The event loop (server/wsloop) runs every connection's messages on one
// goroutine, and logs on it: a refused connection, a slow client cut
// off, a handler that panicked. Written straight to a stderr that a
// terminal, a pipe or journald drains slowly, one such line would stop
// every relay of every user until the write returned. Here a record is
// only queued; one goroutine writes the queue out, and exists only while
// the queue is not empty. The queue is bounded: when the output cannot
// keep up, records are dropped and counted, and the count is logged once
// the output has caught up. Nothing is written under the queue's lock.
package logqueue

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultMax is the queue bound New uses for max <= 0: a few seconds of
// the busiest logging the server does, a few MiB at most.
const DefaultMax = 4096

// Handler queues records for inner.
type Handler struct {
	inner slog.Handler
	q     *queue
}

type queue struct {
	base slog.Handler // for the drop count

	mu      sync.Mutex
	items   []item
	max     int
	dropped int
	running bool          // a drain goroutine runs
	idle    chan struct{} // closed when the running drain ends
}

type item struct {
	h slog.Handler
	r slog.Record
}

// New returns a Handler that queues up to max records for inner.
func New(inner slog.Handler, max int) *Handler {
	if max <= 0 {
		max = DefaultMax
	}
	return &Handler{inner: inner, q: &queue{base: inner, max: max}}
}

// Enabled reports what inner does, so that records inner would discard
// cost no queueing.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle queues r and returns at once; it never fails. The record is
// written by inner later, without the caller's context, which may have
// ended by then.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	q := h.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.max {
		q.dropped++
		return nil
	}
	q.items = append(q.items, item{h: h.inner, r: r.Clone()})
	if !q.running {
		q.running = true
		q.idle = make(chan struct{})
		go q.drain()
	}
	return nil
}

// WithAttrs returns a Handler for inner.WithAttrs(as) on the same queue.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(as), q: h.q}
}

// WithGroup returns a Handler for inner.WithGroup(name) on the same queue.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), q: h.q}
}

// Flush waits until every queued record has been written, or ctx ends.
func (h *Handler) Flush(ctx context.Context) error {
	q := h.q
	q.mu.Lock()
	if !q.running {
		q.mu.Unlock()
		return nil
	}
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain writes the queue out until it is empty.
func (q *queue) drain() {
	for {
		q.mu.Lock()
		batch, dropped := q.items, q.dropped
		q.items, q.dropped = nil, 0
		if len(batch) == 0 && dropped == 0 {
			q.running = false
			close(q.idle)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, it := range batch {
			_ = it.h.Handle(context.Background(), it.r)
		}
		if dropped > 0 {
			r := slog.NewRecord(time.Now(), slog.LevelWarn, "log records dropped: the log output could not keep up", 0)
			r.AddAttrs(slog.Int("dropped", dropped))
			_ = q.base.Handle(context.Background(), r)
		}
	}
}
