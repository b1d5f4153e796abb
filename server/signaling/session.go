package signaling

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"time"
)

// Resumable sessions.
//
// Every successful login gets a session token: 128 random bits, sent once
// in the login reply and never logged. A client whose WebSocket broke (a
// phone changing networks, a laptop waking up) logs in again with its name
// and that token and gets its name back at once, together with its calls,
// even while the hub still holds the old connection because the network
// has not told it yet (the keep-alive would take up to two ping intervals
// to notice). The old connection is then closed with StatusSessionResumed.
//
// Without the right token nothing changes: the name stays taken while its
// connection is held, and is free once it is gone, as for tutorial
// clients, which never send a token. A token dies when a new login of its
// name succeeds (a resume issues a new one), and SessionTTL after its
// connection is gone. The hub keeps one session per logged-in name, plus
// at most MaxHeldSessions of closed connections waiting to expire: the
// memory for tokens is bounded by the connections and that cap.
//
// All of it is guarded by the hub's mutex.

// StatusSessionResumed is the WebSocket close code of a connection whose
// session a new connection resumed (a private-use code, 4000-4999). The
// client that gets it should not reconnect: its session lives on elsewhere.
const StatusSessionResumed = 4001

// closeReasonResumed is the close reason sent with StatusSessionResumed.
const closeReasonResumed = "session resumed by a new connection"

// tokenBytes is the size of a session token: 128 bits.
const tokenBytes = 16

type token [tokenBytes]byte

// session is one name's resume token.
type session struct {
	token   token
	client  *Client   // the name's holder; nil once its connection is gone
	expires time.Time // when client is nil
}

// heldSession is a closed connection's session waiting to expire.
type heldSession struct {
	name string
	s    *session
}

// newToken returns a fresh random token and its wire form.
func newToken() (token, string) {
	var t token
	_, _ = rand.Read(t[:]) // crypto/rand.Read never fails on supported systems
	return t, base64.RawURLEncoding.EncodeToString(t[:])
}

// parseToken decodes a token's wire form; ok is false for anything that
// is not exactly one.
func parseToken(s string) (t token, ok bool) {
	if base64.RawURLEncoding.DecodedLen(len(s)) != tokenBytes {
		return t, false
	}
	n, err := base64.RawURLEncoding.Decode(t[:], []byte(s))
	return t, err == nil && n == tokenBytes
}

// sessionLocked returns the session of name if wire is its token and it
// has not expired. Called with h.mu held.
func (h *Hub) sessionLocked(name, wire string, now time.Time) *session {
	s := h.sessions[name]
	if s == nil || wire == "" {
		return nil
	}
	t, ok := parseToken(wire)
	if subtle.ConstantTimeCompare(t[:], s.token[:]) != 1 || !ok {
		return nil
	}
	if s.client == nil && !now.Before(s.expires) {
		return nil
	}
	return s
}

// takeOverLocked moves name, calls and nothing else from old, a held
// connection, to c, which resumes old's session. Peers keep their call
// with the name; nobody sees the name go offline. Called with h.mu held;
// the caller closes old's connection after unlocking.
func (h *Hub) takeOverLocked(old, c *Client) {
	old.replaced.Store(true)
	c.peers, old.peers = old.peers, nil
	for p := range c.peers {
		delete(p.peers, old)
		p.peers[c] = struct{}{}
	}
	if h.cl.cluster != nil {
		h.takeOverRemoteLocked(old, c)
	}
	if old.subscribed {
		old.subscribed = false
		h.presence.unsubscribe(old)
	}
}

// endSessionLocked starts the expiry of c's session once c is gone, and
// expires what is due. Called with h.mu held.
func (h *Hub) endSessionLocked(c *Client, now time.Time) {
	s := h.sessions[c.name]
	if s == nil || s.client != c {
		return
	}
	s.client = nil
	s.expires = now.Add(h.cfg.SessionTTL)
	h.held = append(h.held, heldSession{name: c.name, s: s})
	h.expireLocked(now)
}

// expireLocked forgets held sessions that have expired, and the oldest
// ones beyond MaxHeldSessions. All held sessions have the same TTL, so
// the queue is in expiry order. Called with h.mu held.
func (h *Hub) expireLocked(now time.Time) {
	for len(h.held) > 0 {
		e := h.held[0]
		if len(h.held) <= h.cfg.MaxHeldSessions && now.Before(e.s.expires) {
			return
		}
		// A session that was resumed or replaced by a new login is no
		// longer the name's: leave the new one alone.
		if h.sessions[e.name] == e.s && e.s.client == nil {
			delete(h.sessions, e.name)
		}
		h.held[0] = heldSession{}
		h.held = h.held[1:]
	}
	h.held = nil // give the backing array back
}

// HeldSessions returns how many sessions of closed connections the hub
// keeps, waiting for their owner to resume them or for their expiry.
func (h *Hub) HeldSessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(time.Now())
	return len(h.held)
}
