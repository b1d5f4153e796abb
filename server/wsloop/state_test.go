//go:build linux

package wsloop

import "testing"

// The moves a connection may make are the ones in allowed, and no other:
// a connection past a state never goes back to it.
func TestStateMoves(t *testing.T) {
	t.Parallel()
	for from := stateAccepting; from <= stateClosed; from++ {
		for to := stateAccepting; to <= stateClosed; to++ {
			c := &Conn{state: from}
			ok := c.toLocked(to)
			// Forward only (so closed is final); a WebSocket opens only
			// from accepting, its close frame is sent only after it was
			// queued, and a request the loop has not upgraded is never
			// dropped by a handler (it has none).
			want := to > from
			switch to {
			case stateOpen:
				want = from == stateAccepting
			case stateCloseSent:
				want = from == stateClosing
			case stateDropping:
				want = want && from != stateAccepting
			}
			if ok != want {
				t.Errorf("%v -> %v allowed %v, want %v", from, to, ok, want)
			}
			if ok && c.state != to || !ok && c.state != from {
				t.Errorf("%v -> %v left the state %v", from, to, c.state)
			}
		}
	}
}
