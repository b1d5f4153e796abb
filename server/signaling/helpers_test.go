package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLog discards logs; set P2PCHAT_TEST_LOG to see them.
func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startHub starts a hub whose connections are in memory (fakeConn), and
// returns it twice: as the hub, and as what dial and login connect to.
// The same protocol runs over both real transports in the server
// package's tests. Everything is torn down, and waited for, at cleanup.
func startHub(t testing.TB, cfg Config) (*Hub, *Hub) {
	t.Helper()
	if cfg.ICE == nil {
		cfg.ICE = StaticICE{}
	}
	hub := NewHub(cfg, testLog())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
	})
	return hub, hub
}

// fakeConn is an in-memory Conn with a transport's guarantees: the
// client's messages reach OnMessage one at a time, OnClose comes once and
// after the last of them, Close delivers what was queued before the close
// and CloseNow drops it. Its queue is unbounded; the hub's limit is what
// cuts a client off.
type fakeConn struct {
	mu     sync.Mutex
	queue  [][]byte
	queued int  // bytes in queue
	closed bool // Close or CloseNow was called
	code   int  // the close status; 1006 (abnormal) for CloseNow
	ready  chan struct{}

	serve sync.Mutex // held by OnMessage and OnClose calls
	cl    *Client
	ended bool // OnClose was called; guarded by serve
}

// statusAbnormal is what a peer sees when a connection ends without a
// close frame.
const statusAbnormal = 1006

func newFakeConn() *fakeConn { return &fakeConn{ready: make(chan struct{}, 1)} }

func (f *fakeConn) signal() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

func (f *fakeConn) Send(msg []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return -1
	}
	f.queue = append(f.queue, bytes.Clone(msg)) // Send must not keep msg
	f.queued += len(msg)
	f.signal()
	return f.queued
}

func (f *fakeConn) Close(code int, reason string) { f.end(code, &closeError{code, reason}, false) }

func (f *fakeConn) CloseNow() { f.end(statusAbnormal, errors.New("connection dropped"), true) }

// end marks the connection closed and, as a transport does once the
// socket is gone, tells the client on another goroutine.
func (f *fakeConn) end(code int, err error, drop bool) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed, f.code = true, code
	if drop {
		f.queue, f.queued = nil, 0
	}
	f.signal()
	f.mu.Unlock()
	go f.finish(err)
}

func (f *fakeConn) finish(err error) {
	f.serve.Lock()
	defer f.serve.Unlock()
	if f.ended || f.cl == nil {
		return
	}
	f.ended = true
	f.cl.OnClose(err)
}

// deliver hands one message from the peer to the client, unless the
// connection is closing; it reports whether it did.
func (f *fakeConn) deliver(data []byte) bool {
	f.serve.Lock()
	defer f.serve.Unlock()
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed || f.ended || f.cl == nil {
		return false
	}
	f.cl.OnMessage(data)
	return true
}

// next waits up to d for the next message; once the queue is drained
// after a close, it returns the close status.
func (f *fakeConn) next(d time.Duration) ([]byte, int, error) {
	timeout := time.After(d)
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			msg := f.queue[0]
			f.queue = f.queue[1:]
			f.queued -= len(msg)
			f.mu.Unlock()
			return msg, 0, nil
		}
		closed, code := f.closed, f.code
		f.mu.Unlock()
		if closed {
			return nil, code, fmt.Errorf("connection closed with status %d", code)
		}
		select {
		case <-f.ready:
		case <-timeout:
			return nil, 0, errors.New("timed out")
		}
	}
}

// closeError is what OnClose is told after Close.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string {
	return fmt.Sprintf("closed with status %d: %s", e.code, e.reason)
}

// client is a test client on a fakeConn.
type client struct {
	t    testing.TB
	conn *fakeConn
	name string
}

const recvTimeout = 5 * time.Second

// dial connects and consumes the hello greeting.
func dial(t testing.TB, h *Hub) *client {
	t.Helper()
	c := dialRaw(t, h)
	c.expect("hello")
	return c
}

// dialRaw connects without reading anything.
func dialRaw(t testing.TB, h *Hub) *client {
	t.Helper()
	f := newFakeConn()
	f.serve.Lock() // no close may reach the client before it is known
	f.cl = h.Open(f, "test", nil)
	f.serve.Unlock()
	t.Cleanup(f.CloseNow)
	return &client{t: t, conn: f}
}

// login dials and logs in as name (without presence).
func login(t testing.TB, h *Hub, name string) *client {
	t.Helper()
	c := dial(t, h)
	c.send(map[string]any{"type": "login", "name": name})
	if m := c.expect("login"); m["success"] != true {
		t.Fatalf("login %q refused: %v", name, m)
	}
	c.name = name
	return c
}

// trySendRaw delivers data and reports whether the connection took it.
func (c *client) trySendRaw(data string) bool { return c.conn.deliver([]byte(data)) }

func (c *client) sendRaw(data string) {
	c.t.Helper()
	if !c.trySendRaw(data) {
		c.t.Fatalf("%s: send on a closed connection", c.name)
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
	data, _, err := c.conn.next(d)
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

// expectClosed waits for the hub to close the connection, reading what
// is still queued, and returns the close status.
func (c *client) expectClosed() int {
	c.t.Helper()
	for {
		_, code, err := c.conn.next(10 * time.Second)
		if err != nil {
			if code == 0 {
				c.t.Fatalf("%s: connection not closed: %v", c.name, err)
			}
			return code
		}
	}
}

// sync proves that nothing is queued for c: it sends a probe the server
// answers with an error, and checks that this answer is the next message.
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
	queued int // bytes in queue
	closed bool
}

func (q *queueConn) Send(msg []byte) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return -1
	}
	q.queue = append(q.queue, bytes.Clone(msg)) // Send must not keep msg
	q.queued += len(msg)
	return q.queued
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
	q.queue, q.queued = nil, 0
	return msgs
}
