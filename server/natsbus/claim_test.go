package natsbus

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// A name given back and claimed again at once on the same instance has
// one subscription: Release leaves the unsubscribe to releaseLoop, and a
// new claim must not subscribe beside the old one, or every relay to the
// name would arrive twice.
func TestReleaseThenClaimAgainOnSameInstance(t *testing.T) {
	_, in := threeInstances(t)
	bob := login(t, in[1].url, "bob")
	for i := range 10 {
		var alice *client
		eventually(t, 5*time.Second, "alice free on instance 0", func() bool {
			c, reply := tryLogin(t, in[0].url, "alice", "")
			if reply["success"] == true {
				alice = c
				return true
			}
			c.conn.CloseNow()
			return false
		})
		first, second := strconv.Itoa(i)+"a", strconv.Itoa(i)+"b"
		bob.send(map[string]any{"type": "offer", "name": "alice", "offer": first})
		bob.send(map[string]any{"type": "offer", "name": "alice", "offer": second})
		// The two come in order through one inbox: a second copy of the
		// first would come before the second.
		for _, want := range []string{first, second} {
			if m := alice.expect("offer"); m["offer"] != want {
				t.Fatalf("round %d: got offer %v, want %q", i, m["offer"], want)
			}
		}
		alice.conn.Close(websocket.StatusNormalClosure, "")
	}
}

// The same at the bus, with releaseLoop held up behind other releases:
// when the new claim of a name is back, the old claim's subscription is
// gone, not still waiting in the queue.
func TestClaimAgainTakesBackQueuedRelease(t *testing.T) {
	ns := startNATS(t, t.TempDir(), 0)
	hub := signaling.NewHub(signaling.Config{ICE: signaling.StaticICE{}}, testLog())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := Open(ctx, hub, Options{Lease: testLease, Memory: true, NATS: []nats.Option{nats.InProcessServer(ns)}}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	const others = 200
	for i := range others {
		if _, err := b.Claim("u"+strconv.Itoa(i), "t", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Claim("x", "t", ""); err != nil {
		t.Fatal(err)
	}
	old := b.owned["x"].sub
	for i := range others {
		b.Release("u" + strconv.Itoa(i))
	}
	b.Release("x")
	if _, err := b.Claim("x", "t2", ""); err != nil {
		t.Fatal(err)
	}
	if old.IsValid() {
		t.Fatal("the old claim's subscription is still there beside the new one")
	}
	b.mu.Lock()
	_, queued := b.releasing["x"]
	b.mu.Unlock()
	if queued {
		t.Fatal("the old release is still queued after the name was claimed again")
	}
}

// Connections that close right after sending their login, most of them
// while the claim is in flight: every name won for one goes back, so all
// are free on another instance, and none is held where it was claimed.
func TestCloseDuringClaimFreesNames(t *testing.T) {
	_, in := threeInstances(t)
	const n = 40
	for i := range n {
		c := dial(t, in[0].url)
		c.send(map[string]any{"type": "login", "name": "gone" + strconv.Itoa(i)})
		c.conn.CloseNow()
	}
	for i := range n {
		name := "gone" + strconv.Itoa(i)
		eventually(t, 5*time.Second, name+" free on instance 1", func() bool {
			c, reply := tryLogin(t, in[1].url, name, "")
			c.conn.CloseNow()
			return reply["success"] == true
		})
	}
	eventually(t, 5*time.Second, "instance 0 holds nothing", func() bool {
		held := 0
		in[0].srv.Hub().Names(func(string) { held++ })
		return held == 0
	})
}
