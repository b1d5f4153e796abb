package signaling

// Conn is the hub's view of one WebSocket connection: a way to deliver a
// message and to close. The hub calls it while holding its lock, so no
// method may block or wait for the network.
//
// Two transports implement it: wsloop.Conn (server/wsloop), which serves
// plain TCP connections from one event loop, and wsConn here, a goroutine
// per connection over coder/websocket, for TLS and for systems without
// epoll. Either one feeds the client's messages to Client.OnMessage and
// reports its end to Client.OnClose.
type Conn interface {
	// Send queues one text message. It returns how many messages are
	// still waiting for the socket, 0 if it was written at once, or -1
	// if the connection is closing and msg was dropped. msg is not used
	// after Send returns, so the hub can encode into reused buffers.
	Send(msg []byte) int
	// Close starts the closing handshake with a status code and reason.
	Close(code int, reason string)
	// CloseNow drops the connection without a handshake.
	CloseNow()
}

// Close status codes the hub sends.
const (
	statusGoingAway       = 1001
	statusInvalidData     = 1007
	statusPolicyViolation = 1008
)
