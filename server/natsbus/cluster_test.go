package natsbus

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// freePort returns a loopback port nobody listens on (routes must know
// each other's ports before the servers start).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startJetStreamCluster runs three nats-servers routed to each other on
// loopback, each with JetStream, and returns them with the client URL
// list.
func startJetStreamCluster(t *testing.T) ([]*natsserver.Server, string) {
	t.Helper()
	const n = 3
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*natsserver.Server, n)
	var urls []string
	for i := range servers {
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "p2pchat", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  routes,
		}
		ns, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		servers[i] = ns
	}
	for _, ns := range servers {
		if !ns.ReadyForConnections(20 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		urls = append(urls, ns.ClientURL())
	}
	eventually(t, 30*time.Second, "JetStream meta leader", func() bool {
		for _, ns := range servers {
			if ns.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return servers, strings.Join(urls, ",")
}

// A JetStream cluster of three loses the server leading the name bucket:
// the instances carry on (or fail closed and come back), the names stay
// taken, and calls go on.
func TestJetStreamClusterFailover(t *testing.T) {
	servers, urls := startJetStreamCluster(t)
	a := startInstanceReplicas(t, urls, 3)
	b := startInstanceReplicas(t, urls, 3)
	alice := login(t, a.url, "alice")
	bob := login(t, b.url, "bob")
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "o"})
	bob.expect("offer")

	stream := "KV_" + DefaultBucket
	var leader *natsserver.Server
	eventually(t, 20*time.Second, "a leader of the name bucket", func() bool {
		for _, ns := range servers {
			if ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, stream) {
				leader = ns
				return true
			}
		}
		return false
	})
	leader.Shutdown()
	leader.WaitForShutdown()

	eventually(t, 30*time.Second, "a new leader of the name bucket", func() bool {
		for _, ns := range servers {
			if ns != leader && ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return true
			}
		}
		return false
	})
	eventually(t, 30*time.Second, "instances healthy", func() bool { return a.bus.Healthy() && b.bus.Healthy() })
	// Whatever happened meanwhile, each name is held at most once and
	// can be had back with its token.
	if a.holds("alice") && b.holds("alice") || a.holds("bob") && b.holds("bob") {
		t.Fatal("a name is held twice")
	}
	if !a.holds("alice") {
		alice, _ = tryLogin(t, a.url, "alice", alice.token)
	}
	if !b.holds("bob") {
		bob, _ = tryLogin(t, b.url, "bob", bob.token)
	}
	eventually(t, 10*time.Second, "names back", func() bool { return a.holds("alice") && b.holds("bob") })
	if _, reply := tryLogin(t, b.url, "alice", ""); reply["success"] != false {
		t.Fatalf("alice taken twice after the failover: %v", reply)
	}
	alice.send(map[string]any{"type": "offer", "name": "bob", "offer": "after"})
	if m := bob.expect("offer"); m["offer"] != "after" {
		t.Fatalf("offer after the failover: %v", m)
	}
}
