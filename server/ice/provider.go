package ice

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultTTL is the lifetime of TURN REST credentials when Config.TTL is
// zero. An hour covers a long call; a client that reconnects gets a fresh
// credential with its new login anyway.
const DefaultTTL = time.Hour

// Server is one entry of RTCPeerConnection's iceServers list.
type Server struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Config says which ICE servers to hand to browsers.
type Config struct {
	// STUN lists stun: or stuns: URLs, sent to every client in hello.
	// Empty means no STUN at all, which suits a LAN-only server.
	STUN []string
	// TURN lists turn: or turns: URLs, sent only in successful login
	// replies. TURN entries need credentials: Secret, or Username and
	// Password.
	TURN []string
	// Secret is the TURN REST shared secret (coturn's static-auth-secret).
	Secret string
	// TTL is the lifetime of credentials made from Secret; zero means
	// DefaultTTL.
	TTL time.Duration
	// Username and Password are static TURN credentials for TURN servers
	// without the REST scheme. Every browser gets the same password.
	Username, Password string
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Provider hands out ICE server lists. It implements the signaling
// package's ICEProvider interface and is safe for concurrent use.
type Provider struct {
	cfg   Config
	hello json.RawMessage
	stun  []Server
}

// New checks cfg and returns a Provider for it.
func New(cfg Config) (*Provider, error) {
	if err := checkURLs(cfg.STUN, "stun:", "stuns:"); err != nil {
		return nil, fmt.Errorf("checking stun urls: %w", err)
	}
	if err := checkURLs(cfg.TURN, "turn:", "turns:"); err != nil {
		return nil, fmt.Errorf("checking turn urls: %w", err)
	}
	static := cfg.Username != "" || cfg.Password != ""
	switch {
	case cfg.Secret != "" && static:
		return nil, errors.New("turn secret and static turn username/password are exclusive")
	case static && (cfg.Username == "" || cfg.Password == ""):
		return nil, errors.New("static turn credentials need both username and password")
	case len(cfg.TURN) > 0 && cfg.Secret == "" && !static:
		// A turn: URL without credentials makes RTCPeerConnection's
		// constructor throw, which would break every call, not just relay.
		return nil, errors.New("turn urls need a turn secret or a static username and password")
	case cfg.TTL < 0:
		return nil, fmt.Errorf("turn ttl %v is negative", cfg.TTL)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg}
	if len(cfg.STUN) > 0 {
		p.stun = []Server{{URLs: cfg.STUN}}
	}
	p.hello = mustMarshal(orEmpty(p.stun))
	return p, nil
}

func checkURLs(urls []string, schemes ...string) error {
	for _, u := range urls {
		ok := false
		for _, s := range schemes {
			ok = ok || strings.HasPrefix(u, s) && len(u) > len(s)
		}
		if !ok {
			return fmt.Errorf("%q does not start with %s", u, strings.Join(schemes, " or "))
		}
	}
	return nil
}

// HelloServers returns the STUN list as JSON, the same for everyone.
func (p *Provider) HelloServers() json.RawMessage { return p.hello }

// LoginServers returns the full list as JSON: the STUN entry and, if TURN
// is configured, a TURN entry with credentials for name. REST credentials
// are made afresh on each call and expire after the TTL.
func (p *Provider) LoginServers(name string) json.RawMessage {
	if len(p.cfg.TURN) == 0 {
		return p.hello
	}
	turn := Server{URLs: p.cfg.TURN, Username: p.cfg.Username, Credential: p.cfg.Password}
	if p.cfg.Secret != "" {
		turn.Username = Username(p.cfg.Now().Add(p.cfg.TTL), name)
		turn.Credential = Credential(p.cfg.Secret, turn.Username)
	}
	return mustMarshal(append(append([]Server(nil), p.stun...), turn))
}

// orEmpty keeps an empty list "[]" rather than "null" on the wire, so
// clients can pass it straight to RTCPeerConnection.
func orEmpty(l []Server) []Server {
	if l == nil {
		return []Server{}
	}
	return l
}

func mustMarshal(v []Server) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshalling ice servers: %v", err)) // only strings inside: cannot fail
	}
	return b
}
