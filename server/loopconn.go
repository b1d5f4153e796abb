package server

import (
	"context"
	"net"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
	"github.com/p2pchat/p2pchat/server/wsloop"
	"github.com/p2pchat/p2pchat/server/wspump"
)

// The hub (server/signaling) sees a connection only through
// signaling.Conn; this file adapts the two transports to it. Each one's
// Conn is already a signaling.Conn (Send, Close, CloseNow), and the hub's
// *signaling.Client is each one's Handler (OnMessage, OnClose); what is
// left is to register the connection with the hub when the transport
// opens it, and to take the transport's limits from the hub's Config.

// loopConfig is the event loop's configuration for the hub's limits.
func loopConfig(cfg signaling.Config) wsloop.Config {
	return wsloop.Config{
		ReadLimit:    cfg.ReadLimit,
		PingInterval: cfg.PingInterval,
		WriteTimeout: cfg.WriteTimeout,
	}
}

// pumpConfig is the goroutine transport's configuration for the hub's
// limits.
func pumpConfig(cfg signaling.Config) wspump.Config {
	return wspump.Config{
		ReadLimit:    cfg.ReadLimit,
		PingInterval: cfg.PingInterval,
		WriteTimeout: cfg.WriteTimeout,
	}
}

// openClient registers a transport's new connection with the hub; the
// client is the connection's handler. It returns ok false when the hub
// refused the connection (it is shutting down, and has started its close
// and called done).
func openClient(hub *signaling.Hub, conn signaling.Conn, remote string, done func()) (*signaling.Client, bool) {
	c := hub.Open(conn, remote, done)
	return c, c != nil
}

// attachLoop hands nc, whose handshake wsloop.Accept has done, with the
// bytes read after it, to loop, and returns at once. done, if not nil, is
// called once the connection is gone, also when loop cannot take it.
func attachLoop(hub *signaling.Hub, loop *wsloop.Loop, nc net.Conn, pending []byte, remote string, done func()) error {
	opened := false
	err := loop.Attach(nc, pending, func(c *wsloop.Conn) wsloop.Handler {
		opened = true
		if cl, ok := openClient(hub, c, remote, done); ok {
			return cl
		}
		return nil // not a nil *Client inside a non-nil Handler
	})
	if err != nil && !opened && done != nil {
		done()
	}
	return err
}

// servePump serves ws with a goroutine per connection until it closes;
// b, if not nil, batches its writes. done, if not nil, is called once the
// connection is gone.
func servePump(hub *signaling.Hub, ws *websocket.Conn, b wspump.Batcher, remote string, done func()) {
	wspump.Serve(context.Background(), ws, b, pumpConfig(hub.Config()), func(c *wspump.Conn) wspump.Handler {
		if cl, ok := openClient(hub, c, remote, done); ok {
			return cl
		}
		return nil
	})
}
