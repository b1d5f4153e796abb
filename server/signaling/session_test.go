package signaling

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// loginToken logs in as name, presenting tok if not empty, and returns
// the reply.
func loginToken(t *testing.T, hub *Hub, name, tok string) (*client, map[string]any) {
	t.Helper()
	c := dial(t, hub)
	c.name = name
	m := map[string]any{"type": "login", "name": name}
	if tok != "" {
		m["token"] = tok
	}
	c.send(m)
	return c, c.expect("login")
}

// tokenOf returns the session token of a successful login reply.
func tokenOf(t *testing.T, m map[string]any) string {
	t.Helper()
	tok, _ := m["token"].(string)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if m["success"] != true || err != nil || len(b) < 16 {
		t.Fatalf("login reply %v: want success with a token of at least 128 bits", m)
	}
	return tok
}

// TestSessionTokenIssued: every successful login carries a fresh token of
// 128 random bits; refused logins carry none.
func TestSessionTokenIssued(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	seen := map[string]bool{}
	for i := range 5 {
		_, m := loginToken(t, hub, fmt.Sprintf("user%d", i), "")
		tok := tokenOf(t, m)
		if seen[tok] {
			t.Fatalf("token %q issued twice", tok)
		}
		seen[tok] = true
		if _, ok := m["resumed"]; ok {
			t.Errorf("a login without a token says resumed: %v", m)
		}
	}
	_, m := loginToken(t, hub, "user0", "")
	if m["success"] != false || m["code"] != CodeNameTaken || m["token"] != nil {
		t.Errorf("taken name: got %v, want name-taken without a token", m)
	}
}

// TestSessionResumeTakesOverHeldConnection: a new connection presenting the
// token takes the name from the old connection, which the hub still holds
// (as when a network change left it dead), at once. The old one is closed
// with StatusSessionResumed; the call goes on with the new connection and
// the peer never sees the name leave.
func TestSessionResumeTakesOverHeldConnection(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{Presence: true, PresenceInterval: 20 * time.Millisecond})
	old, m := loginToken(t, hub, "alice", "")
	tok := tokenOf(t, m)
	bob, _ := loginPresence(t, hub, "bob")
	old.send(map[string]any{"type": "offer", "name": "bob", "offer": map[string]any{"sdp": "x"}})
	var skipped []map[string]any // bob's presence messages
	until := func(typ string) map[string]any {
		t.Helper()
		for {
			m := bob.recv()
			if m["type"] == typ {
				return m
			}
			if m["type"] != "presence" {
				t.Fatalf("bob got %v, want %s", m, typ)
			}
			skipped = append(skipped, m)
		}
	}
	if m := until("offer"); m["name"] != "alice" {
		t.Fatalf("bob got %v", m)
	}

	alice, m := loginToken(t, hub, "alice", tok)
	tok2 := tokenOf(t, m)
	if m["resumed"] != true || tok2 == tok {
		t.Fatalf("resume reply %v: want resumed with a new token", m)
	}
	if st := old.expectClosed(); st != StatusSessionResumed {
		t.Fatalf("old connection closed with %d, want %d", st, StatusSessionResumed)
	}
	// The call moved over: both directions still relay.
	bob.send(map[string]any{"type": "answer", "name": "alice", "answer": map[string]any{"sdp": "y"}})
	if m := alice.expect("answer"); m["name"] != "bob" {
		t.Fatalf("alice got %v", m)
	}
	alice.send(map[string]any{"type": "candidate", "name": "bob", "candidate": nil})
	if m := until("candidate"); m["name"] != "alice" {
		t.Fatalf("bob got %v, want alice's candidate and no leave", m)
	}
	alice.sync()
	if n := hub.Stats().Resumes.Load(); n != 1 {
		t.Errorf("resumes counted %d, want 1", n)
	}
	if n := hub.Online(); n != 2 {
		t.Errorf("%d online, want 2", n)
	}
	// Presence never showed alice leaving. A later change is published
	// after any diff mentioning her would have been.
	login(t, hub, "carol")
	for {
		m, err := bob.tryRecv(recvTimeout)
		if err != nil || m["type"] != "presence" {
			t.Fatalf("bob: %v %v, want presence with carol; before: %v", m, err, skipped)
		}
		skipped = append(skipped, m)
		if strings.Contains(fmt.Sprint(m["joined"], m["users"]), "carol") {
			break
		}
	}
	for _, m := range skipped {
		if fmt.Sprint(m["left"]) != "<nil>" {
			t.Errorf("presence %v: nobody left", m)
		}
	}

	// The new connection's end is an ordinary one: bob hears of it.
	alice.conn.CloseNow()
	if m := bob.expect("leave"); m["name"] != "alice" || m["reason"] != ReasonOffline {
		t.Fatalf("bob got %v, want alice offline", m)
	}
}

// TestSessionStolenToken: without the right token the name stays taken:
// no token, a wrong one, a malformed one, or one that died with a newer
// login of the name (here: a resume, which issues a new token).
func TestSessionStolenToken(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	_, m := loginToken(t, hub, "alice", "")
	tok := tokenOf(t, m)
	wrong := base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	for _, bad := range []string{"", wrong, "not a token", tok + "A", tok[:len(tok)-1]} {
		_, m := loginToken(t, hub, "alice", bad)
		if m["success"] != false || m["code"] != CodeNameTaken {
			t.Errorf("token %q: got %v, want name-taken", bad, m)
		}
	}
	_, m = loginToken(t, hub, "alice", tok) // the owner resumes: tok dies
	tokenOf(t, m)
	_, m = loginToken(t, hub, "alice", tok)
	if m["success"] != false || m["code"] != CodeNameTaken {
		t.Errorf("a used token: got %v, want name-taken", m)
	}
	// The token is no key to other names.
	_, m = loginToken(t, hub, "bob", tok)
	if m["success"] != true || m["resumed"] != nil {
		t.Errorf("alice's token for bob: got %v, want a plain login", m)
	}
	if n := hub.Stats().Resumes.Load(); n != 1 {
		t.Errorf("resumes counted %d, want 1", n)
	}
}

// TestSessionReplacedConnectionIsMute: the old connection of a resumed
// session can no longer open calls or send under the name.
func TestSessionReplacedConnectionIsMute(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(Config{}, testLog())
		oldC, bob := queueLogin(t, h, "alice", ""), queueLogin(t, h, "bob", "")
		tok := queueToken(t, oldC)
		alice := queueLogin(t, h, "alice", tok)
		queueToken(t, alice)
		bob.drain()
		// The hub still holds the old connection (Close only asked it to
		// go); whatever it sends now must not reach anyone.
		oldC.conn.(*queueConn).closed = false
		oldC.OnMessage([]byte(`{"type":"offer","name":"bob","offer":{}}`))
		if got := lastMessage(t, oldC); got["code"] != CodeNotLoggedIn {
			t.Errorf("offer from the replaced connection: %v, want not-logged-in", got)
		}
		oldC.OnMessage([]byte(`{"type":"leave","name":"bob"}`))
		if got := lastMessage(t, oldC); got["code"] != CodeNotLoggedIn {
			t.Errorf("leave from the replaced connection: %v, want not-logged-in", got)
		}
		oldC.OnClose(nil)
		if msgs := bob.drain(); len(msgs) != 0 {
			t.Errorf("bob got %q from the replaced connection", msgs)
		}
		if h.byName["alice"] != alice {
			t.Error("the replaced connection's end released the resumed name")
		}
	})
}

// TestSessionExpiry: a closed connection's token resumes within SessionTTL
// and not after; the held sessions are forgotten on expiry and bounded by
// MaxHeldSessions, oldest first.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(Config{SessionTTL: time.Minute, MaxHeldSessions: 3}, testLog())
		c := queueLogin(t, h, "alice", "")
		tok := queueToken(t, c)
		c.OnClose(nil)
		if n := h.HeldSessions(); n != 1 {
			t.Fatalf("%d held sessions, want 1", n)
		}
		time.Sleep(59 * time.Second)
		c = queueLogin(t, h, "alice", tok)
		m := lastMessage(t, c)
		if m["resumed"] != true {
			t.Fatalf("within the TTL: %v, want resumed", m)
		}
		tok = tokenOf(t, m)
		c.OnClose(nil)
		time.Sleep(time.Minute)
		if n := h.HeldSessions(); n != 0 {
			t.Errorf("%d held sessions after the TTL, want 0", n)
		}
		c = queueLogin(t, h, "alice", tok)
		if m := lastMessage(t, c); m["success"] != true || m["resumed"] != nil {
			t.Fatalf("after the TTL: %v, want a plain login", m)
		}
		c.OnClose(nil)

		// The cap: five closed sessions, three kept, the newest ones.
		toks := map[string]string{}
		for i := range 5 {
			name := fmt.Sprint("u", i)
			c := queueLogin(t, h, name, "")
			toks[name] = queueToken(t, c)
			c.OnClose(nil)
			time.Sleep(time.Second)
		}
		if n := h.HeldSessions(); n != 3 {
			t.Errorf("%d held sessions, want the cap of 3", n)
		}
		for i, want := range []any{nil, nil, true, true, true} {
			name := fmt.Sprint("u", i)
			c := queueLogin(t, h, name, toks[name])
			if m := lastMessage(t, c); m["success"] != true || m["resumed"] != want {
				t.Errorf("%s: %v, want resumed %v", name, m, want)
			}
		}
		if n := len(h.sessions); n != 5 {
			t.Errorf("%d sessions for 5 logged-in names", n)
		}
	})
}

// queueLogin opens a queue client on h and logs it in as name.
func queueLogin(t *testing.T, h *Hub, name, tok string) *Client {
	t.Helper()
	c := h.Open(&queueConn{}, "test", nil)
	c.drain() // hello
	m := map[string]any{"type": "login", "name": name}
	if tok != "" {
		m["token"] = tok
	}
	b, _ := json.Marshal(m)
	c.OnMessage(b)
	return c
}

// queueToken returns the token of c's last message, a successful login.
func queueToken(t *testing.T, c *Client) string {
	t.Helper()
	return tokenOf(t, lastMessage(t, c))
}

// lastMessage drains c and decodes the last message.
func lastMessage(t *testing.T, c *Client) map[string]any {
	t.Helper()
	msgs := c.drain()
	if len(msgs) == 0 {
		t.Fatal("no message")
	}
	var m map[string]any
	if err := json.Unmarshal(msgs[len(msgs)-1], &m); err != nil {
		t.Fatal(err)
	}
	return m
}
