package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/p2pchat/p2pchat/server/ice"
)

func TestHelloCarriesConfiguredSTUN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, `[{"urls":["stun:stun2.l.google.com:19302"]}]`},
		{"list", []string{"-stun", "stun:a.example:3478, stun:b.example:3478"}, `[{"urls":["stun:a.example:3478","stun:b.example:3478"]}]`},
		{"none", []string{"-stun", "none"}, `[]`},
		{"empty", []string{"-stun="}, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base, _ := startBinary(t, tt.args...)
			c := dialWS(t, base, nil)
			hello := c.read("hello")
			if got := string(hello["iceServers"]); got != tt.want {
				t.Errorf("hello iceServers = %s, want %s", got, tt.want)
			}
			c.send(map[string]any{"type": "login", "name": "stunner"})
			login := c.read("login")
			if string(login["success"]) != "true" || string(login["iceServers"]) != tt.want {
				t.Errorf("login reply %s %s, want the hello list", login["success"], login["iceServers"])
			}
		})
	}
}

func TestHelloTestRelaySwitch(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{{nil, ""}, {[]string{"-allow-relay-only-test"}, "true"}} {
		base, _ := startBinary(t, tt.args...)
		c := dialWS(t, base, nil)
		if got := string(c.read("hello")["testRelay"]); got != tt.want {
			t.Errorf("%q: hello testRelay = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestLoginCarriesTURNCredentials(t *testing.T) {
	t.Parallel()
	base, _ := startBinary(t, "-stun", "stun:s.example:3478", "-turn", "turn:t.example:3478?transport=udp",
		"-turn-secret", "flag-secret", "-turn-ttl", "10m")
	c := dialWS(t, base, nil)
	hello := c.read("hello")
	if strings.Contains(string(hello["iceServers"]), "turn") {
		t.Errorf("hello carries turn before login: %s", hello["iceServers"])
	}
	c.send(map[string]any{"type": "login", "name": "alice"})
	before := time.Now()
	login := c.read("login")
	if strings.Contains(string(login["iceServers"]), "flag-secret") {
		t.Errorf("secret leaked into %s", login["iceServers"])
	}
	list := iceServersOf(t, login)
	if len(list) != 2 || list[1].URLs[0] != "turn:t.example:3478?transport=udp" {
		t.Fatalf("login iceServers %+v, want stun then turn", list)
	}
	turnEntry := list[1]
	ts, name, ok := strings.Cut(turnEntry.Username, ":")
	if !ok || name != "alice" {
		t.Fatalf("username %q, want <expiry>:alice", turnEntry.Username)
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := before.Add(10 * time.Minute).Unix()
	if exp < want-5 || exp > want+5 {
		t.Errorf("expiry %d, want about now+10m = %d", exp, want)
	}
	if !ice.Verify("flag-secret", turnEntry.Username, turnEntry.Credential) {
		t.Errorf("credential %q does not verify under the secret", turnEntry.Credential)
	}
}

// TestEmbeddedRelayFromFlags runs the binary with the embedded relay on
// and uses the credentials from the login reply to allocate a relay at the
// URL the reply points to.
func TestEmbeddedRelayFromFlags(t *testing.T) {
	t.Parallel()
	base, logs := startBinary(t, "-stun=", "-turn-listen", "127.0.0.1:0", "-turn-peer-allow", "127.0.0.0/8")
	if addr := logs.wait(t, "turn server listening"); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("relay listening on %q", addr)
	}
	c := dialWS(t, base, nil)
	c.read("hello")
	c.send(map[string]any{"type": "login", "name": "relayuser"})
	list := iceServersOf(t, c.read("login"))
	if len(list) != 1 {
		t.Fatalf("iceServers %+v, want just the embedded turn", list)
	}
	u := list[0].URLs[0]
	hostport := strings.TrimSuffix(strings.TrimPrefix(u, "turn:"), "?transport=udp")
	if hostport != logs.wait(t, "turn server listening") {
		t.Fatalf("login points at %q, relay listens on %q", u, logs.wait(t, "turn server listening"))
	}
	for _, tt := range []struct {
		name string
		pass string
		ok   bool
	}{{"from login reply", list[0].Credential, true}, {"tampered", list[0].Credential + "A", false}} {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client, err := turn.NewClient(&turn.ClientConfig{
			STUNServerAddr: hostport, TURNServerAddr: hostport, Conn: conn,
			Username: list[0].Username, Password: tt.pass,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if err := client.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		relay, err := client.AllocateWithContext(ctx)
		cancel()
		if tt.ok != (err == nil) {
			t.Errorf("%s: allocation err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err == nil {
			_ = relay.Close()
		}
	}
}

func TestICEFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-turn-public-ip", "192.0.2.1"},
		{"-turn-listen", ":3478", "-turn-user", "u", "-turn-pass", "p"},
		{"-turn-listen", ":3478", "-turn-relay-ports", "5000"},
		{"-turn-listen", ":3478", "-turn-relay-ports", "6000-5000"},
		{"-tls-cert", "c.pem"},
		{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-autocert-domain", "x.example"},
		{"-redirect-addr", ":80"},
	} {
		if _, err := parseConfig(args, func(string) string { return "" }); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
	// A TURN URL without credentials fails at start, before listening.
	cfg, err := parseConfig([]string{"-turn", "turn:t.example:3478"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cfg.ice.start(newURLCatcher().logger()); err == nil {
		t.Error("turn url without secret accepted")
	}
}
