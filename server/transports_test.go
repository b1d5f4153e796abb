package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// The hub's own tests (server/signaling) drive it through an in-memory
// Conn. The tests here run the protocol end to end over each real
// transport a client can meet, so that a case one transport passes, the
// others must pass too:
//
//   - loop: plain TCP on the event loop (server/wsloop), which also accepts
//     the connections, as cmd/p2pchat serves;
//   - loops: the same over three loops, so that most messages cross from
//     one loop to another;
//   - goroutine: plain TCP with a goroutine per connection (server/wspump
//     over coder/websocket, leanConn's raw reads and write batching);
//   - tls: the goroutine transport behind TLS, where leanConn batches
//     writes into the TLS connection.
var transports = []struct {
	name  string
	start func(t testing.TB, cfg Config) *e2eServer
}{
	{"loop", func(t testing.TB, cfg Config) *e2eServer {
		cfg.EventLoops = 1
		return startE2E(t, cfg, false)
	}},
	{"loops", func(t testing.TB, cfg Config) *e2eServer {
		cfg.EventLoops = 3 // one accepts; connections alternate between all three
		return startE2E(t, cfg, false)
	}},
	{"goroutine", func(t testing.TB, cfg Config) *e2eServer {
		cfg.NoEventLoop = true
		return startE2E(t, cfg, false)
	}},
	{"tls", func(t testing.TB, cfg Config) *e2eServer { return startE2E(t, cfg, true) }},
}

// eachTransport runs test once per transport, as parallel subtests.
func eachTransport(t *testing.T, cfg Config, test func(t *testing.T, srv *e2eServer)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			test(t, tr.start(t, cfg))
		})
	}
}

// e2eServer is a Server on 127.0.0.1 and how to reach its /ws.
type e2eServer struct {
	*Server
	url    string
	client *http.Client
	tls    bool
}

func startE2E(t testing.TB, cfg Config, withTLS bool) *e2eServer {
	t.Helper()
	return startE2EWith(t, cfg, withTLS, nil)
}

// startE2EWith is startE2E with setup, if not nil, run on the Server
// before it serves (hub.SetCluster must come first).
func startE2EWith(t testing.TB, cfg Config, withTLS bool, setup func(*Server)) *e2eServer {
	t.Helper()
	if cfg.Signaling.ICE == nil {
		cfg.Signaling.ICE = signaling.StaticICE{}
	}
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if setup != nil {
		setup(s)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	if withTLS {
		ts.StartTLS()
	} else {
		ln, err := s.Listener(ts.Listener)
		if err != nil {
			t.Fatal(err)
		}
		ts.Listener = ln
		ts.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		ts.Close()
	})
	return &e2eServer{Server: s, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", client: ts.Client(), tls: withTLS}
}

// wsClient is a real WebSocket test client.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	name string
}

// recvTimeout bounds a wait for a message: a liveness bound, generous
// for a busy machine, not a speed.
const recvTimeout = 20 * time.Second

// dial connects and consumes the hello greeting.
func (s *e2eServer) dial(t testing.TB) *wsClient {
	t.Helper()
	c := s.dialRaw(t)
	c.expect("hello")
	return c
}

// dialRaw connects without reading anything.
func (s *e2eServer) dialRaw(t testing.TB) *wsClient {
	t.Helper()
	// Generous: a TLS handshake under -race on a busy machine is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 2*recvTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPClient: s.client})
	if err != nil {
		t.Fatalf("dial %s: %v", s.url, err)
	}
	conn.SetReadLimit(4 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn}
}

// login dials and logs in as name.
func (s *e2eServer) login(t testing.TB, name string) *wsClient {
	t.Helper()
	c := s.dial(t)
	c.send(map[string]any{"type": "login", "name": name})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("login %q refused: %v", name, m)
	}
	c.name = name
	return c
}

func (c *wsClient) sendRaw(data string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// recv reads the next message; it fails the test on timeout or close.
func (c *wsClient) recv() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("%s: recv: %v", c.name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%s: server sent invalid JSON: %s", c.name, data)
	}
	return m
}

// expect reads the next message and checks its type.
func (c *wsClient) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.recv()
	if m["type"] != typ {
		c.t.Fatalf("%s: got %v, want a %q message", c.name, m, typ)
	}
	return m
}

// expectError reads the next message and checks it is an error with code.
func (c *wsClient) expectError(code string) map[string]any {
	c.t.Helper()
	m := c.expect("error")
	if m["code"] != code {
		c.t.Fatalf("%s: got error %v, want code %q", c.name, m, code)
	}
	return m
}

// expectClosed waits for the server to close the connection and returns
// the close status.
func (c *wsClient) expectClosed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, io.EOF) {
				c.t.Fatalf("%s: connection not closed within 10s", c.name)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// sync proves that nothing is queued for c: the answer to a probe is the
// next message.
func (c *wsClient) sync() {
	c.t.Helper()
	c.send(map[string]any{"type": "sync-probe"})
	if m := c.expectError(signaling.CodeUnknownType); m["message"] != "Command not found: sync-probe" {
		c.t.Fatalf("%s: got %v before the sync probe's answer", c.name, m)
	}
}
