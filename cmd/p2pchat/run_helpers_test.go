package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// urlCatcher is a slog handler that remembers the "url" and "addr"
// attributes of the startup log lines, so a test can find the ports the
// binary's run function picked for ":0" addresses.
type urlCatcher struct {
	slog.Handler
	mu   *sync.Mutex
	seen map[string]string // message -> url or addr
	ch   chan struct{}     // pinged (non-blocking) after each record with an address
}

func newURLCatcher() *urlCatcher {
	return &urlCatcher{
		Handler: slog.NewTextHandler(io.Discard, nil),
		mu:      &sync.Mutex{}, seen: map[string]string{}, ch: make(chan struct{}, 1),
	}
}

func (u *urlCatcher) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "url" || a.Key == "addr" {
			u.mu.Lock()
			if _, ok := u.seen[r.Message]; !ok {
				u.seen[r.Message] = a.Value.String()
			}
			u.mu.Unlock()
			select {
			case u.ch <- struct{}{}:
			default:
			}
		}
		return true
	})
	return nil
}

func (u *urlCatcher) WithAttrs([]slog.Attr) slog.Handler { return u }
func (u *urlCatcher) WithGroup(string) slog.Handler      { return u }

// wait returns the value logged with message, waiting up to 10 s.
func (u *urlCatcher) wait(t *testing.T, message string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		u.mu.Lock()
		v, ok := u.seen[message]
		u.mu.Unlock()
		if ok {
			return v
		}
		select {
		case <-u.ch:
		case <-deadline:
			t.Fatalf("no log line %q", message)
		}
	}
}

// startBinary parses args like the command line and runs p2pchat until the
// test ends. It returns the base URL ("http://127.0.0.1:port") and the
// catcher for further log lookups.
func startBinary(t *testing.T, args ...string) (string, *urlCatcher) {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-addr", "127.0.0.1:0", "-https-addr="}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	catcher := newURLCatcher()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(catcher)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not stop")
		}
	})
	return catcher.wait(t, "p2pchat listening"), catcher
}

// wsConn is a tiny JSON client for the signaling socket.
type wsConn struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, base string, client *http.Client) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsConn{t: t, c: c}
}

// read returns the next message of type typ, skipping others (presence),
// waiting up to 5 s.
func (w *wsConn) read(typ string) map[string]json.RawMessage {
	w.t.Helper()
	return w.readWithin(typ, 5*time.Second)
}

func (w *wsConn) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

func iceServersOf(t *testing.T, m map[string]json.RawMessage) []iceServer {
	t.Helper()
	var l []iceServer
	if err := json.Unmarshal(m["iceServers"], &l); err != nil {
		t.Fatalf("iceServers %s: %v", m["iceServers"], err)
	}
	return l
}

func (u *urlCatcher) logger() *slog.Logger { return slog.New(u) }
