package natsbus

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// testLease is short, so that expiries are seen within a test.
const testLease = 2 * time.Second

// memoryBucket keeps test buckets in memory, except where a restart must keep them.
var memoryBucket = true

func testLog() *slog.Logger {
	if os.Getenv("P2PCHAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNATS runs a nats-server with JetStream in this process. With
// port 0 it does not listen (clients connect in-process); otherwise it
// listens on 127.0.0.1:port (-1 picks one).
func startNATS(t *testing.T, dir string, port int) *natsserver.Server {
	t.Helper()
	opts := &natsserver.Options{
		ServerName: "test", JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, Host: "127.0.0.1", Port: port,
		DontListen: port == 0,
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// instance is one p2pchat server in the test's name space.
type instance struct {
	srv *server.Server
	ts  *httptest.Server
	bus *Bus
	url string // ws://
}

// startInstance runs a p2pchat server joined to ns (in-process) or, if
// url is set, to the NATS server there.
func startInstance(t *testing.T, ns *natsserver.Server, url string) *instance {
	t.Helper()
	return startInstanceMem(t, ns, url, memoryBucket)
}

func startInstanceMem(t *testing.T, ns *natsserver.Server, url string, memoryBucket bool) *instance {
	t.Helper()
	return startInstanceOpts(t, ns, Options{URL: url, Lease: testLease, Memory: memoryBucket})
}

// startInstanceReplicas joins a JetStream cluster with a replicated,
// file-backed bucket and a longer lease (leader elections take seconds).
func startInstanceReplicas(t *testing.T, url string, replicas int) *instance {
	t.Helper()
	return startInstanceOpts(t, nil, Options{URL: url, Lease: 6 * time.Second, Replicas: replicas})
}

func startInstanceOpts(t *testing.T, ns *natsserver.Server, opts Options) *instance {
	t.Helper()
	cfg := server.Config{Signaling: signaling.Config{ICE: signaling.StaticICE{}, Presence: true, PresenceInterval: 50 * time.Millisecond}}
	srv := server.New(cfg, testLog())
	if opts.URL == "" {
		opts.NATS = []nats.Option{nats.InProcessServer(ns)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := Open(ctx, srv.Hub(), opts, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ln, err := srv.Listener(ts.Listener)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = ln
	ts.Start()
	in := &instance{srv: srv, ts: ts, bus: bus, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
	t.Cleanup(func() { in.stop(5 * time.Second) })
	return in
}

// stop shuts the instance down in order (idempotent), giving close
// handshakes up to grace.
func (in *instance) stop(grace time.Duration) {
	if in.ts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = in.srv.Shutdown(ctx)
	in.ts.Close()
	in.bus.Close()
	in.ts = nil
}

// kill makes the instance vanish as a crashed process would: its NATS
// connection drops first, so nothing is released.
func (in *instance) kill() {
	in.bus.nc.Close()
	in.stop(0)
}

// threeInstances is the standard set-up: one in-process nats-server and
// three p2pchat servers joined to it.
func threeInstances(t *testing.T) (*natsserver.Server, [3]*instance) {
	t.Helper()
	ns := startNATS(t, t.TempDir(), 0)
	var ins [3]*instance
	for i := range ins {
		ins[i] = startInstance(t, ns, "")
	}
	return ns, ins
}

// holds reports whether the instance's hub holds name.
func (in *instance) holds(name string) bool {
	found := false
	in.srv.Hub().Names(func(n string) { found = found || n == name })
	return found
}

// client is a real WebSocket test client.
type client struct {
	t     testing.TB
	conn  *websocket.Conn
	name  string
	token string
}

const recvTimeout = 10 * time.Second

func dial(t testing.TB, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &client{t: t, conn: conn}
	c.expect("hello")
	return c
}

// tryLogin dials url and logs in; it returns the reply.
func tryLogin(t testing.TB, url, name, token string) (*client, map[string]any) {
	t.Helper()
	c := dial(t, url)
	m := map[string]any{"type": "login", "name": name}
	if token != "" {
		m["token"] = token
	}
	c.send(m)
	reply := c.expect("login")
	c.name = name
	c.token, _ = reply["token"].(string)
	return c, reply
}

func login(t testing.TB, url, name string) *client {
	t.Helper()
	c, reply := tryLogin(t, url, name, "")
	if reply["success"] != true {
		t.Fatalf("login %q refused: %v", name, reply)
	}
	return c
}

func (c *client) sendRaw(data string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

func (c *client) recvRaw() []byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: recv: %v", c.name, err)
	}
	return data
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	data := c.recvRaw()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%s: invalid JSON %q", c.name, data)
	}
	return m
}

// expect reads messages until one of type typ, skipping presence.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	for {
		m := c.recv()
		if m["type"] == "presence" && typ != "presence" {
			continue
		}
		if m["type"] != typ {
			c.t.Fatalf("%s: got %v, want a %q message", c.name, m, typ)
		}
		return m
	}
}

func (c *client) expectError(code, name string) {
	c.t.Helper()
	m := c.expect("error")
	if m["code"] != code || m["name"] != name {
		c.t.Fatalf("%s: got error %v, want code %q for %q", c.name, m, code, name)
	}
}

// sync proves nothing is queued for c (see the signaling package's).
func (c *client) sync() {
	c.t.Helper()
	c.send(map[string]any{"type": "sync-probe"})
	m := c.expect("error")
	if m["message"] != "Command not found: sync-probe" {
		c.t.Fatalf("%s: got %v before the sync probe's answer", c.name, m)
	}
}

// expectClosed waits for the server to close the connection.
func (c *client) expectClosed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.t.Fatalf("%s: connection not closed in time", c.name)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
