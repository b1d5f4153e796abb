package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/p2pchat/p2pchat/server/wsloop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLog discards logs; set P2PCHAT_TEST_LOG to see them.
func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testTransport is the transport startHub serves with: the event loop
// (server/wsloop), as the server does on Linux, or, with
// P2PCHAT_TEST_TRANSPORT=goroutine, coder/websocket with a goroutine per
// connection, as for TLS. `make test` runs this package's tests with both.
var testTransport = os.Getenv("P2PCHAT_TEST_TRANSPORT")

// startHub serves a hub over real WebSockets on 127.0.0.1 and returns its
// ws:// URL. Everything is torn down, and waited for, at test cleanup.
func startHub(t testing.TB, cfg Config) (*Hub, string) {
	t.Helper()
	if cfg.ICE == nil {
		cfg.ICE = StaticICE{}
	}
	hub := NewHub(cfg, testLog())
	var handler http.HandlerFunc
	switch testTransport {
	case "goroutine":
		handler = func(w http.ResponseWriter, r *http.Request) {
			conn, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			hub.Serve(r.Context(), conn, r.RemoteAddr)
		}
	case "":
		loop, err := wsloop.New(hub.LoopConfig(), testLog())
		if err != nil {
			t.Fatalf("starting the event loop: %v", err)
		}
		t.Cleanup(loop.Close) // runs after the hub's shutdown below
		handler = func(w http.ResponseWriter, r *http.Request) {
			nc, pending, err := wsloop.Accept(w, r, nil)
			if err != nil {
				return
			}
			if err := hub.ServeLoop(loop, nc, pending, r.RemoteAddr, nil); err != nil {
				t.Errorf("attaching a connection: %v", err)
			}
		}
	default:
		t.Fatalf("P2PCHAT_TEST_TRANSPORT=%q: want goroutine or nothing", testTransport)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// client is a real WebSocket test client.
type client struct {
	t    testing.TB
	conn *websocket.Conn
	name string
}

const recvTimeout = 5 * time.Second

// dial connects and consumes the hello greeting.
func dial(t testing.TB, url string) *client {
	t.Helper()
	c := dialRaw(t, url)
	c.expect("hello")
	return c
}

// dialRaw connects without reading anything.
func dialRaw(t testing.TB, url string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(4 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &client{t: t, conn: conn}
}

// login dials and logs in as name (without presence).
func login(t testing.TB, url, name string) *client {
	t.Helper()
	c := dial(t, url)
	c.send(map[string]any{"type": "login", "name": name})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("login %q refused: %v", name, m)
	}
	c.name = name
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

// recv reads the next message; it fails the test on timeout or close.
func (c *client) recv() map[string]any {
	c.t.Helper()
	m, err := c.tryRecv(recvTimeout)
	if err != nil {
		c.t.Fatalf("%s: recv: %v", c.name, err)
	}
	return m
}

func (c *client) tryRecv(d time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("server sent invalid JSON: " + string(data))
	}
	return m, nil
}

// expect reads the next message and checks its type.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.recv()
	if m["type"] != typ {
		c.t.Fatalf("%s: got %v, want a %q message", c.name, m, typ)
	}
	return m
}

// expectError reads the next message and checks it is an error with code.
func (c *client) expectError(code string) map[string]any {
	c.t.Helper()
	m := c.expect("error")
	if m["code"] != code {
		c.t.Fatalf("%s: got error %v, want code %q", c.name, m, code)
	}
	if s, _ := m["message"].(string); s == "" {
		c.t.Fatalf("%s: error %v has no message", c.name, m)
	}
	return m
}

// expectClosed waits for the server to close the connection and returns
// the close status.
func (c *client) expectClosed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.t.Fatalf("%s: connection not closed within 10s", c.name)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// sync proves that nothing is queued for c: it sends a probe the server
// answers with an error, and checks that this answer is the next message.
// (A read timeout cannot be used for that: coder/websocket closes the
// connection when a read's context expires.)
func (c *client) sync() {
	c.t.Helper()
	c.send(map[string]any{"type": "sync-probe"})
	m := c.expectError(CodeUnknownType)
	if m["message"] != "Command not found: sync-probe" {
		c.t.Fatalf("%s: got %v before the sync probe's answer", c.name, m)
	}
}

// queueConn is a Conn that keeps what is sent to it. It lets hub logic be
// driven directly, without sockets, for fuzzing and fake-clock tests.
type queueConn struct {
	mu     sync.Mutex
	queue  [][]byte
	closed bool
}

func (q *queueConn) Send(msg []byte) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return -1
	}
	q.queue = append(q.queue, bytes.Clone(msg)) // Send must not keep msg
	return len(q.queue)
}

func (q *queueConn) Close(int, string) { q.CloseNow() }

func (q *queueConn) CloseNow() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// queueClient is a Client on a queueConn.
func queueClient(h *Hub) *Client {
	return &Client{hub: h, id: h.nextID.Add(1), conn: &queueConn{}}
}

// drain returns and clears the queued messages.
func (c *Client) drain() [][]byte {
	q := c.conn.(*queueConn)
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs := q.queue
	q.queue = nil
	return msgs
}
