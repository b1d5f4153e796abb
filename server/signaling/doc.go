// Package signaling is p2pchat's signaling core: the wire protocol, the
// registry of logged-in names, call tracking and presence. It knows
// nothing of HTTP or routing; the server package upgrades a request to a
// WebSocket and hands the connection over.
//
// # Protocol
//
// Clients speak JSON text frames (see docs/protocol.md). The protocol is a
// superset of the original tutorial's login / offer / answer / candidate /
// leave messages. Relay payloads are kept as raw JSON and copied verbatim
// into the outgoing frame; only the envelope is decoded. The sender's name
// in every relayed message is stamped by the hub from the connection's
// logged-in name, never taken from the client.
//
// # Concurrency
//
// The Hub owns the name registry, the call pairs and the presence state,
// all under one mutex. No I/O happens while it is held: delivery is
// Conn.Send, a non-blocking hand-over to the target's bounded output. A
// client with more than SendQueue messages waiting is cut off, so a peer
// that stops reading never blocks anyone else.
//
// The hub sees a connection only through Conn (conn.go); the transport
// behind it calls Client.OnMessage for each message, one at a time, and
// Client.OnClose once. There are two:
//
//   - server/wsloop, one epoll event loop for all plain-TCP connections on
//     Linux: no goroutine per connection, and the loop is the only writer
//     of its sockets (Hub.ServeLoop);
//   - wsConn (wsconn.go), coder/websocket with a reader goroutine per
//     connection (Hub.Serve) and a writer goroutine only while its queue is
//     non-empty, which takes the whole queue and writes it (as one system
//     call when the connection is a Batcher). Keep-alive pings run from a
//     per-connection timer. A connection that is an IdleWaiter lets the
//     reader wait between messages on a shallow stack and without buffers;
//     see batch.go and server/leanconn.go. TLS connections and systems
//     without epoll use this one.
package signaling
