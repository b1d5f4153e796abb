//go:build linux

package wsloop

import "fmt"

// connState is where a connection is in its life. It is one value, under
// the Conn's lock, changed only by Conn.toLocked, which allows only the
// moves in allowed: whoever asks for a move (the loop goroutine, or a
// goroutine calling Send, Close or CloseNow) gets false if the connection
// is already past it, and does nothing more.
//
//	accepting ──> open ──> closing ──> closeSent ──┐
//	    │          │  \        │            │      │
//	    │          │   └──> dropping <──────┘      │
//	    │          │            │                  │
//	    └──────────┴──────> shut <─────────────────┘ ──> closed
//
// Every state may also go straight to closed (the loop read an error or
// end of stream, a deadline passed, or the loop shut down).
type connState uint8

const (
	// stateAccepting: the loop accepted the socket and waits for the
	// request head (Listen).
	stateAccepting connState = iota
	// stateOpen: a WebSocket; messages go both ways.
	stateOpen
	// stateClosing: a close frame (or, for a request the loop answered
	// itself, the response) is queued behind the output; nothing more is
	// sent or delivered.
	stateClosing
	// stateCloseSent: that frame is written and the write side shut; the
	// loop reads, and discards, until the peer ends too.
	stateCloseSent
	// stateDropping: CloseNow asked for the connection to be dropped; the
	// loop shuts the socket down at its next flush.
	stateDropping
	// stateShut: the socket is shut down both ways (dropped, a write
	// failed, a deadline passed); the loop reads end of stream next.
	stateShut
	// stateClosed: the descriptor is closed (or handed to another owner)
	// and the handler told. Final.
	stateClosed
)

var stateNames = [...]string{"accepting", "open", "closing", "closeSent", "dropping", "shut", "closed"}

func (s connState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("connState(%d)", s)
}

// allowed lists, for each state, the states it may move to.
var allowed = [...][]connState{
	stateAccepting: {stateOpen, stateClosing, stateShut, stateClosed},
	stateOpen:      {stateClosing, stateDropping, stateShut, stateClosed},
	stateClosing:   {stateCloseSent, stateDropping, stateShut, stateClosed},
	stateCloseSent: {stateDropping, stateShut, stateClosed},
	stateDropping:  {stateShut, stateClosed},
	stateShut:      {stateClosed},
	stateClosed:    nil,
}

// toLocked moves c to s if that move is allowed, and reports whether it
// did. c.mu must be held.
func (c *Conn) toLocked(s connState) bool {
	for _, t := range allowed[c.state] {
		if t == s {
			c.state = s
			return true
		}
	}
	return false
}

// closingLocked reports whether the closing handshake has started: no
// more messages either way.
func (c *Conn) closingLocked() bool {
	return c.state == stateClosing || c.state == stateCloseSent
}
