package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/ice"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// fastICETimer makes the page's 10-minute ICE refresh timer (the only
// setInterval of exactly 600000 ms in the client) fire every 200 ms, and
// counts how often it was set up and how often it fired, so the test can
// tell "the timer ran and sent nothing" from "the shim never hooked in".
// It runs before the page's own scripts, via
// Page.addScriptToEvaluateOnNewDocument: the client stays untouched.
const fastICETimer = `(() => {
  const orig = window.setInterval;
  const shim = window.__iceShim = { installed: 0, ticks: 0 };
  window.setInterval = function (fn, ms, ...args) {
    if (ms !== 600000 || typeof fn !== 'function') return orig.call(window, fn, ms, ...args);
    shim.installed++;
    return orig.call(window, function (...a) { shim.ticks++; return fn.apply(this, a); }, 200, ...args);
  };
})()`

// wsFrame is one WebSocket text frame the page sent or received.
type wsFrame struct {
	sent bool
	data string
}

// wsLog records the page's WebSocket frames from CDP network events.
type wsLog struct {
	mu     sync.Mutex
	frames []wsFrame
}

func (l *wsLog) snapshot() []wsFrame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wsFrame(nil), l.frames...)
}

// startTURNCredServer runs p2pchat whose login and ice replies carry a TURN
// entry with REST credentials made from secret. No relay listens at the
// TURN URL: no call is made, so the browser never contacts it. The
// provider's clock moves one minute per credential, so every credential has
// a distinct, later expiry even when several are made within a second
// (the username has whole seconds).
func startTURNCredServer(t *testing.T, secret string) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := time.Now()
	var made atomic.Int64
	provider, err := ice.New(ice.Config{
		TURN:   []string{"turn:127.0.0.1:3478?transport=udp"},
		Secret: secret,
		Now:    func() time.Time { return base.Add(time.Duration(made.Add(1)) * time.Minute) },
	})
	if err != nil {
		t.Fatalf("ice provider: %v", err)
	}
	cfg := signaling.DefaultConfig()
	cfg.ICE = provider
	srv := server.New(server.Config{Signaling: cfg}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()); _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// turnEntry is the TURN entry of an iceServers list, or an error.
func turnEntry(raw json.RawMessage) (ice.Server, error) {
	var list []ice.Server
	if err := json.Unmarshal(raw, &list); err != nil {
		return ice.Server{}, fmt.Errorf("parsing iceServers %s: %w", raw, err)
	}
	for _, s := range list {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") {
				return s, nil
			}
		}
	}
	return ice.Server{}, fmt.Errorf("no turn entry in %s", raw)
}

// TestICERefreshFromPage: a logged-in page sends {"type":"ice"} on its
// refresh timer (sped up by a shim), every reply carries a valid TURN
// credential that expires later than the previous one, and the page keeps
// the newest list; before login the same timer fires but sends nothing.
func TestICERefreshFromPage(t *testing.T) {
	ctx := browserTest(t)
	const secret, name = "e2e-ice-refresh-secret", "iris"
	url := startTURNCredServer(t, secret)
	p := newPeer(t, ctx, url, name)

	// Hook in before the page's scripts and watch its WebSocket from the
	// start: load the page again with both in place.
	var ws wsLog
	record := func(ev any) {
		var f wsFrame
		switch e := ev.(type) {
		case *network.EventWebSocketFrameSent:
			f = wsFrame{sent: true, data: string(e.Response.PayloadData)}
		case *network.EventWebSocketFrameReceived:
			f = wsFrame{data: string(e.Response.PayloadData)}
		default:
			return
		}
		ws.mu.Lock()
		ws.frames = append(ws.frames, f)
		ws.mu.Unlock()
	}
	if err := chromedp.Listen(p.ctx, record); err != nil {
		t.Fatalf("listen: %v", err)
	}
	p.do("install shim, watch network, reload",
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fastICETimer}); err != nil {
				return fmt.Errorf("adding shim: %w", err)
			}
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return fmt.Errorf("enabling network events: %w", err)
			}
			return nil
		}),
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#name")),
	)
	p.wait("connected", `state.sig === 'connected'`)
	if n := eval[int](p, `window.__iceShim ? window.__iceShim.installed : -1`); n != 1 {
		t.Fatalf("shim hooked %d refresh timers, want 1 (client changed its 600000 ms interval?)", n)
	}

	// Not logged in: the timer fires several times and sends nothing.
	p.waitFor("5 timer ticks before login", `window.__iceShim.ticks >= 5`, 3*time.Second)
	before := ws.snapshot()
	sawHello := false
	for _, f := range before {
		if f.sent && strings.Contains(f.data, `"ice"`) {
			t.Fatalf("page sent %s before logging in", f.data)
		}
		sawHello = sawHello || !f.sent && strings.Contains(f.data, `"type":"hello"`)
	}
	if !sawHello {
		t.Fatalf("no hello among the captured frames %v: the capture does not work", before)
	}

	// Logged in: at least two refreshes, each answered with a fresh,
	// valid credential.
	p.login(name)
	const wantRefreshes = 2
	deadline := time.Now().Add(5 * time.Second)
	var sentICE int
	var loginTURN ice.Server
	var replies []ice.Server
	for {
		sentICE, replies = 0, nil
		loginTURN = ice.Server{}
		for _, f := range ws.snapshot()[len(before):] {
			if f.sent {
				if f.data == `{"type":"ice"}` {
					sentICE++
				}
				continue
			}
			var m struct {
				Type       string          `json:"type"`
				Success    bool            `json:"success"`
				IceServers json.RawMessage `json:"iceServers"`
				Code       string          `json:"code"`
			}
			if err := json.Unmarshal([]byte(f.data), &m); err != nil {
				t.Fatalf("frame %q: %v", f.data, err)
			}
			switch m.Type {
			case "error":
				t.Fatalf("server refused something: %s", f.data)
			case "login":
				if !m.Success {
					t.Fatalf("login failed: %s", f.data)
				}
				var err error
				if loginTURN, err = turnEntry(m.IceServers); err != nil {
					t.Fatalf("login reply: %v", err)
				}
			case "ice":
				s, err := turnEntry(m.IceServers)
				if err != nil {
					t.Fatalf("ice reply: %v", err)
				}
				replies = append(replies, s)
			}
		}
		if len(replies) >= wantRefreshes || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sentICE < wantRefreshes || len(replies) < wantRefreshes {
		t.Fatalf("within 5 s of login: %d ice requests sent, %d replies; want >= %d each (timer ticks: %d)",
			sentICE, len(replies), wantRefreshes, eval[int](p, `window.__iceShim.ticks`))
	}
	if loginTURN.Username == "" {
		t.Fatal("no login reply with a TURN credential captured")
	}
	now := time.Now()
	prev, _, err := ice.ParseUsername(loginTURN.Username, now)
	if err != nil {
		t.Fatalf("login credential: %v", err)
	}
	for i, s := range replies {
		exp, who, err := ice.ParseUsername(s.Username, now)
		switch {
		case err != nil:
			t.Fatalf("refresh %d: %v", i+1, err)
		case who != name:
			t.Errorf("refresh %d: credential for %q, want %q", i+1, who, name)
		case !exp.After(prev):
			t.Errorf("refresh %d: expiry %v is not after the previous %v", i+1, exp, prev)
		case !ice.Verify(secret, s.Username, s.Credential):
			t.Errorf("refresh %d: credential %q does not verify for %q", i+1, s.Credential, s.Username)
		}
		prev = exp
	}

	// The page takes the replies: its iceServers carry a refreshed
	// credential (it may be newer than the last one captured so far).
	const pageTURN = `(state.iceServers.find(s => [].concat(s.urls).some(u => u.startsWith('turn:'))) || {}).username || ''`
	var got string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = eval[string](p, pageTURN)
		for _, f := range ws.snapshot() {
			if !f.sent && strings.Contains(f.data, `"type":"ice"`) && got != "" && strings.Contains(f.data, `"username":"`+got+`"`) {
				return
			}
		}
	}
	t.Fatalf("page's TURN username %q is not from any ice reply (login's was %q)", got, loginTURN.Username)
}
