package server

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// gateCluster is a name space of one instance whose claims of gated
// names wait until the test opens their gate, standing for a slow NATS.
// Claims of other names succeed at once; relays to names not held here
// bounce.
type gateCluster struct {
	hub     *signaling.Hub
	started chan string // names whose gated claim has started

	mu       sync.Mutex
	gates    map[string]chan error // the outcome of a gated claim
	released []string
}

func newGateCluster(gated ...string) *gateCluster {
	g := &gateCluster{started: make(chan string, len(gated)), gates: make(map[string]chan error)}
	for _, name := range gated {
		g.gates[name] = make(chan error, 1)
	}
	return g
}

func (g *gateCluster) Claim(name, _, _ string) (signaling.Claim, error) {
	g.mu.Lock()
	gate := g.gates[name]
	g.mu.Unlock()
	if gate == nil {
		return signaling.Claim{}, nil
	}
	g.started <- name
	return signaling.Claim{}, <-gate
}

// open lets the claim of name finish with err (nil: the name is won).
func (g *gateCluster) open(name string, err error) {
	g.mu.Lock()
	gate := g.gates[name]
	delete(g.gates, name)
	g.mu.Unlock()
	if gate != nil {
		gate <- err
	}
}

// openAll lets every claim still waiting fail, so that a failed test
// still shuts down.
func (g *gateCluster) openAll() {
	g.mu.Lock()
	names := make([]string, 0, len(g.gates))
	for name := range g.gates {
		names = append(names, name)
	}
	g.mu.Unlock()
	for _, name := range names {
		g.open(name, errors.New("test over"))
	}
}

func (g *gateCluster) waitStarted(t *testing.T, name string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != name {
			t.Fatalf("claim of %q started, want %q", got, name)
		}
	case <-time.After(recvTimeout):
		t.Fatalf("claim of %q never started", name)
	}
}

func (g *gateCluster) wasReleased(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.released, name)
}

func (g *gateCluster) Rekey(string, string) {}

func (g *gateCluster) Release(name string) {
	g.mu.Lock()
	g.released = append(g.released, name)
	g.mu.Unlock()
}

func (g *gateCluster) Relay(from, to, typ string, _ []byte) { g.hub.Bounce(from, to, typ) }

// startGated serves one event loop, so that every connection shares the
// goroutine a claim must not hold up, in g's name space.
func startGated(t *testing.T, g *gateCluster) *e2eServer {
	t.Helper()
	srv := startE2EWith(t, Config{EventLoops: 1}, false, func(s *Server) {
		g.hub = s.Hub()
		s.Hub().SetCluster(g)
	})
	t.Cleanup(g.openAll) // before the server's shutdown, which waits for claims
	return srv
}

// within reads c's next message, failing the test if none comes in d:
// shorter than recvTimeout, since what is tested is that nothing waits.
func (c *wsClient) within(d time.Duration) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: nothing within %v: %v", c.name, d, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%s: server sent invalid JSON: %s", c.name, data)
	}
	return m
}

// waitClaim bounds how long a test waits for what a blocked claim must
// not hold up.
const waitClaim = 5 * time.Second

// While a login waits for its cluster claim, the event loop goes on:
// a call between two other users of the same loop is relayed both ways.
func TestClusterClaimDoesNotHoldUpTheLoop(t *testing.T) {
	g := newGateCluster("carol")
	srv := startGated(t, g)
	alice := srv.login(t, "alice")
	bob := srv.login(t, "bob")
	carol := srv.dial(t)
	carol.send(map[string]any{"type": "login", "name": "carol"})
	g.waitStarted(t, "carol")

	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	if m := bob.within(waitClaim); m["type"] != "offer" || m["name"] != "alice" {
		t.Fatalf("bob got %v", m)
	}
	bob.send(map[string]any{"type": "answer", "name": "alice", "answer": "a"})
	if m := alice.within(waitClaim); m["type"] != "answer" || m["name"] != "bob" {
		t.Fatalf("alice got %v", m)
	}
	late := srv.dial(t) // the loop also accepts and greets
	late.send(map[string]any{"type": "login", "name": "dave"})
	if m := late.within(waitClaim); m["type"] != "login" || m["success"] != true {
		t.Fatalf("dave's login: %v", m)
	}

	g.open("carol", nil)
	if m := carol.expect("login"); m["success"] != true || m["name"] != "carol" {
		t.Fatalf("carol's login: %v", m)
	}
	carol.name = "carol"
	carol.send(map[string]any{"type": "offer", "name": "alice", "offer": "o2"})
	if m := alice.expect("offer"); m["name"] != "carol" {
		t.Fatalf("alice got %v", m)
	}
}

// Until its claim is done, a connection is not logged in: relays and
// ice are refused as before a login, a second login is refused with
// already-logged-in and leaves the first alone; a claim refused by the
// cluster is name-taken, and the connection may then log in again.
func TestClusterMessagesDuringClaim(t *testing.T) {
	g := newGateCluster("carol", "held")
	srv := startGated(t, g)
	srv.login(t, "alice")
	carol := srv.dial(t)
	carol.send(map[string]any{"type": "login", "name": "carol"})
	g.waitStarted(t, "carol")

	carol.send(map[string]any{"type": "offer", "name": "alice", "offer": "o"})
	if m := carol.within(waitClaim); m["code"] != signaling.CodeNotLoggedIn {
		t.Fatalf("offer during the claim: %v", m)
	}
	carol.send(map[string]any{"type": "ice"})
	if m := carol.within(waitClaim); m["code"] != signaling.CodeNotLoggedIn {
		t.Fatalf("ice during the claim: %v", m)
	}
	carol.send(map[string]any{"type": "login", "name": "carol2"})
	if m := carol.within(waitClaim); m["type"] != "login" || m["success"] != false || m["code"] != signaling.CodeAlreadyLoggedIn {
		t.Fatalf("second login during the claim: %v", m)
	}
	other := srv.dial(t)
	other.send(map[string]any{"type": "login", "name": "carol"})
	if m := other.within(waitClaim); m["success"] != false || m["code"] != signaling.CodeNameTaken {
		t.Fatalf("the same name on another connection during the claim: %v", m)
	}

	g.open("carol", nil)
	if m := carol.expect("login"); m["success"] != true || m["name"] != "carol" {
		t.Fatalf("carol's login: %v", m)
	}
	carol.sync()

	held := srv.dial(t)
	held.send(map[string]any{"type": "login", "name": "held"})
	g.waitStarted(t, "held")
	g.open("held", signaling.ErrNameHeld)
	if m := held.expect("login"); m["success"] != false || m["code"] != signaling.CodeNameTaken {
		t.Fatalf("claim refused by the cluster: %v", m)
	}
	held.send(map[string]any{"type": "login", "name": "free"})
	if m := held.expect("login"); m["success"] != true || m["name"] != "free" {
		t.Fatalf("login after a refused claim: %v", m)
	}
}

// A connection that closes while its name is claimed is gone when the
// claim comes back: the name goes back to the cluster, the hub does not
// hold it, and it is free for the next login.
func TestClusterCloseDuringClaimReleasesName(t *testing.T) {
	g := newGateCluster("carol")
	srv := startGated(t, g)
	carol := srv.dial(t)
	carol.send(map[string]any{"type": "login", "name": "carol"})
	g.waitStarted(t, "carol")
	carol.conn.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(waitClaim)
	for srv.Hub().Stats().Connections.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection is still open on the hub")
		}
		time.Sleep(5 * time.Millisecond)
	}

	g.open("carol", nil)
	deadline = time.Now().Add(waitClaim)
	for !g.wasReleased("carol") {
		if time.Now().After(deadline) {
			t.Fatal("the name won for a closed connection was not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Hub().Names(func(n string) { t.Errorf("the hub holds %q", n) })
	again := srv.login(t, "carol")
	again.sync()
}

// Shutdown closes a connection whose claim is in flight with 1001 and
// waits for the claim, whose name then goes back.
func TestClusterShutdownDuringClaim(t *testing.T) {
	g := newGateCluster("carol")
	srv := startGated(t, g)
	carol := srv.dial(t)
	carol.send(map[string]any{"type": "login", "name": "carol"})
	g.waitStarted(t, "carol")

	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitClaim)
		defer cancel()
		srv.Hub().Shutdown(ctx)
		close(done)
	}()
	if code := carol.expectClosed(); code != websocket.StatusGoingAway {
		t.Fatalf("closed with %v, want 1001", code)
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned with a claim in flight")
	case <-time.After(100 * time.Millisecond):
	}
	g.open("carol", nil)
	select {
	case <-done:
	case <-time.After(waitClaim):
		t.Fatal("Shutdown did not return once the claim was done")
	}
	if !g.wasReleased("carol") {
		t.Fatal("the name won during Shutdown was not released")
	}
}
