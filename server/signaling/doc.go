// Package signaling is p2pchat's signaling core: the wire protocol, the
// registry of logged-in names, call tracking and the per-connection pumps.
// It knows nothing of HTTP or routing; the server package upgrades a request
// to a WebSocket and hands the connection to Hub.Serve.
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
// all under one mutex. No I/O happens while it is held: delivery is a
// non-blocking append to the target's bounded queue.
//
// Each connection has exactly one reader: the goroutine that called Serve
// (the server starts one per connection and lets the HTTP handler return,
// so an idle connection costs one goroutine). Writes are done by a writer
// goroutine that exists only while the connection's queue is non-empty; it
// takes the whole queue, writes it (as one system call when the connection
// is a Batcher) and exits once the queue is empty. A client whose queue
// overflows is cut off, so a peer that stops reading never blocks anyone
// else. Keep-alive pings run from a per-connection timer (time.AfterFunc),
// which holds no goroutine between pings. A connection that is an
// IdleWaiter lets the reader wait between messages on a shallow stack and
// without buffers; see batch.go and server/leanconn.go.
package signaling
