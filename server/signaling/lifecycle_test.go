package signaling

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLeaveEndsCallAndLogsNobodyOut(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b, c := login(t, hub, "a"), login(t, hub, "b"), login(t, hub, "c")
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
	b.expect("offer")
	b.send(map[string]any{"type": "leave", "name": "a", "reason": "declined"})
	if m := a.expect("leave"); m["name"] != "b" || m["reason"] != "declined" {
		t.Fatalf("leave relayed as %v", m)
	}
	// The tutorial server removed the target here; b must still be
	// reachable, by a third user and by a again.
	c.send(map[string]any{"type": "offer", "name": "b", "offer": 2})
	if m := b.expect("offer"); m["name"] != "c" {
		t.Fatalf("third user's offer: %v", m)
	}
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 3})
	b.expect("offer")
	// And b's name is still b's: nobody can take it.
	d := dial(t, hub)
	d.send(map[string]any{"type": "login", "name": "b"})
	if m := d.expect("login"); m["code"] != CodeNameTaken {
		t.Fatalf("b's name was released by a leave: %v", m)
	}
}

func TestLeaveReasonIsSanitized(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b := login(t, hub, "a"), login(t, hub, "b")
	for _, tt := range []struct{ sent, want any }{
		{"busy", "busy"},
		{"<script>alert(1)</script>", nil},
		{strings.Repeat("x", 64), nil},
	} {
		a.send(map[string]any{"type": "offer", "name": "b"})
		b.expect("offer")
		a.send(map[string]any{"type": "leave", "name": "b", "reason": tt.sent})
		if m := b.expect("leave"); m["reason"] != tt.want {
			t.Errorf("reason %q relayed as %v, want %v", tt.sent, m["reason"], tt.want)
		}
	}
}

func TestClosedConnectionReleasesNameAndTellsPeers(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b := login(t, hub, "a"), login(t, hub, "b")
	bystander := login(t, hub, "bystander")
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
	b.expect("offer")

	a.conn.Close(1000, "bye")
	m := b.expect("leave")
	if m["name"] != "a" || m["reason"] != ReasonOffline {
		t.Fatalf("peer got %v, want leave from a", m)
	}
	// The name is free at once: by the time b heard of it, it is released.
	login(t, hub, "a")
	// Nobody outside the call heard anything.
	bystander.sync()
	if n := hub.Online(); n != 3 {
		t.Errorf("online = %d, want 3", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{MsgRate: 1, MsgBurst: 5})
	c := login(t, hub, "flooder") // the login took one token
	for range 4 {
		c.send(map[string]any{"type": "ping-ish"})
		c.expectError(CodeUnknownType)
	}
	c.send(map[string]any{"type": "ping-ish"})
	c.expectError(CodeRateLimited)

	// Persistent abuse closes the connection with 1008.
	for i := 0; i < strikesBeforeClose+5; i++ {
		if !c.trySendRaw(`{}`) {
			break
		}
	}
	if code := c.expectClosed(); code != statusPolicyViolation {
		t.Fatalf("close status = %v, want 1008", code)
	}
}

func TestRateLimitAllowsCallStartBurst(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, DefaultConfig())
	a, b := login(t, hub, "a"), login(t, hub, "b")
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
	for i := range 60 {
		a.send(map[string]any{"type": "candidate", "name": "b", "candidate": i})
	}
	b.expect("offer")
	for i := range 60 {
		if m := b.expect("candidate"); m["candidate"] != float64(i) {
			t.Fatalf("candidate %d: %v", i, m)
		}
	}
	a.sync()
}

// A client that never reads must be cut off while a relay between two
// others keeps flowing at full speed.
func TestSlowClientDisconnectedOthersUnaffected(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{MsgRate: -1, SendQueueBytes: 64 << 10})
	sender := login(t, hub, "sender")
	slow := login(t, hub, "slow") // never reads from now on
	a, b := login(t, hub, "a"), login(t, hub, "b")
	sender.send(map[string]any{"type": "offer", "name": "slow"})
	a.send(map[string]any{"type": "offer", "name": "b"})
	b.expect("offer")

	payload := strings.Repeat("z", 16<<10)
	deadline := time.Now().Add(20 * time.Second)
	for hub.Stats().SlowDisconnects.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow client was never disconnected")
		}
		sender.send(map[string]any{"type": "candidate", "name": "slow", "candidate": payload})
		a.send(map[string]any{"type": "candidate", "name": "b", "candidate": "tick"})
		if m := b.expect("candidate"); m["candidate"] != "tick" {
			t.Fatalf("b got %v", m)
		}
	}
	// The sender learns that slow is gone once its name is released.
	for {
		sender.send(map[string]any{"type": "candidate", "name": "slow", "candidate": 1})
		m := sender.recv()
		if m["type"] == "error" && m["code"] == CodeUserNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow client's name still held; last reply %v", m)
		}
	}
	_ = slow
}

func TestManyClientsLogInAtOnce(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, hub)
			c.send(map[string]any{"type": "login", "name": fmt.Sprintf("user-%03d", i)})
			m, err := c.tryRecv(recvTimeout)
			if err != nil || m["success"] != true {
				errs <- fmt.Errorf("user-%03d: %v %v", i, m, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := hub.Online(); got != n {
		t.Errorf("online = %d, want %d", got, n)
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	hub, _ := startHub(t, Config{})
	a, b := login(t, hub, "a"), dial(t, hub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	}()
	for _, c := range []*client{a, b} {
		if code := c.expectClosed(); code != statusGoingAway {
			t.Errorf("close status = %v, want 1001", code)
		}
	}
	<-done
}
