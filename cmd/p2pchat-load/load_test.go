package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// startServer runs the real p2pchat server in-process on 127.0.0.1 with
// the rate limit off, as load runs use it.
func startServer(t *testing.T, presence bool) string {
	t.Helper()
	sig := signaling.DefaultConfig()
	sig.MsgRate = -1
	sig.Presence = presence
	sig.PresenceInterval = 50 * time.Millisecond
	srv := server.New(server.Config{Signaling: sig}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Served as cmd/p2pchat serves: the event loop accepts.
	ts := httptest.NewUnstartedServer(srv.Handler())
	ln, err := srv.Listener(ts.Listener)
	if err != nil {
		t.Fatal(err)
	}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// syncBuffer is a log sink the run's goroutines may write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestModes runs each mode briefly against the real server and checks
// that nothing went wrong and the figures are plausible. It never asserts
// a speed: the machine may be busy.
func TestModes(t *testing.T) {
	t.Parallel()
	pid := strconv.Itoa(os.Getpid()) // the server is in this process
	tests := []struct {
		name     string
		presence bool
		args     []string
		check    func(t *testing.T, r *result)
	}{
		{"idle", false, []string{"-mode", "idle", "-users", "200", "-hold", "200ms", "-pid", pid}, func(t *testing.T, r *result) {
			if r.Logins != 200 || r.Login == nil || r.Login.N != 200 || r.Login.P99 <= 0 {
				t.Errorf("logins %d, login latency %+v; want 200 logins with latency > 0", r.Logins, r.Login)
			}
			if r.Server == nil || r.Server.RSSAfterKiB <= 0 {
				t.Errorf("server figures %+v, want RSS", r.Server)
			}
		}},
		{"idle with presence", true, []string{"-mode", "idle", "-users", "50", "-hold", "300ms", "-presence"}, func(t *testing.T, r *result) {
			if r.Logins != 50 || r.PresenceMsgs < 50 {
				t.Errorf("logins %d, presence messages %d; want 50 and at least one full list each", r.Logins, r.PresenceMsgs)
			}
		}},
		{"relay", false, []string{"-mode", "relay", "-pairs", "10", "-rate", "1000", "-warmup", "100ms", "-duration", "500ms", "-idle", "50", "-pid", pid}, func(t *testing.T, r *result) {
			if r.SentOffers == 0 || r.SentCandidates == 0 || r.SentAnswers != r.SentOffers {
				t.Errorf("sent %d offers, %d candidates, %d answers; want answers = offers > 0", r.SentOffers, r.SentCandidates, r.SentAnswers)
			}
			if r.Latency == nil || r.Latency.N == 0 || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 {
				t.Errorf("latency %+v, want samples with p50 > 0 and max >= p99", r.Latency)
			}
			if r.RelayedPerSec <= 0 || r.Logins != 70 {
				t.Errorf("relayed %.0f/s, logins %d; want > 0 and 70", r.RelayedPerSec, r.Logins)
			}
			if w := r.CPU; w.ServerSystemS < 0 || w.ServerSystemS > w.ServerCPUS || w.ServerWaitS < 0 {
				t.Errorf("cpu window %+v: want 0 <= kernel part <= server CPU, wait >= 0", w)
			}
			if r.Server == nil || r.Server.CPUPerMsgUs < 0 {
				t.Errorf("server figures %+v", r.Server)
			}
		}},
		// Users that never read are cut off by the server's byte bound on
		// their queued output while the pairs relay on.
		// The relays are slow and the time limits long: on a machine so
		// busy that this process waits seconds for a CPU, a pair must not
		// fall 128 KiB behind and be cut off as slow itself.
		{"relay with stalled receivers", false, []string{"-mode", "relay", "-pairs", "4", "-rate", "100", "-warmup", "100ms", "-duration", "2s", "-stalled", "4", "-timeout", "60s", "-drain", "30s"}, func(t *testing.T, r *result) {
			if r.StalledCutOff != 4 || r.FloodOffers == 0 {
				t.Errorf("%d of 4 stalled users cut off after %d flood offers", r.StalledCutOff, r.FloodOffers)
			}
			if r.SentOffers == 0 || r.SentAnswers != r.SentOffers || r.Latency == nil || r.Latency.N == 0 {
				t.Errorf("sent %d offers, %d answers, latency %+v; want answers = offers > 0 and samples", r.SentOffers, r.SentAnswers, r.Latency)
			}
		}},
		{"relay, tutorial dialect", false, []string{"-mode", "relay", "-tutorial", "-pairs", "4", "-rate", "400", "-warmup", "100ms", "-duration", "300ms"}, func(t *testing.T, r *result) {
			if r.SentOffers == 0 || r.SentAnswers != r.SentOffers || r.Latency == nil || r.Latency.N == 0 {
				t.Errorf("sent %d offers, %d answers, latency %+v; want answers = offers > 0 and samples", r.SentOffers, r.SentAnswers, r.Latency)
			}
		}},
		{"churn", false, []string{"-mode", "churn", "-concurrency", "4", "-count", "100", "-duration", "20s"}, func(t *testing.T, r *result) {
			if r.Logins != 100 || r.LoginsPerSec <= 0 || r.Login.P50 <= 0 {
				t.Errorf("logins %d at %.0f/s, latency %+v; want 100 at > 0/s", r.Logins, r.LoginsPerSec, r.Login)
			}
		}},
		// Presence lists arrive while the client closes: skipped, not errors.
		{"churn with presence", true, []string{"-mode", "churn", "-presence", "-concurrency", "4", "-count", "100", "-duration", "20s"}, func(t *testing.T, r *result) {
			if r.Logins != 100 {
				t.Errorf("logins %d, want 100", r.Logins)
			}
		}},
		{"churn, tutorial dialect", false, []string{"-mode", "churn", "-tutorial", "-concurrency", "2", "-count", "20", "-duration", "20s"}, func(t *testing.T, r *result) {
			if r.Logins != 20 {
				t.Errorf("logins %d, want 20", r.Logins)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := startServer(t, tt.presence)
			var log syncBuffer
			args := append([]string{"-url", url, "-max-time", "60s", "-prefix", strings.ReplaceAll(tt.name, " ", "")}, tt.args...)
			r, err := run(context.Background(), args, &log)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, log.String())
			}
			if !r.OK || r.Errors != 0 {
				t.Fatalf("errors %d %v\n%s", r.Errors, r.ErrorKinds, log.String())
			}
			if r.CPU.Seconds <= 0 || r.ElapsedS <= 0 {
				t.Errorf("cpu window %+v, elapsed %v", r.CPU, r.ElapsedS)
			}
			tt.check(t, r)
		})
	}
}

// TestRefusesNonLoopback checks that the tool never targets another host.
func TestRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ws://10.0.0.1:8080/ws", "ws://example.com/ws", "wss://127.0.0.1/ws", "ws://192.168.1.2/ws"} {
		if _, err := run(context.Background(), []string{"-mode", "idle", "-url", u, "-users", "1"}, io.Discard); err == nil {
			t.Errorf("%s: run succeeded, want a refusal", u)
		}
	}
}

// TestField checks the cheap field scanner on server frames.
func TestField(t *testing.T) {
	t.Parallel()
	msg := []byte(`{"type":"offer","offer":{"type":"offer","s":12,"t":-5,"sdp":"v=0"},"name":"bob"}`)
	if got := string(field(msg, "type")); got != "offer" {
		t.Errorf("type %q", got)
	}
	if got := string(field(msg, "name")); got != "bob" {
		t.Errorf("name %q", got)
	}
	if n, ok := intField(msg, "s"); !ok || n != 12 {
		t.Errorf("s = %d, %v", n, ok)
	}
	if n, ok := intField(msg, "t"); !ok || n != -5 {
		t.Errorf("t = %d, %v", n, ok)
	}
	if _, ok := intField(msg, "missing"); ok {
		t.Error("missing field found")
	}
}

// TestPayloadSizes checks that relayed frames have the sizes the issue
// asks for (offer ≈ 1.2 KB, candidate ≈ 200 B).
func TestPayloadSizes(t *testing.T) {
	t.Parallel()
	pl := newPayloads(1200, 200)
	for _, tt := range []struct {
		k        msgKind
		lo, high int
	}{{kindOffer, 1100, 1300}, {kindAnswer, 1100, 1300}, {kindCandidate, 170, 230}} {
		n := len(pl.build(nil, tt.k, "L1-e12", 123456))
		if n < tt.lo || n > tt.high {
			t.Errorf("%s frame is %d bytes, want %d..%d", kindNames[tt.k], n, tt.lo, tt.high)
		}
	}
}

// TestTutorialDialect checks what -tutorial accepts: the tutorial's server
// greets with plain text and names the sender on offers only.
func TestTutorialDialect(t *testing.T) {
	t.Parallel()
	p := &party{peer: "L1-e3"}
	tests := []struct {
		msg      string
		kind     msgKind
		tutorial bool
		want     bool
	}{
		{`{"type":"answer","answer":{"t":1,"s":1},"name":"L1-e3"}`, kindAnswer, false, true},
		{`{"type":"answer","answer":{"t":1,"s":1}}`, kindAnswer, false, false},
		{`{"type":"answer","answer":{"t":1,"s":1}}`, kindAnswer, true, true},
		{`{"type":"candidate","candidate":{"t":1,"s":1}}`, kindCandidate, true, true},
		{`{"type":"candidate","candidate":{"t":1,"s":1},"name":"L1-e4"}`, kindCandidate, true, false},
		{`{"type":"offer","offer":{"t":1,"s":1}}`, kindOffer, true, false},
		{`{"type":"offer","offer":{"t":1,"s":1},"name":"L1-e3"}`, kindOffer, true, true},
		{`{"type":"answer","answer":{"t":1,"s":1},"name":""}`, kindAnswer, true, false},
	}
	for _, tt := range tests {
		if got := p.fromPeer([]byte(tt.msg), tt.kind, tt.tutorial); got != tt.want {
			t.Errorf("fromPeer(%s, tutorial=%v) = %v, want %v", tt.msg, tt.tutorial, got, tt.want)
		}
	}
	for _, g := range []struct {
		msg      string
		tutorial bool
		want     bool
	}{
		{`{"type":"hello","message":"Hello world"}`, false, true},
		{`Hello world`, false, false},
		{`Hello world`, true, true},
		{`{"type":"login","success":true}`, false, false},
	} {
		if got := isGreeting([]byte(g.msg), g.tutorial); got != g.want {
			t.Errorf("isGreeting(%q, tutorial=%v) = %v, want %v", g.msg, g.tutorial, got, g.want)
		}
	}
}
