package main

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/p2pchat/p2pchat/server"
)

// Two binaries with -nats share names; /healthz and /metrics tell about
// NATS.
func TestNATSFlagsJoinInstances(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		JetStream: true, StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	a, _ := startBinary(t, "-nats", ns.ClientURL(), "-nats-lease", "2s")
	b, _ := startBinary(t, "-nats", ns.ClientURL(), "-nats-lease", "2s")
	for _, base := range []string{a, b} {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("healthz of %s: %d %q", base, resp.StatusCode, body)
		}
	}
	alice := dialWS(t, a, nil)
	alice.send(map[string]any{"type": "login", "name": "小明"})
	if m := alice.read("login"); string(m["success"]) != "true" {
		t.Fatalf("login on a: %v", m)
	}
	twin := dialWS(t, b, nil)
	twin.send(map[string]any{"type": "login", "name": "小明"})
	if m := twin.read("login"); string(m["code"]) != `"name-taken"` {
		t.Fatalf("login on b: %v", m)
	}
	resp, err := http.Get(a + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"p2pchat_nats_up 1\n", "p2pchat_nats_claims_total 1\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics of a lack %q", want)
		}
	}

	// Without NATS, not ready.
	ns.Shutdown()
	ns.WaitForShutdown()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(a + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("healthz still ok without NATS")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNATSFlagsChecked(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-nats", "nats://127.0.0.1:4222", "-nats-lease", "1s"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-cert", "c.pem"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-user", "u"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-embedded"},
		{"-nats-embedded", "-nats-creds", "c.creds"},
		{"-nats-embedded", "-nats-routes", "127.0.0.1:6222"},
		{"-nats-routes", "127.0.0.1:6222", "-nats-cluster", "127.0.0.1:6222"},
		{"-nats", "nats://127.0.0.1:4222", "-nats-store", "/tmp/x"},
		{"-nats-embedded", "-nats-lease", "1s"},
	} {
		if _, err := parseConfig(args, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	cfg, err := parseConfig(nil, func(k string) string {
		if k == "P2PCHAT_NATS" {
			return "nats://a:4222,nats://b:4222"
		}
		return ""
	})
	if err != nil || cfg.nats.url != "nats://a:4222,nats://b:4222" {
		t.Fatalf("P2PCHAT_NATS: %v %q", err, cfg.nats.url)
	}
}

// TestNATSFlagsEventLoops: with -nats the default is one event loop fewer
// than GOMAXPROCS (at least one); a -event-loops given stays, and without
// -nats nothing changes.
func TestNATSFlagsEventLoops(t *testing.T) {
	for _, tc := range []struct{ procs, want int }{{1, 1}, {2, 1}, {4, 3}} {
		if got := natsLoops(tc.procs); got != tc.want {
			t.Errorf("natsLoops(%d) = %d, want %d", tc.procs, got, tc.want)
		}
	}
	for _, tc := range []struct {
		url         string
		given, want int
	}{
		{"", 0, 0},
		{"nats://127.0.0.1:4222", 0, natsLoops(runtime.GOMAXPROCS(0))},
		{"nats://127.0.0.1:4222", 3, 3},
	} {
		cfg := server.Config{EventLoops: tc.given}
		f := natsFlags{url: tc.url}
		f.prepare(&cfg)
		if cfg.EventLoops != tc.want {
			t.Errorf("-nats %q -event-loops %d: %d loops, want %d", tc.url, tc.given, cfg.EventLoops, tc.want)
		}
	}
}
