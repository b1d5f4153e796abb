package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialFrom opens /ws from the loopback source address src. Any 127.0.0.0/8
// address works as a source on Linux, which lets one test be several hosts.
func dialFrom(t *testing.T, ts *httptest.Server, src string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		readType(t, c, "hello")
	}
	return c, resp, err
}

// readType reads one message and checks its type.
func readType(t *testing.T, c *websocket.Conn, typ string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading %s: %v", typ, err)
	}
	if !strings.Contains(string(msg), `"type":"`+typ+`"`) {
		t.Fatalf("got %s, want a %s message", msg, typ)
	}
	return string(msg)
}

// expectRefused checks a refused upgrade's status and body.
func expectRefused(t *testing.T, resp *http.Response, err error, status int, body string) {
	t.Helper()
	if err == nil {
		t.Fatalf("connection accepted, want HTTP %d", status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("refusal %v (response %v), want HTTP %d", err, resp, status)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), body) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("refusal body %q, Retry-After %q; want %q and a Retry-After", b, resp.Header.Get("Retry-After"), body)
	}
}

func TestPerIPCap(t *testing.T) {
	t.Parallel()
	const limit = 3
	s, ts := start(t, Config{MaxConnsPerIP: limit})
	var first *websocket.Conn
	for i := range limit {
		c, _, err := dialFrom(t, ts, "127.0.0.1")
		if err != nil {
			t.Fatalf("connection %d of %d refused: %v", i+1, limit, err)
		}
		if first == nil {
			first = c
		}
	}
	_, resp, err := dialFrom(t, ts, "127.0.0.1")
	expectRefused(t, resp, err, http.StatusTooManyRequests, "too many connections from your address (limit 3)")

	// Another host is not affected.
	if _, _, err := dialFrom(t, ts, "127.0.0.2"); err != nil {
		t.Fatalf("connection from 127.0.0.2 refused: %v", err)
	}
	if got := s.limits.refusedPerIP.Load(); got != 1 {
		t.Errorf("per-IP refusals counted %d, want 1", got)
	}

	// Closing one frees its slot.
	first.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := dialFrom(t, ts, "127.0.0.1")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after a close: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGlobalCap(t *testing.T) {
	t.Parallel()
	_, ts := start(t, Config{MaxConns: 2, MaxConnsPerIP: 10})
	for _, src := range []string{"127.0.0.3", "127.0.0.4"} {
		if _, _, err := dialFrom(t, ts, src); err != nil {
			t.Fatalf("connection from %s refused: %v", src, err)
		}
	}
	_, resp, err := dialFrom(t, ts, "127.0.0.5")
	expectRefused(t, resp, err, http.StatusServiceUnavailable, "server is full (2 connections)")
}

func TestLimiterUnlimited(t *testing.T) {
	t.Parallel()
	l := newConnLimiter(0, 0)
	a := netip.MustParseAddr("192.0.2.1")
	for range 1000 {
		if r := l.acquire(a); r != "" {
			t.Fatalf("refused %s with no limits", r)
		}
	}
	for range 1000 {
		l.release(a)
	}
	if l.total != 0 || len(l.perIP) != 0 {
		t.Errorf("after releasing all: total %d, %d addresses tracked", l.total, len(l.perIP))
	}
}

func TestIPKeyGroupsIPv6By64(t *testing.T) {
	t.Parallel()
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	c := netip.MustParseAddr("2001:db8:1:3::1")
	if ipKey(a) != ipKey(b) || ipKey(a) == ipKey(c) {
		t.Errorf("keys %v %v %v: want the first two equal, the third different", ipKey(a), ipKey(b), ipKey(c))
	}
	if got := ipKey(netip.MustParseAddr("::ffff:192.0.2.7")); got != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("IPv4-mapped key %v", got)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted, err := ParseCIDRs("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"untrusted peer's header is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted proxy", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-chosen left part is ignored", "10.1.2.3:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:5000", []string{"198.51.100.1, 192.0.2.1", "10.9.9.9"}, "198.51.100.1"},
		{"malformed hop stops the walk", "10.1.2.3:5000", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		{"trusted proxy without header", "192.0.2.1:5000", nil, "192.0.2.1"},
		{"all hops trusted", "10.1.2.3:5000", []string{"10.4.4.4"}, "10.4.4.4"},
		{"ipv6 peer", "[2001:db8::1]:5000", []string{"198.51.100.1"}, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, trusted); got.String() != tt.want {
				t.Errorf("clientIP = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	got, err := ParseCIDRs("10.0.0.0/8,,::1, 192.168.1.7/24")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "::1/128", "192.168.1.0/24"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %v, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := ParseCIDRs(bad); err == nil {
			t.Errorf("ParseCIDRs(%q) succeeded", bad)
		}
	}
}

// TestForwardedClientIsCapped checks that behind a trusted proxy the cap
// applies to the forwarded client, not to the proxy.
func TestForwardedClientIsCapped(t *testing.T) {
	t.Parallel()
	s := New(Config{MaxConnsPerIP: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	_, release, ok := s.admit(httptest.NewRecorder(), r)
	if !ok {
		t.Fatal("first forwarded connection refused")
	}
	defer release()
	w := httptest.NewRecorder()
	if _, _, ok := s.admit(w, r); ok || w.Code != http.StatusTooManyRequests {
		t.Fatalf("second connection of the same client: ok %v, status %d; want 429", ok, w.Code)
	}
	r.Header.Set("X-Forwarded-For", "198.51.100.8")
	_, release2, ok := s.admit(httptest.NewRecorder(), r)
	if !ok {
		t.Fatal("another client behind the same proxy was refused")
	}
	release2()
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	t.Parallel()
	var last atomic.Int64
	if !shouldLog(&last) {
		t.Fatal("first refusal not logged")
	}
	for range 100 {
		if shouldLog(&last) {
			t.Fatal("refusal logged again within refusalLogEvery")
		}
	}
	last.Store(time.Now().Add(-refusalLogEvery).UnixNano())
	if !shouldLog(&last) {
		t.Fatal("refusal not logged after refusalLogEvery")
	}
}
