package signaling

import (
	"net"

	"github.com/p2pchat/p2pchat/server/wsloop"
)

// LoopConfig is the event loop's configuration for this hub's limits.
func (h *Hub) LoopConfig() wsloop.Config {
	return wsloop.Config{
		ReadLimit:    h.cfg.ReadLimit,
		PingInterval: h.cfg.PingInterval,
		WriteTimeout: h.cfg.WriteTimeout,
	}
}

// ServeLoop is Serve for the event loop: it hands nc, whose handshake
// wsloop.Accept has done, with the bytes read after it, to loop, and
// returns at once. done, if not nil, is called once the connection is
// gone, also when loop cannot take it.
func (h *Hub) ServeLoop(loop *wsloop.Loop, nc net.Conn, pending []byte, remote string, done func()) error {
	opened := false
	err := loop.Attach(nc, pending, func(c *wsloop.Conn) wsloop.Handler {
		opened = true
		if cl := h.Open(c, remote, done); cl != nil {
			return cl
		}
		return nil // not a nil *Client inside a non-nil Handler
	})
	if err != nil && !opened && done != nil {
		done()
	}
	return err
}
