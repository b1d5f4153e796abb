package natsbus

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// bucketSeq is the last sequence of the name bucket's stream: it moves
// with every write to any name key.
func bucketSeq(t *testing.T, b *Bus) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := b.js.Stream(ctx, "KV_"+b.opts.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// The lease is one key per instance: holding names costs no writes to
// their keys, however many refresh rounds go by.
func TestLeaseRefreshWritesNoNameKeys(t *testing.T) {
	_, in := threeInstances(t)
	for i := range 20 {
		login(t, in[i%3].url, "u"+strconv.Itoa(i))
	}
	before := bucketSeq(t, in[0].bus)
	refreshes := in[0].bus.Stats.LeaseRefreshes.Load()
	time.Sleep(testLease) // four rounds
	if n := in[0].bus.Stats.LeaseRefreshes.Load() - refreshes; n < 2 {
		t.Fatalf("%d lease refreshes in %v; want at least 2", n, testLease)
	}
	if after := bucketSeq(t, in[0].bus); after != before {
		t.Fatalf("name bucket moved from %d to %d while nobody logged in or out", before, after)
	}
	if _, reply := tryLogin(t, in[1].url, "u0", ""); reply["success"] != false {
		t.Fatalf("u0 taken twice after the refreshes: %v", reply)
	}
}

// Names left by an instance that died while no other was watching (a
// whole cluster restarted) are offline and free for the next instance:
// it finds their owner's lease gone and purges them.
func TestNamesOfInstanceDeadBeforeStartAreFree(t *testing.T) {
	ns := startNATS(t, t.TempDir(), 0)
	a := startInstance(t, ns, "")
	login(t, a.url, "alice")
	login(t, a.url, "bob")
	a.kill()
	// a's lease gone, and the marker of its expiry too
	time.Sleep(2*testLease + 500*time.Millisecond)

	b := startInstance(t, ns, "")
	eventually(t, 5*time.Second, "stale names purged", func() bool { return b.bus.Stats.Purged.Load() >= 2 })
	watcher := dial(t, b.url)
	watcher.send(map[string]any{"type": "login", "name": "watcher", "presence": true})
	watcher.expect("login")
	online := map[string]bool{}
	for !online["watcher"] {
		m := watcher.expect("presence")
		if m["full"] == true {
			clear(online)
		}
		for _, k := range []string{"users", "joined"} {
			for _, u := range asList(m[k]) {
				online[u] = true
			}
		}
		for _, u := range asList(m["left"]) {
			delete(online, u)
		}
	}
	if online["alice"] || online["bob"] {
		t.Fatalf("dead instance's names listed online: %v", online)
	}
	if _, reply := tryLogin(t, b.url, "alice", ""); reply["success"] != true {
		t.Fatalf("alice after her instance died: %v", reply)
	}
}

// An instance that fails closed comes back as a new incarnation: the
// keys its old one left are freed by the others, and a client of its
// own gets its name back with its token.
func TestFailClosedStartsNewIncarnation(t *testing.T) {
	_, in := threeInstances(t)
	alice := login(t, in[0].url, "alice")
	login(t, in[0].url, "bob")
	old := in[0].bus.me()
	in[0].bus.failClosed("test")
	if code := alice.expectClosed(); code != 1012 {
		t.Fatalf("alice closed with %v, want 1012", code)
	}
	if now := in[0].bus.me(); now == old {
		t.Fatalf("incarnation still %s after failing closed", now)
	}
	eventually(t, 5*time.Second, "healthy again", in[0].bus.Healthy)
	// bob's key belonged to the old incarnation, whose lease refresh
	// deleted: the others free it.
	eventually(t, 5*time.Second, "bob free elsewhere", func() bool {
		c, reply := tryLogin(t, in[1].url, "bob", "")
		if reply["success"] == true {
			return true
		}
		c.conn.CloseNow()
		return false
	})
	if _, reply := tryLogin(t, in[0].url, "alice", alice.token); reply["success"] != true {
		t.Fatalf("alice back with her token: %v", reply)
	}
	if _, reply := tryLogin(t, in[2].url, "alice", ""); reply["success"] != false {
		t.Fatalf("alice owned twice: %v", reply)
	}
}
