package e2e

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// balancer is a TCP load balancer in front of several instances, as
// HAProxy or nginx in TCP mode without sticky sessions: each new
// connection goes to the backend the test prefers, or to the next one
// that accepts when that one is down.
type balancer struct {
	ln       net.Listener
	backends []string

	mu     sync.Mutex
	prefer int
	wsTo   []int // the backend of each WebSocket connection, in order
	conns  []net.Conn
}

func newBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends}
	go b.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			_ = c.Close()
		}
	})
	return b
}

// URL is the page's address through the balancer.
func (b *balancer) URL() string { return "http://" + b.ln.Addr().String() + "/" }

// route sends new connections to backend i first.
func (b *balancer) route(i int) {
	b.mu.Lock()
	b.prefer = i
	b.mu.Unlock()
}

// sockets lists the backend of every WebSocket connection so far.
func (b *balancer) sockets() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.wsTo)
}

func (b *balancer) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.forward(c)
	}
}

func (b *balancer) forward(c net.Conn) {
	// A request head arrives in one read on loopback: enough to tell a
	// WebSocket upgrade from the page's other requests.
	head := make([]byte, 8<<10)
	n, err := c.Read(head)
	if err != nil {
		_ = c.Close()
		return
	}
	head = head[:n]
	ws := bytes.Contains(bytes.ToLower(head), []byte("upgrade: websocket"))
	b.mu.Lock()
	first := b.prefer
	b.mu.Unlock()
	for k := range b.backends {
		i := (first + k) % len(b.backends)
		s, err := net.DialTimeout("tcp", b.backends[i], time.Second)
		if err != nil {
			continue
		}
		b.mu.Lock()
		if ws {
			b.wsTo = append(b.wsTo, i)
		}
		b.conns = append(b.conns, c, s)
		b.mu.Unlock()
		if _, err := s.Write(head); err != nil {
			break
		}
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		_, _ = io.Copy(c, s)
		_ = c.Close()
		return
	}
	_ = c.Close()
}

// startNATSListener runs a nats-server with JetStream on a loopback port,
// in this process, for p2pchat subprocesses to join.
func startNATSListener(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "e2e", JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Host: "127.0.0.1", Port: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// TestClusterFailover: two p2pchat processes joined through NATS behind a
// TCP load balancer; the caller's page is on one, the callee's on the
// other. They call across instances and chat. Then the callee's instance
// is killed (SIGKILL, its names still leased in NATS): the callee's page
// reconnects through the balancer to the surviving instance, takes its
// name back with its token at the first attempt, and the chat goes on; a
// new call, signaled through the one instance left, connects too.
func TestClusterFailover(t *testing.T) {
	ctx := browserTest(t)
	nats := startNATSListener(t)
	// A lease far longer than the test: the name can come back only
	// through the token, never by expiry.
	inst := []*procServer{
		startProcServer(t, "-nats", nats, "-nats-lease", "60s"),
		startProcServer(t, "-nats", nats, "-nats-lease", "60s"),
	}
	lb := newBalancer(t, inst[0].addr, inst[1].addr)

	lb.route(0)
	a := newPeer(t, ctx, lb.URL(), "una")
	a.login("una")
	lb.route(1)
	b := newPeer(t, ctx, lb.URL(), "ivo")
	eval[any](b, recordLogins)
	b.login("ivo")
	if got := lb.sockets(); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("WebSockets went to instances %v, want una's to 0 and ivo's to 1", got)
	}
	a.sees("ivo")
	b.sees("una")
	connect(t, a, b, "una", "ivo")
	chatBothWays(a, b, "across instances", "and back across")

	inst[1].kill()
	b.wait("reconnecting", `state.sig === 'reconnecting' || state.logins === 2`)
	b.wait("re-login on the other instance", `state.logins === 2 && state.sig === 'connected'`)
	if got := lb.sockets(); !slices.Equal(got, []int{0, 1, 0}) {
		t.Errorf("WebSockets went to instances %v, want ivo's new one to 0", got)
	}
	if n := eval[int](b, `state.taken`); n != 0 {
		t.Errorf("%d name-taken answers to the re-login, want 0", n)
	}
	if !eval[bool](b, `window.__logins.length === 2 && !window.__logins[0].token && !!window.__logins[1].token`) {
		t.Errorf("logins sent %v, want a re-login with the token", eval[any](b, `window.__logins`))
	}
	chatBothWays(a, b, "after the crash", "still here")

	a.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	a.ended("end.hangup.local")
	b.ended("end.hangup")
	a.sees("ivo")
	connect(t, a, b, "una", "ivo")
	chatBothWays(a, b, "a new call", "on one instance")
}
