package ice

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func decode(t *testing.T, raw json.RawMessage) []Server {
	t.Helper()
	var l []Server
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return l
}

func TestProviderREST(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	p, err := New(Config{
		STUN:   []string{"stun:stun.example.org:3478"},
		TURN:   []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"},
		Secret: "north-wind",
		TTL:    10 * time.Minute,
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(p.HelloServers()), `[{"urls":["stun:stun.example.org:3478"]}]`; got != want {
		t.Errorf("hello = %s, want %s", got, want)
	}
	if strings.Contains(string(p.HelloServers()), "turn") {
		t.Error("hello leaks turn servers")
	}
	l := decode(t, p.LoginServers("alice"))
	if len(l) != 2 {
		t.Fatalf("login list %+v, want stun and turn", l)
	}
	turn := l[1]
	if turn.Username != "1700000600:alice" {
		t.Errorf("username %q, want expiry now+ttl", turn.Username)
	}
	if !Verify("north-wind", turn.Username, turn.Credential) {
		t.Errorf("credential %q does not verify", turn.Credential)
	}
	if strings.Contains(string(p.LoginServers("alice")), "north-wind") {
		t.Error("secret leaks into the login list")
	}
	if len(turn.URLs) != 2 || l[0].Username != "" {
		t.Errorf("unexpected entries %+v", l)
	}
}

func TestProviderFreshPerLogin(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	p, err := New(Config{TURN: []string{"turn:t:3478"}, Secret: "s", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	first := decode(t, p.LoginServers("bob"))
	now = now.Add(time.Minute)
	second := decode(t, p.LoginServers("bob"))
	if first[0].Username == second[0].Username {
		t.Errorf("second login got the same credential %q", first[0].Username)
	}
	if second[0].Username != "1700003660:bob" {
		t.Errorf("default ttl: username %q", second[0].Username)
	}
	if string(p.HelloServers()) != "[]" {
		t.Errorf("no stun: hello = %s, want []", p.HelloServers())
	}
}

func TestProviderStatic(t *testing.T) {
	t.Parallel()
	p, err := New(Config{STUN: []string{"stun:s"}, TURN: []string{"turn:t"}, Username: "u", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	l := decode(t, p.LoginServers("carol"))
	if l[1].Username != "u" || l[1].Credential != "pw" {
		t.Errorf("static entry %+v", l[1])
	}
}

func TestProviderNoTURN(t *testing.T) {
	t.Parallel()
	p, err := New(Config{STUN: []string{"stun:a", "stun:b"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.LoginServers("dave")) != string(p.HelloServers()) {
		t.Errorf("login %s differs from hello %s", p.LoginServers("dave"), p.HelloServers())
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := map[string]Config{
		"stun scheme":       {STUN: []string{"turn:x"}},
		"empty stun":        {STUN: []string{""}},
		"turn scheme":       {TURN: []string{"stun:x"}, Secret: "s"},
		"turn without cred": {TURN: []string{"turn:x"}},
		"secret and static": {TURN: []string{"turn:x"}, Secret: "s", Username: "u", Password: "p"},
		"half static":       {TURN: []string{"turn:x"}, Username: "u"},
		"negative ttl":      {TURN: []string{"turn:x"}, Secret: "s", TTL: -time.Second},
	}
	for name, cfg := range tests {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
