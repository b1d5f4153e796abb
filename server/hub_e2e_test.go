package server

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// The protocol over each real transport (transports_test.go). The hub's
// logic is tested case by case in server/signaling; these check that each
// transport carries it, and that the limits a transport enforces (read
// limit, keep-alive, slow receivers, shutdown) hold on each.

// A client written for the tutorial server sends only the tutorial's
// fields and reads only the tutorial's fields; the sender is stamped.
func TestE2ETutorialClientFullCall(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		a, b := srv.dial(t), srv.dial(t)
		a.sendRaw(`{"type":"login","name":"alice"}`)
		if m := a.expect("login"); m["success"] != true {
			t.Fatalf("login: %v", m)
		}
		b.sendRaw(`{"type":"login","name":"bob"}`)
		if m := b.expect("login"); m["success"] != true {
			t.Fatalf("login: %v", m)
		}
		a.sendRaw(`{"type":"offer","offer":{"type":"offer","sdp":"v=0 a"},"name":"bob","from":"mallory"}`)
		m := b.expect("offer")
		if m["name"] != "alice" || m["from"] != nil || !reflect.DeepEqual(m["offer"], map[string]any{"type": "offer", "sdp": "v=0 a"}) {
			t.Fatalf("offer relayed as %v", m)
		}
		b.sendRaw(`{"type":"answer","answer":{"type":"answer","sdp":"v=0 b"},"name":"alice"}`)
		if m := a.expect("answer"); !reflect.DeepEqual(m["answer"], map[string]any{"type": "answer", "sdp": "v=0 b"}) {
			t.Fatalf("answer relayed as %v", m)
		}
		b.sendRaw(`{"type":"candidate","candidate":null,"name":"alice"}`)
		if m := a.expect("candidate"); m["candidate"] != nil || m["name"] != "bob" {
			t.Fatalf("end-of-candidates relayed as %v", m)
		}
		a.sendRaw(`{"type":"leave","name":"bob"}`)
		if m := b.expect("leave"); m["name"] != "alice" {
			t.Fatalf("leave relayed as %v", m)
		}
		// Refusals keep the connection open.
		a.sendRaw(`{"type":`)
		a.expectError(signaling.CodeInvalidJSON)
		a.sendRaw(`{"type":"dance"}`)
		if m := a.expectError(signaling.CodeUnknownType); m["message"] != "Command not found: dance" {
			t.Fatalf("unknown type answered %v", m)
		}
		a.sendRaw(`{"type":"offer","name":"nobody","offer":{}}`)
		a.expectError(signaling.CodeUserNotFound)
		a.sync()
		b.sync()
	})
}

// A text message that is not UTF-8 fails the connection with 1007 (RFC
// 6455 8.1), on every transport; the hub never sees it.
func TestE2ETextNotUTF8ClosesWith1007(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		c := srv.dial(t)
		c.sendRaw("{\"type\":\"login\",\"name\":\"\xff\xfe\"}")
		if code := c.expectClosed(); code != 1007 {
			t.Fatalf("closed with %d, want 1007", code)
		}
	})
}

func TestE2EClosedConnectionReleasesNameAndTellsPeers(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		a, b := srv.login(t, "a"), srv.login(t, "b")
		a.send(map[string]any{"type": "offer", "name": "b", "offer": 1})
		b.expect("offer")
		a.conn.Close(websocket.StatusNormalClosure, "bye")
		if m := b.expect("leave"); m["name"] != "a" || m["reason"] != signaling.ReasonOffline {
			t.Fatalf("peer got %v, want leave from a", m)
		}
		srv.login(t, "a") // free at once
	})
}

func TestE2EOversizedMessageClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		a, b := srv.login(t, "a"), srv.login(t, "b")
		big := srv.login(t, "big")
		huge := `{"type":"offer","name":"b","offer":"` + strings.Repeat("x", 1<<20) + `"}`
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = big.conn.Write(ctx, websocket.MessageText, []byte(huge)) // may fail once the server closes
		if code := big.expectClosed(); code != websocket.StatusMessageTooBig {
			t.Fatalf("close status = %v, want 1009", code)
		}
		a.send(map[string]any{"type": "offer", "name": "b", "offer": "small"})
		if m := b.expect("offer"); m["offer"] != "small" {
			t.Fatalf("b got %v", m)
		}
	})
}

func TestE2EMessageJustUnderReadLimitIsRelayed(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{Signaling: signaling.Config{ReadLimit: 8 << 10}}, func(t *testing.T, srv *e2eServer) {
		a, b := srv.login(t, "a"), srv.login(t, "b")
		prefix := `{"type":"offer","name":"b","offer":"`
		payload := strings.Repeat("y", 8<<10-len(prefix)-2)
		a.sendRaw(prefix + payload + `"}`)
		if m := b.expect("offer"); m["offer"] != payload {
			t.Fatal("payload changed")
		}
	})
}

func TestE2ERateLimitAbuseClosesWith1008(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{Signaling: signaling.Config{MsgRate: 1, MsgBurst: 5}}, func(t *testing.T, srv *e2eServer) {
		c := srv.login(t, "flooder")
		for range 200 {
			if err := c.conn.Write(context.Background(), websocket.MessageText, []byte(`{}`)); err != nil {
				break
			}
		}
		if code := c.expectClosed(); code != websocket.StatusPolicyViolation {
			t.Fatalf("close status = %v, want 1008", code)
		}
	})
}

// A client that never reads must be cut off while a relay between two
// others keeps flowing.
func TestE2ESlowClientDisconnectedOthersUnaffected(t *testing.T) {
	t.Parallel()
	cfg := Config{Signaling: signaling.Config{MsgRate: -1, SendQueueBytes: 256 << 10, WriteTimeout: time.Second}}
	eachTransport(t, cfg, func(t *testing.T, srv *e2eServer) {
		sender := srv.login(t, "sender")
		srv.login(t, "slow") // never reads from now on
		a, b := srv.login(t, "a"), srv.login(t, "b")
		sender.send(map[string]any{"type": "offer", "name": "slow"})
		a.send(map[string]any{"type": "offer", "name": "b"})
		b.expect("offer")
		payload := strings.Repeat("z", 16<<10)
		deadline := time.Now().Add(20 * time.Second)
		for srv.Hub().Stats().SlowDisconnects.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("slow client was never disconnected")
			}
			sender.send(map[string]any{"type": "candidate", "name": "slow", "candidate": payload})
			a.send(map[string]any{"type": "candidate", "name": "b", "candidate": "tick"})
			if m := b.expect("candidate"); m["candidate"] != "tick" {
				t.Fatalf("b got %v", m)
			}
		}
		for {
			sender.send(map[string]any{"type": "candidate", "name": "slow", "candidate": 1})
			m := sender.recv()
			if m["type"] == "error" && m["code"] == signaling.CodeUserNotFound {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slow client's name still held; last reply %v", m)
			}
		}
	})
}

func TestE2EPingDropsDeadPeer(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{Signaling: signaling.Config{PingInterval: 100 * time.Millisecond}}, func(t *testing.T, srv *e2eServer) {
		// A client that never reads never answers pings (coder/websocket
		// answers them from its reader), like a peer whose network vanished.
		srv.login(t, "ghost")
		deadline := time.Now().Add(5 * time.Second)
		for srv.Hub().Online() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("silent peer still online after 5s")
			}
			time.Sleep(20 * time.Millisecond) // a poll of a state, not a wait for one
		}
	})
}

func TestE2EPingKeepsLivePeer(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{Signaling: signaling.Config{PingInterval: 700 * time.Millisecond}}, func(t *testing.T, srv *e2eServer) {
		c := srv.login(t, "alive")
		// A reader answers pings; nothing else is sent to an idle client.
		ctx := c.conn.CloseRead(context.Background())
		// Four intervals without a drop: a live peer answers every ping.
		// (What is checked is that nothing happens, so time must pass;
		// the interval leaves a busy machine room to answer.)
		time.Sleep(3 * time.Second)
		if ctx.Err() != nil || srv.Hub().Online() != 1 {
			t.Fatalf("live peer dropped after 4 ping intervals (ctx err %v, online %d)", ctx.Err(), srv.Hub().Online())
		}
	})
}

func TestE2EShutdownClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		a, b := srv.login(t, "a"), srv.dial(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
		for _, c := range []*wsClient{a, b} {
			if code := c.expectClosed(); code != websocket.StatusGoingAway {
				t.Errorf("close status = %v, want 1001", code)
			}
		}
		<-done
	})
}

func TestE2EManyClientsLogInAtOnce(t *testing.T) {
	t.Parallel()
	eachTransport(t, Config{}, func(t *testing.T, srv *e2eServer) {
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c := srv.dial(t)
				c.send(map[string]any{"type": "login", "name": fmt.Sprintf("user-%03d", i)})
				if m := c.expect("login"); m["success"] != true {
					t.Errorf("user-%03d: %v", i, m)
				}
			})
		}
		wg.Wait()
		if got := srv.Hub().Online(); got != n {
			t.Errorf("online = %d, want %d", got, n)
		}
	})
}

func TestE2EPresenceList(t *testing.T) {
	t.Parallel()
	cfg := Config{Signaling: signaling.Config{Presence: true, PresenceInterval: 20 * time.Millisecond}}
	eachTransport(t, cfg, func(t *testing.T, srv *e2eServer) {
		srv.login(t, "bob")
		w := srv.dial(t)
		w.send(map[string]any{"type": "login", "name": "watcher", "presence": true})
		w.expect("login")
		if m := w.expect("presence"); m["full"] != true {
			t.Fatalf("first presence %v, want the full list", m)
		}
		srv.login(t, "carol")
		for {
			m := w.expect("presence")
			if joined, _ := m["joined"].([]any); slices.Contains(joined, any("carol")) {
				break
			}
		}
	})
}
