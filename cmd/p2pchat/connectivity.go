package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/p2pchat/p2pchat/server/ice"
	"github.com/p2pchat/p2pchat/server/signaling"
	"github.com/p2pchat/p2pchat/server/turnserver"
)

// iceFlags are the connectivity settings: which STUN and TURN servers the
// browsers get, and the optional embedded TURN relay.
type iceFlags struct {
	stun, turn         string
	secret             string
	ttl                time.Duration
	user, pass         string
	listen, publicIP   string
	relayPorts, realm  string
	maxPerUser, maxAll int
	peerAllow          string
	peerDeny           string
	relayOnlyTest      bool
}

func (f *iceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.stun, "stun", signaling.DefaultSTUN, `comma-separated STUN URLs sent to every client; "" or "none" for none (LAN only)`)
	fs.StringVar(&f.turn, "turn", "", "comma-separated TURN URLs (turn:host:3478?transport=udp, turns:host:5349) sent after login; default: the embedded relay if -turn-listen is set")
	fs.StringVar(&f.secret, "turn-secret", "", "TURN REST shared secret (coturn static-auth-secret); browsers get short-lived credentials made from it, never the secret")
	fs.DurationVar(&f.ttl, "turn-ttl", ice.DefaultTTL, "lifetime of TURN credentials; new ones are made at every login")
	fs.StringVar(&f.user, "turn-user", "", "static TURN username for servers without the REST scheme (discouraged: every browser gets the password)")
	fs.StringVar(&f.pass, "turn-pass", "", "static TURN password for -turn-user")
	fs.StringVar(&f.listen, "turn-listen", "", "UDP address to run the embedded TURN relay on, e.g. :3478 (off when empty)")
	fs.StringVar(&f.publicIP, "turn-public-ip", "", "IP address browsers reach the embedded relay at (needed unless -turn-listen names one)")
	fs.StringVar(&f.relayPorts, "turn-relay-ports", "", "UDP port range for relayed traffic, e.g. 49152-65535 (default: any free port)")
	fs.StringVar(&f.realm, "turn-realm", turnserver.DefaultRealm, "TURN realm of the embedded relay")
	fs.IntVar(&f.maxPerUser, "turn-max-per-user", turnserver.DefaultMaxPerUser, "concurrent relay allocations per login name; -1 for no limit")
	fs.IntVar(&f.maxAll, "turn-max-allocations", turnserver.DefaultMaxTotal, "concurrent relay allocations in all; -1 for no limit")
	fs.StringVar(&f.peerAllow, "turn-peer-allow", "", "comma-separated CIDRs the relay may send to even if denied (e.g. 127.0.0.1/32 for tests)")
	fs.StringVar(&f.peerDeny, "turn-peer-deny", "", "comma-separated CIDRs the relay must not send to, added to loopback, link-local and cloud metadata (e.g. 10.0.0.0/8,192.168.0.0/16 on a public host)")
	fs.BoolVar(&f.relayOnlyTest, "allow-relay-only-test", false, "TESTING ONLY: let the client force relay-only ICE with ?relay=1 in the page URL")
}

// check validates the flags that do not need a running relay.
func (f *iceFlags) check() error {
	relayOnly := f.publicIP != "" || f.relayPorts != "" || f.peerAllow != "" || f.peerDeny != ""
	switch {
	case f.listen == "" && relayOnly:
		return errors.New("-turn-public-ip, -turn-relay-ports and -turn-peer-* need -turn-listen")
	case f.listen != "" && (f.user != "" || f.pass != ""):
		return errors.New("the embedded relay (-turn-listen) only takes -turn-secret credentials, not -turn-user/-turn-pass")
	}
	_, _, err := parsePortRange(f.relayPorts)
	return err
}

func (f *iceFlags) stunURLs() []string {
	if strings.TrimSpace(f.stun) == "none" {
		return nil
	}
	return splitList(f.stun)
}

// apply runs the embedded relay if asked and puts the ICE provider and the
// relay-only test switch into sig. It returns the relay (nil if none) for
// the caller to close.
func (f *iceFlags) apply(sig *signaling.Config, log *slog.Logger) (*turnserver.Server, error) {
	p, relay, err := f.start(log)
	if err != nil {
		return nil, err
	}
	sig.ICE = p
	sig.TestRelay = f.relayOnlyTest
	if f.relayOnlyTest {
		log.Warn("-allow-relay-only-test is on: pages may force relay-only ICE with ?relay=1; do not use in production")
	}
	return relay, nil
}

// start runs the embedded relay if asked and returns the ICE provider for
// the hub, and the relay (nil if none) for the caller to close.
func (f *iceFlags) start(log *slog.Logger) (signaling.ICEProvider, *turnserver.Server, error) {
	cfg := ice.Config{
		STUN: f.stunURLs(), TURN: splitList(f.turn), Secret: f.secret, TTL: f.ttl,
		Username: f.user, Password: f.pass,
	}
	if f.user != "" {
		log.Warn("static TURN credentials: every browser gets the same password; prefer -turn-secret")
	}
	var relay *turnserver.Server
	if f.listen != "" {
		if cfg.Secret == "" {
			// Enabling the relay is one flag: with a single instance the
			// secret need not be shared with anyone, so make one.
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			cfg.Secret = base64.RawStdEncoding.EncodeToString(b)
			log.Info("embedded TURN relay uses a random secret; set -turn-secret to share it with other instances")
		}
		tcfg, err := f.relayConfig(cfg.Secret)
		if err != nil {
			return nil, nil, err
		}
		relay, err = turnserver.Start(tcfg, log)
		if err != nil {
			return nil, nil, err
		}
		if len(cfg.TURN) == 0 {
			cfg.TURN = []string{relay.URL()}
		}
	}
	p, err := ice.New(cfg)
	if err != nil {
		if relay != nil {
			_ = relay.Close()
		}
		return nil, nil, fmt.Errorf("configuring ice servers: %w", err)
	}
	return p, relay, nil
}

func (f *iceFlags) relayConfig(secret string) (turnserver.Config, error) {
	allow, err := turnserver.ParsePrefixes(splitList(f.peerAllow))
	if err != nil {
		return turnserver.Config{}, fmt.Errorf("-turn-peer-allow: %w", err)
	}
	deny, err := turnserver.ParsePrefixes(splitList(f.peerDeny))
	if err != nil {
		return turnserver.Config{}, fmt.Errorf("-turn-peer-deny: %w", err)
	}
	lo, hi, _ := parsePortRange(f.relayPorts) // checked in check
	return turnserver.Config{
		Listen: f.listen, PublicIP: f.publicIP, MinPort: lo, MaxPort: hi,
		Realm: f.realm, Secret: secret, MaxPerUser: f.maxPerUser, MaxTotal: f.maxAll,
		Policy: turnserver.NewPeerPolicy(allow, deny),
	}, nil
}

// parsePortRange parses "lo-hi"; empty means no range (0, 0).
func parsePortRange(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
		return 0, 0, fmt.Errorf("-turn-relay-ports %q: want lo-hi, e.g. 49152-65535", s)
	}
	return uint16(l), uint16(h), nil
}
