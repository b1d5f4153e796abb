package signaling

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestLeaveEndsCallAndLogsNobodyOut(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, Config{})
	a, b, c := login(t, url, "a"), login(t, url, "b"), login(t, url, "c")
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
	d := dial(t, url)
	d.send(map[string]any{"type": "login", "name": "b"})
	if m := d.expect("login"); m["code"] != CodeNameTaken {
		t.Fatalf("b's name was released by a leave: %v", m)
	}
}

func TestLeaveReasonIsSanitized(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, Config{})
	a, b := login(t, url, "a"), login(t, url, "b")
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
	hub, url := startHub(t, Config{})
	a, b := login(t, url, "a"), login(t, url, "b")
	bystander := login(t, url, "bystander")
	a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
	b.expect("offer")

	a.conn.Close(websocket.StatusNormalClosure, "bye")
	m := b.expect("leave")
	if m["name"] != "a" || m["reason"] != ReasonOffline {
		t.Fatalf("peer got %v, want leave from a", m)
	}
	// The name is free at once: by the time b heard of it, it is released.
	login(t, url, "a")
	// Nobody outside the call heard anything.
	bystander.sync()
	if n := hub.Online(); n != 3 {
		t.Errorf("online = %d, want 3", n)
	}
}

func TestOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, Config{})
	a, b := login(t, url, "a"), login(t, url, "b")
	big := login(t, url, "big")

	huge := `{"type":"offer","name":"b","offer":"` + strings.Repeat("x", 1<<20) + `"}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = big.conn.Write(ctx, websocket.MessageText, []byte(huge)) // may fail once the server closes
	if code := big.expectClosed(); code != websocket.StatusMessageTooBig {
		t.Fatalf("close status = %v, want 1009", code)
	}
	// Nothing reached b, and a and b go on.
	a.send(map[string]any{"type": "offer", "name": "b", "offer": "small"})
	if m := b.expect("offer"); m["offer"] != "small" {
		t.Fatalf("b got %v", m)
	}
}

func TestMessageJustUnderReadLimitIsRelayed(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, Config{ReadLimit: 8 << 10})
	a, b := login(t, url, "a"), login(t, url, "b")
	prefix := `{"type":"offer","name":"b","offer":"`
	payload := strings.Repeat("y", 8<<10-len(prefix)-2)
	a.sendRaw(prefix + payload + `"}`)
	if m := b.expect("offer"); m["offer"] != payload {
		t.Fatal("payload changed")
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, Config{MsgRate: 1, MsgBurst: 5})
	c := login(t, url, "flooder") // the login took one token
	for range 4 {
		c.send(map[string]any{"type": "ping-ish"})
		c.expectError(CodeUnknownType)
	}
	c.send(map[string]any{"type": "ping-ish"})
	c.expectError(CodeRateLimited)

	// Persistent abuse closes the connection with 1008.
	for i := 0; i < strikesBeforeClose+5; i++ {
		if err := c.conn.Write(context.Background(), websocket.MessageText, []byte(`{}`)); err != nil {
			break
		}
	}
	if code := c.expectClosed(); code != websocket.StatusPolicyViolation {
		t.Fatalf("close status = %v, want 1008", code)
	}
}

func TestRateLimitAllowsCallStartBurst(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, DefaultConfig())
	a, b := login(t, url, "a"), login(t, url, "b")
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
	hub, url := startHub(t, Config{MsgRate: -1, SendQueue: 16, WriteTimeout: time.Second})
	sender := login(t, url, "sender")
	slow := login(t, url, "slow") // never reads from now on
	a, b := login(t, url, "a"), login(t, url, "b")
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
	hub, url := startHub(t, Config{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, url)
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

func TestPingDropsDeadPeer(t *testing.T) {
	t.Parallel()
	hub, url := startHub(t, Config{PingInterval: 100 * time.Millisecond})
	// A client that never reads never answers pings (coder/websocket
	// answers them from its reader), like a peer whose network vanished.
	login(t, url, "ghost")
	deadline := time.Now().Add(5 * time.Second)
	for hub.Online() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("silent peer still online after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPingKeepsLivePeer(t *testing.T) {
	t.Parallel()
	hub, url := startHub(t, Config{PingInterval: 700 * time.Millisecond})
	c := login(t, url, "alive")
	// A reader answers pings; nothing else is sent to an idle client.
	ctx := c.conn.CloseRead(context.Background())
	time.Sleep(3 * time.Second)
	if ctx.Err() != nil || hub.Online() != 1 {
		t.Fatalf("live peer dropped after 4 ping intervals (ctx err %v, online %d)", ctx.Err(), hub.Online())
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	hub, url := startHub(t, Config{})
	a, b := login(t, url, "a"), dial(t, url)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	}()
	for _, c := range []*client{a, b} {
		if code := c.expectClosed(); code != websocket.StatusGoingAway {
			t.Errorf("close status = %v, want 1001", code)
		}
	}
	<-done
}
