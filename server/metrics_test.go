package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("sending %s: %v", msg, err)
	}
}

// TestMetricsAfterSession runs a scripted session and checks /metrics.
func TestMetricsAfterSession(t *testing.T) {
	t.Parallel()
	extra := func(w io.Writer) { _, _ = io.WriteString(w, "p2pchat_extra_family 7\n") }
	_, ts := start(t, Config{Metrics: true, MaxConnsPerIP: 3, MetricsWriters: []func(io.Writer){extra}})
	alice, _, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	bob, _, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	send(t, alice, `{"type":"login","name":"alice"}`)
	readType(t, alice, "login")
	send(t, bob, `{"type":"login","name":"bob"}`)
	readType(t, bob, "login")

	send(t, alice, `{"type":"offer","name":"bob","offer":{"type":"offer","sdp":"v=0"}}`)
	readType(t, bob, "offer")
	send(t, bob, `{"type":"answer","name":"alice","answer":{"type":"answer","sdp":"v=0"}}`)
	readType(t, alice, "answer")
	for range 2 {
		send(t, alice, `{"type":"candidate","name":"bob","candidate":{"candidate":"c"}}`)
		readType(t, bob, "candidate")
	}
	send(t, alice, `{"type":"leave","name":"bob","reason":"hangup"}`)
	readType(t, bob, "leave")

	// Refusals: a taken name, an unknown type, a relay to nobody.
	carol, _, err := dialFrom(t, ts, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	send(t, carol, `{"type":"login","name":"alice"}`)
	if msg := readType(t, carol, "login"); !strings.Contains(msg, "name-taken") {
		t.Fatalf("login as a taken name: %s", msg)
	}
	send(t, carol, `{"type":"dance"}`)
	readType(t, carol, "error")
	send(t, alice, `{"type":"offer","name":"nobody","offer":{}}`)
	readType(t, alice, "error")
	// A fourth connection from the same address hits the cap.
	if _, _, err := dialFrom(t, ts, "127.0.0.1"); err == nil {
		t.Fatal("fourth connection accepted with a cap of 3")
	}

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", resp.StatusCode, ct)
	}
	text := string(body)
	for _, want := range []string{
		"p2pchat_connections 3\n",
		"p2pchat_users_online 2\n",
		"p2pchat_logins_total 2\n",
		`p2pchat_relayed_messages_total{type="offer"} 1` + "\n",
		`p2pchat_relayed_messages_total{type="answer"} 1` + "\n",
		`p2pchat_relayed_messages_total{type="candidate"} 2` + "\n",
		`p2pchat_relayed_messages_total{type="leave"} 1` + "\n",
		`p2pchat_refusals_total{code="name-taken"} 1` + "\n",
		`p2pchat_refusals_total{code="unknown-type"} 1` + "\n",
		`p2pchat_refusals_total{code="user-not-found"} 1` + "\n",
		`p2pchat_refusals_total{code="invalid-json"} 0` + "\n",
		`p2pchat_connections_refused_total{reason="per-ip-limit"} 1` + "\n",
		`p2pchat_connections_refused_total{reason="server-full"} 0` + "\n",
		"p2pchat_slow_client_disconnects_total 0\n",
		"p2pchat_send_queue_high_water_bytes ",
		"# TYPE p2pchat_logins_total counter\n",
		"p2pchat_extra_family 7\n",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}

// TestMetricsOffTheMainHandler checks that with Metrics off, /metrics is
// not public (it is then served on a separate listener).
func TestMetricsOffTheMainHandler(t *testing.T) {
	t.Parallel()
	_, ts := start(t, Config{})
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "p2pchat_connections") {
		t.Fatalf("/metrics served on the main handler with Metrics off")
	}
}
