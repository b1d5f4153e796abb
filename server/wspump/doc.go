// Package wspump serves a WebSocket connection with goroutines over
// coder/websocket: a reader pump for the connection's life, which hands
// each message to a Handler, and a writer pump that runs only while output
// is queued. It is the transport for connections the event loop
// (server/wsloop) cannot take: TLS, whose bytes the socket does not carry
// in the clear, and systems without epoll.
//
// The writer takes the whole queue at once and writes it; when the
// connection is a Batcher, the messages go out corked, in one system call.
// Keep-alive pings run from a per-connection timer. A connection that is
// an IdleWaiter lets the reader wait between messages on a shallow stack
// and without buffers (see server/leanconn.go), so an idle connection
// costs a parked goroutine and little else.
//
// The package knows nothing of the signaling protocol: the caller adapts
// its Handler to whatever the messages mean.
package wspump

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Handler receives a connection's messages and its end. OnMessage is
// called on the reader goroutine, one message at a time; payload is valid
// only during the call. OnClose is called once, after the last OnMessage.
type Handler interface {
	OnMessage(payload []byte)
	OnClose(err error)
}

// Config sets a connection's limits and timers. Zero fields take the
// defaults.
type Config struct {
	// ReadLimit is the largest message accepted, in bytes; a larger one
	// closes the connection with status 1009. Default 64 KiB.
	ReadLimit int64
	// WriteTimeout bounds the write of one batch of queued messages.
	// Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is the keep-alive period; a peer that does not answer
	// a ping within the same period is dropped. Default 30 s.
	PingInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.ReadLimit <= 0 {
		c.ReadLimit = 64 << 10
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	return c
}

// Serve runs ws until it closes. open is called with the new Conn before
// anything is read and returns its Handler; nil means the caller refused
// the connection, which it should then Close with a status. b, if not nil,
// is the socket under ws, whose writes can be batched.
//
// Setup and teardown are apart from the read loop so that this frame,
// which stays on the stack for the connection's life, is small: an idle
// connection's goroutine then parks on a stack shallow enough for the
// garbage collector to shrink (see IdleWaiter).
func Serve(ctx context.Context, ws *websocket.Conn, b Batcher, cfg Config, open func(*Conn) Handler) {
	cfg = cfg.withDefaults()
	ws.SetReadLimit(cfg.ReadLimit)
	w := &Conn{conn: ws, cfg: cfg, batch: b}
	h := open(w)
	if h == nil {
		return
	}
	w.startPing()
	err := w.readLoop(ctx, h)
	h.OnClose(err)
}
