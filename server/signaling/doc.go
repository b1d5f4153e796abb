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
// all under one mutex. Nothing under it blocks or waits for the network:
// delivery is Conn.Send, a non-blocking hand-over to the target's bounded
// output (at most a non-blocking system call, when a transport wakes its
// event loop). A client with more than SendQueueBytes of output waiting is cut
// off, so a peer that stops reading never blocks anyone else.
//
// # Transports
//
// This package knows nothing of HTTP, WebSockets or sockets. The hub sees
// a connection only through Conn (conn.go); whatever carries it registers
// it with Hub.Open and then calls Client.OnMessage for each message, one
// at a time, and Client.OnClose once. The server package adapts its two
// transports to that from outside: server/wsloop, one epoll event loop for
// plain-TCP connections on Linux, and server/wspump, a goroutine per
// connection over coder/websocket for TLS and systems without epoll. The
// tests here drive the hub through an in-memory Conn; the server's tests
// run the same protocol over both real transports.
package signaling
