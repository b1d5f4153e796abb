package natsbus

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/p2pchat/p2pchat/server/signaling"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEncodeNames(t *testing.T) {
	for _, name := range []string{"小明", "a.b", "a b", "*", ">", "José", "x/y"} {
		key := encode(name)
		for _, r := range key {
			if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				t.Fatalf("key %q of %q has %q", key, name, r)
			}
		}
		if got, ok := decode(key); !ok || got != name {
			t.Fatalf("decode(%q) = %q, %v", key, got, ok)
		}
	}
}

// A name is one name space: taken on one instance, refused on the
// others, free everywhere once its holder is gone.
func TestNameTakenAcrossInstances(t *testing.T) {
	_, in := threeInstances(t)
	a := login(t, in[0].url, "小明")
	for _, i := range in[1:] {
		if _, reply := tryLogin(t, i.url, "小明", ""); reply["success"] != false || reply["code"] != signaling.CodeNameTaken {
			t.Fatalf("second login of 小明: %v", reply)
		}
	}
	// A wrong token does not take it either.
	if _, reply := tryLogin(t, in[1].url, "小明", "AAAAAAAAAAAAAAAAAAAAAA"); reply["success"] != false {
		t.Fatalf("login with a wrong token: %v", reply)
	}
	a.conn.Close(websocket.StatusNormalClosure, "")
	eventually(t, 5*time.Second, "小明 free on instance 2", func() bool {
		c, reply := tryLogin(t, in[2].url, "小明", "")
		if reply["success"] == true {
			return true
		}
		c.conn.CloseNow()
		return false
	})
}

// The tutorial's whole call, caller and callee on different instances:
// sender stamped, payloads byte for byte, calls tracked per pair.
func TestCallAcrossInstances(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	bob := login(t, in[1].url, "小明")

	offer := `{"type":"offer","sdp":"v=0\r\n o=- 1 2 IN IP4 127.0.0.1 \u00e9 小明","x":[1, 2 ,3]}`
	alice.sendRaw(`{"type":"offer","name":"小明","name2":"mallory","offer":` + offer + `}`)
	raw := bob.recvRaw()
	want := `{"type":"offer","offer":` + offer + `,"name":"alice"}`
	if !bytes.Equal(raw, []byte(want)) {
		t.Fatalf("offer arrived as\n%s\nwant\n%s", raw, want)
	}
	bob.send(map[string]any{"type": "answer", "name": "alice", "answer": map[string]any{"type": "answer", "sdp": "v=0"}})
	if m := alice.expect("answer"); m["name"] != "小明" {
		t.Fatalf("answer: %v", m)
	}
	for i := range 20 {
		alice.send(map[string]any{"type": "candidate", "name": "小明", "candidate": map[string]any{"n": i}})
	}
	for i := range 20 {
		m := bob.expect("candidate")
		if m["name"] != "alice" || m["candidate"].(map[string]any)["n"] != float64(i) {
			t.Fatalf("candidate %d: %v", i, m)
		}
	}
	bob.send(map[string]any{"type": "candidate", "name": "alice", "candidate": nil})
	if m := alice.expect("candidate"); m["candidate"] != nil || m["name"] != "小明" {
		t.Fatalf("end of candidates: %v", m)
	}
	bob.send(map[string]any{"type": "leave", "name": "alice", "reason": "hangup"})
	if m := alice.expect("leave"); m["name"] != "小明" || m["reason"] != "hangup" {
		t.Fatalf("leave: %v", m)
	}
	// The call is over on both sides, and both stay logged in.
	alice.send(map[string]any{"type": "candidate", "name": "小明", "candidate": nil})
	alice.expectError(signaling.CodeNotInCall, "小明")
	bob.send(map[string]any{"type": "answer", "name": "alice", "answer": nil})
	bob.expectError(signaling.CodeNotInCall, "alice")
	alice.send(map[string]any{"type": "offer", "name": "小明", "offer": nil})
	bob.expect("offer")
}

// Refusals hold across instances: user-not-found at once for a name
// online nowhere, not-in-call for a stranger on another instance.
func TestRefusalsAcrossInstances(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	bob := login(t, in[1].url, "bob")
	mallory := login(t, in[2].url, "mallory")

	for _, typ := range []string{"offer", "answer", "candidate"} {
		alice.send(map[string]any{"type": typ, "name": "nobody", typ: nil})
		if typ == "offer" {
			alice.expectError(signaling.CodeUserNotFound, "nobody")
		} else {
			alice.expectError(signaling.CodeNotInCall, "nobody")
		}
	}
	alice.send(map[string]any{"type": "leave", "name": "nobody"})
	alice.expectError(signaling.CodeNotInCall, "nobody")

	mallory.send(map[string]any{"type": "answer", "name": "bob", "answer": "x"})
	mallory.expectError(signaling.CodeNotInCall, "bob")
	mallory.send(map[string]any{"type": "candidate", "name": "bob", "candidate": "x"})
	mallory.expectError(signaling.CodeNotInCall, "bob")

	// A call between alice and bob lets neither mallory in.
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")
	mallory.send(map[string]any{"type": "candidate", "name": "alice", "candidate": "x"})
	mallory.expectError(signaling.CodeNotInCall, "alice")
	bob.sync()
	alice.sync()
}

// A closed connection's remote peers get leave, and its name is free.
func TestCloseSendsLeaveAcrossInstances(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	bob := login(t, in[1].url, "bob")
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")
	alice.conn.Close(websocket.StatusNormalClosure, "")
	if m := bob.expect("leave"); m["name"] != "alice" || m["reason"] != signaling.ReasonOffline {
		t.Fatalf("leave: %v", m)
	}
	bob.send(map[string]any{"type": "candidate", "name": "alice", "candidate": nil})
	bob.expectError(signaling.CodeNotInCall, "alice")
}

// A killed instance's names are free within the lease and a second, and
// its users' peers elsewhere get leave.
func TestKilledInstanceNamesExpire(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	bob := login(t, in[1].url, "bob")
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")
	killed := time.Now()
	in[0].kill()
	var freed time.Duration
	eventually(t, testLease+5*time.Second, "alice free", func() bool {
		c, reply := tryLogin(t, in[2].url, "alice", "")
		if reply["success"] == true {
			freed = time.Since(killed)
			return true
		}
		c.conn.CloseNow()
		return false
	})
	t.Logf("name free %v after the kill (lease %v)", freed, testLease)
	if freed > testLease+time.Second {
		t.Errorf("name free only %v after the kill; lease is %v", freed, testLease)
	}
	if m := bob.expect("leave"); m["name"] != "alice" {
		t.Fatalf("leave: %v", m)
	}
}

// A session token takes the name back at once on another instance, with
// its call; the old connection is closed with 4001.
func TestResumeOnAnotherInstance(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	bob := login(t, in[1].url, "bob")
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")

	alice2, reply := tryLogin(t, in[2].url, "alice", alice.token)
	if reply["success"] != true || reply["resumed"] != true {
		t.Fatalf("resume on another instance: %v", reply)
	}
	if code := alice.expectClosed(); code != signaling.StatusSessionResumed {
		t.Fatalf("old connection closed with %v", code)
	}
	bob.send(map[string]any{"type": "answer", "name": "alice", "answer": "a"})
	if m := alice2.expect("answer"); m["name"] != "bob" {
		t.Fatalf("answer: %v", m)
	}
	alice2.send(map[string]any{"type": "candidate", "name": "bob", "candidate": "c"})
	if m := bob.expect("candidate"); m["name"] != "alice" {
		t.Fatalf("candidate: %v", m)
	}
	if in[0].holds("alice") || !in[2].holds("alice") {
		t.Fatal("alice held on the wrong instance")
	}
	// The old token is dead, the new one works (here on the first
	// instance again).
	if _, reply := tryLogin(t, in[1].url, "alice", alice.token); reply["success"] != false {
		t.Fatalf("old token: %v", reply)
	}
	if _, reply := tryLogin(t, in[0].url, "alice", alice2.token); reply["success"] != true {
		t.Fatalf("new token: %v", reply)
	}
}

// After its instance died, a session comes back on another at once, not
// after the lease.
func TestResumeAfterInstanceDied(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	in[0].kill()
	if _, reply := tryLogin(t, in[1].url, "alice", ""); reply["success"] != false {
		t.Fatalf("without a token, alice must wait for the lease: %v", reply)
	}
	if _, reply := tryLogin(t, in[1].url, "alice", alice.token); reply["success"] != true || reply["resumed"] != true {
		t.Fatalf("resume: %v", reply)
	}
}

// NATS restarted mid-call: the instances drop their clients after half
// the lease (1012) and refuse logins (1013) while it is away, then come
// back; nobody ever holds a name on two instances.
func TestNATSRestartMidCall(t *testing.T) {
	dir := t.TempDir()
	ns := startNATS(t, dir, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	a := startInstanceMem(t, nil, ns.ClientURL(), false)
	b := startInstanceMem(t, nil, ns.ClientURL(), false)
	alice := login(t, a.url, "alice")
	bob := login(t, b.url, "bob")
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")

	ns.Shutdown()
	ns.WaitForShutdown()
	for _, c := range []*client{alice, bob} {
		if code := c.expectClosed(); code != signaling.StatusTryElsewhere {
			t.Fatalf("%s closed with %v, want %d", c.name, code, signaling.StatusTryElsewhere)
		}
	}
	if a.bus.Healthy() || b.bus.Healthy() {
		t.Fatal("an instance without NATS says it is healthy")
	}
	c := dial(t, a.url)
	c.send(map[string]any{"type": "login", "name": "carol"})
	if code := c.expectClosed(); code != 1013 {
		t.Fatalf("login without NATS closed with %v, want 1013", code)
	}
	if a.holds("alice") || b.holds("bob") {
		t.Fatal("names still held after failing closed")
	}

	startNATS(t, dir, port)
	eventually(t, 15*time.Second, "instances healthy again", func() bool {
		return a.bus.Healthy() && b.bus.Healthy()
	})
	// Each comes back on the other instance, with its token; a second
	// login elsewhere is refused.
	alice2, reply := tryLogin(t, b.url, "alice", alice.token)
	if reply["success"] != true {
		t.Fatalf("alice after the restart: %v", reply)
	}
	bob2, reply := tryLogin(t, a.url, "bob", bob.token)
	if reply["success"] != true {
		t.Fatalf("bob after the restart: %v", reply)
	}
	if _, reply := tryLogin(t, a.url, "alice", ""); reply["success"] != false {
		t.Fatalf("alice owned twice: %v", reply)
	}
	if a.holds("alice") || !b.holds("alice") || b.holds("bob") || !a.holds("bob") {
		t.Fatal("a name is held on the wrong instance")
	}
	alice2.send(map[string]any{"type": "offer", "name": "bob", "offer": "again"})
	if m := bob2.expect("offer"); m["name"] != "alice" || m["offer"] != "again" {
		t.Fatalf("offer after the restart: %v", m)
	}
}

// Presence spans the instances: a login on one shows up in the lists of
// subscribers on the others, coalesced as on one instance, and so does
// its end.
func TestPresenceAcrossInstances(t *testing.T) {
	_, in := threeInstances(t)
	login(t, in[0].url, "carol")
	watcher := dial(t, in[1].url)
	watcher.send(map[string]any{"type": "login", "name": "watcher", "presence": true})
	watcher.expect("login")
	bob := login(t, in[2].url, "小明")
	online := map[string]bool{}
	apply := func(m map[string]any) {
		if m["full"] == true {
			clear(online)
			for _, u := range asList(m["users"]) {
				online[u] = true
			}
		}
		for _, u := range asList(m["joined"]) {
			online[u] = true
		}
		for _, u := range asList(m["left"]) {
			delete(online, u)
		}
	}
	for !online["小明"] || !online["carol"] || !online["watcher"] {
		apply(watcher.expect("presence"))
	}
	bob.conn.Close(websocket.StatusNormalClosure, "")
	for online["小明"] {
		apply(watcher.expect("presence"))
	}
}

func asList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}
