// Package conformance holds a WebSocket conformance suite for p2pchat's
// two transports, in its tests only: the event loop (server/wsloop) and
// the goroutine per connection over coder/websocket, the latter both on
// plain TCP and on the real HTTPS path (TLS, leanConn, write batching).
//
// The suite speaks raw TCP with its own client framing, so that it can
// send what no WebSocket library would: reserved bits and opcodes,
// unmasked or oversized frames, fragments cut inside a UTF-8 sequence,
// bytes chopped into single writes or coalesced with the request head.
// Its cases follow RFC 6455 and the case descriptions of the Autobahn
// testsuite's fuzzingclient (sections 1-7 and 9), plus the opening
// handshake (RFC 6455 section 4, RFC 7230 parsing), which Autobahn does
// not cover. p2pchat does not echo, so the probes are protocol messages
// (docs/protocol.md): an unknown type is answered with an
// `unknown-type` error, a login with its reply; a probe answered in
// order shows that the stream is still in sync.
//
// Every case runs against every transport, and a case one passes the
// others must pass. To show that each case can fail, the suite runs
// again with fault switches in the test client's view of the server
// (its HTTP status dropped, its close codes changed, its text messages
// or its pongs swallowed): every case must fail under at least one.
package conformance
