package signaling

// Conn is the hub's view of one connection: a way to deliver a message
// and to close. The hub calls it while holding its lock, so no method may
// block or wait for the network; a non-blocking system call (an event
// loop's wake-up write) is all a method may do.
//
// The transports implement it from outside this package (the server wires
// them up): an epoll event loop for plain TCP on Linux (server/wsloop) and
// a goroutine per connection over coder/websocket (server/wspump). Either
// one feeds the client's messages to Client.OnMessage and reports its end
// to Client.OnClose.
type Conn interface {
	// Send queues one text message. It returns how many bytes of output
	// wait for the socket, this message included (so at least len(msg)),
	// or -1 if the connection is closing and msg was dropped. msg is not used after
	// Send returns, so the hub can encode into reused buffers.
	Send(msg []byte) int
	// Close starts the closing handshake with a status code and reason.
	Close(code int, reason string)
	// CloseNow drops the connection without a handshake.
	CloseNow()
}

// Close status codes the hub sends.
const (
	statusGoingAway       = 1001
	statusPolicyViolation = 1008
)
