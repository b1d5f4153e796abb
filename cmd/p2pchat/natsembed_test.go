package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/natsbus"
)

// Three binaries with -nats-embedded form one NATS and JetStream cluster
// among themselves: one name space with no nats-server to run. Killing
// one (its server with it) leaves the other two serving with the default
// lease, which outlasts the JetStream leader elections the death starts:
// a session moves to another instance with its token at once, the
// dead instance's other names come free within the lease, and their
// call peers get leave. Started again with an empty store, it rejoins.
func TestNATSEmbeddedCluster(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	var cluster, urls []string
	for range 3 {
		cluster = append(cluster, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	// Instance i, with an empty store each time.
	start := func(i int) *process {
		return startProcess(t, bin, "-addr", "127.0.0.1:0", "-https-addr=", "-stun=",
			"-nats-embedded", "-nats-cluster", cluster[i], "-nats-routes", strings.Join(cluster, ","),
			"-nats-store", t.TempDir(), "-nats-user", "p2pchat", "-nats-password", "route-secret")
	}
	// All at once: the first ones wait for the others to form the cluster.
	procs := make([]*process, 3)
	began := time.Now()
	for i := range procs {
		procs[i] = start(i)
	}
	for _, p := range procs {
		urls = append(urls, "http://"+p.listening(t, 90*time.Second))
	}
	for _, u := range urls {
		waitHealthy(t, u, 30*time.Second)
	}
	t.Logf("three instances serving %v after they started", time.Since(began).Round(time.Millisecond))

	alice := dialWS(t, urls[0], nil)
	token := alice.login("alice", true)
	carol := dialWS(t, urls[0], nil)
	carol.login("carol", true)
	if dialWS(t, urls[1], nil).login("alice", false) != "" {
		t.Fatal("alice taken twice")
	}
	bob := dialWS(t, urls[2], nil)
	bob.login("bob", true)
	bob.send(map[string]any{"type": "offer", "name": "alice", "offer": "o1"})
	if m := alice.read("offer"); string(m["name"]) != `"bob"` || string(m["offer"]) != `"o1"` {
		t.Fatalf("offer across embedded servers: %v", m)
	}
	carol.send(map[string]any{"type": "offer", "name": "bob", "offer": "o2"})
	bob.read("offer")
	bob.send(map[string]any{"type": "answer", "name": "carol", "answer": "a2"})
	carol.read("answer")

	killed := time.Now()
	if err := procs[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = procs[0].cmd.Wait()

	// alice's page reconnects elsewhere with its token: the name comes
	// back at once (once JetStream has a leader for the bucket again).
	again, m := loginUntil(t, urls[1], map[string]any{"type": "login", "name": "alice", "token": token},
		killed.Add(20*time.Second), func(m map[string]json.RawMessage) bool { return string(m["success"]) == "true" })
	if string(m["success"]) != "true" {
		t.Fatalf("alice's token refused 20 s after the kill: %v", m)
	}
	t.Logf("alice back with her token %v after her instance was killed", time.Since(killed).Round(time.Millisecond))
	again.send(map[string]any{"type": "offer", "name": "bob", "offer": "o3"})
	if m := bob.read("offer"); string(m["offer"]) != `"o3"` {
		t.Fatalf("offer after the kill: %v", m)
	}

	// carol did not come back: her name goes with the lease.
	for {
		m := bob.readWithin("leave", natsbus.DefaultLease+20*time.Second-time.Since(killed))
		if string(m["name"]) == `"carol"` {
			break
		}
	}
	t.Logf("bob got carol's leave %v after the kill (lease %v)", time.Since(killed).Round(time.Millisecond), natsbus.DefaultLease)
	if dialWS(t, urls[2], nil).login("carol", false) == "" {
		t.Fatal("carol still taken after her instance's lease")
	}

	// The machine comes back with its store gone (the default store is
	// under the temp directory, which a reboot may empty): the instance
	// rejoins the cluster on its old address, catches up and serves the
	// same name space.
	restarted := time.Now()
	procs[0] = start(0)
	urls[0] = "http://" + procs[0].listening(t, 90*time.Second)
	waitHealthy(t, urls[0], 60*time.Second)
	t.Logf("the instance restarted with an empty store serves %v after its start", time.Since(restarted).Round(time.Millisecond))
	anyReply := func(map[string]json.RawMessage) bool { return true }
	if _, m := loginUntil(t, urls[0], map[string]any{"type": "login", "name": "bob"}, restarted.Add(90*time.Second), anyReply); string(m["code"]) != `"name-taken"` {
		t.Fatalf("bob, held on another instance, given out again by the restarted one: %v", m)
	}
	dave := dialWS(t, urls[0], nil)
	dave.login("dave", true)
	dave.send(map[string]any{"type": "offer", "name": "bob", "offer": "o4"})
	if m := bob.read("offer"); string(m["name"]) != `"dave"` || string(m["offer"]) != `"o4"` {
		t.Fatalf("offer from the restarted instance: %v", m)
	}
	for _, u := range urls {
		waitHealthy(t, u, 30*time.Second)
		if n := metric(t, u, "p2pchat_nats_fail_closed_total"); n != "0" {
			t.Errorf("%s failed closed %s times", u, n)
		}
	}
}

// loginUntil sends the login msg on a new connection to base, and again on
// another while the reply is not one done takes or the connection is
// closed with 1013 (a claim that timed out while a bucket had no leader;
// the page tries again too), until deadline. It returns the connection
// and the last reply.
func loginUntil(t *testing.T, base string, msg map[string]any, deadline time.Time, done func(map[string]json.RawMessage) bool) (*wsConn, map[string]json.RawMessage) {
	t.Helper()
	for {
		c := dialWS(t, base, nil)
		c.send(msg)
		m, err := c.tryRead("login", 5*time.Second)
		late := time.Now().After(deadline)
		switch {
		case err == nil && (done(m) || late):
			return c, m
		case err != nil && (websocket.CloseStatus(err) != websocket.StatusTryAgainLater || late):
			t.Fatalf("login %v on %s: %v", msg["name"], base, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric returns the value of the counter name on base's /metrics.
func metric(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in %s/metrics", name, base)
	return ""
}

// login sends a login for name and returns the session token of a
// success; want false expects it refused as taken (and "" back), but
// reports a success all the same.
func (w *wsConn) login(name string, want bool) string {
	w.t.Helper()
	w.send(map[string]any{"type": "login", "name": name})
	m := w.read("login")
	if string(m["success"]) == "true" {
		var token string
		_ = json.Unmarshal(m["token"], &token)
		if token == "" {
			w.t.Fatalf("login %s: no token: %v", name, m)
		}
		return token
	}
	if want || string(m["code"]) != `"name-taken"` {
		w.t.Fatalf("login %s: %v", name, m)
	}
	return ""
}

// readWithin is read with a deadline of d.
func (w *wsConn) readWithin(typ string, d time.Duration) map[string]json.RawMessage {
	w.t.Helper()
	m, err := w.tryRead(typ, d)
	if err != nil {
		w.t.Fatalf("reading %s: %v", typ, err)
	}
	return m
}

// tryRead returns the next message of type typ within d, or why not.
func (w *wsConn) tryRead(typ string, d time.Duration) (map[string]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", b, err)
		}
		if string(m["type"]) == `"`+typ+`"` {
			return m, nil
		}
	}
}

// waitHealthy waits up to d for base's /healthz to answer 200.
func waitHealthy(t *testing.T, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within %v (%v)", base, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
