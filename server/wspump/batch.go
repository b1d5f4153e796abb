package wspump

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Batcher is implemented by a connection that can hold back its writes and
// send them together. The writer goroutine corks it, writes every message
// it has taken from the queue, and flushes: under load a busy client gets
// many frames per system call instead of one, and the per-write timeout
// becomes one socket deadline per batch instead of a context and a timer
// per message. Cork and Flush are called only by the writer goroutine;
// writes from elsewhere (pings, close frames) may happen at any time.
type Batcher interface {
	// Cork makes writes collect in memory.
	Cork()
	// Flush sends what was collected, within timeout, and uncorks.
	Flush(timeout time.Duration) error
}

// IdleWaiter is implemented by a connection that can wait for the next
// message to start arriving without being inside the WebSocket library's
// frame reader. The reader goroutine calls WaitReadable between messages,
// so an idle connection parks on a shallow stack (which the garbage
// collector shrinks) holding no read buffer. WaitReadable must return at
// once if unread bytes are already buffered anywhere.
type IdleWaiter interface {
	WaitReadable() error
}

// writeAll writes msgs in order. Without a Batcher each message is one
// write with its own timeout; with one, the messages are collected and
// sent at once. An error leaves the connection unusable.
func (w *Conn) writeAll(msgs [][]byte) error {
	if w.batch == nil {
		for _, msg := range msgs {
			ctx, cancel := context.WithTimeout(context.Background(), w.cfg.WriteTimeout)
			err := w.conn.Write(ctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	w.batch.Cork()
	for _, msg := range msgs {
		// No context timeout: corked, Write only copies into the batch
		// (it may briefly wait for a concurrent ping or close frame, which
		// carries its own timeout). Flush has the deadline.
		if err := w.conn.Write(context.Background(), websocket.MessageText, msg); err != nil {
			_ = w.batch.Flush(w.cfg.WriteTimeout)
			return err
		}
	}
	return w.batch.Flush(w.cfg.WriteTimeout)
}
