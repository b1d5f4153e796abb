package turnserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/p2pchat/p2pchat/server/ice"
)

// Defaults for Config fields left zero.
const (
	// DefaultRealm is the TURN realm; browsers accept any.
	DefaultRealm = "p2pchat"
	// DefaultMaxPerUser allows a few allocations per name: one call needs
	// one per browser tab, and an ICE restart briefly holds two.
	DefaultMaxPerUser = 5
	// DefaultMaxTotal caps concurrent allocations so that the relay cannot
	// use up the host's ports or bandwidth; each active call through the
	// relay takes one or two.
	DefaultMaxTotal = 1000
)

// Config configures the embedded TURN server.
type Config struct {
	// Listen is the UDP address to serve TURN on, e.g. ":3478".
	Listen string
	// PublicIP is the address clients and peers reach the relay at. It is
	// put into relayed candidates, so it must be reachable from every
	// browser. Empty means the IP of Listen, which must then be specific.
	PublicIP string
	// MinPort and MaxPort bound the relay ports (inclusive); both zero
	// means any free port.
	MinPort, MaxPort uint16
	// Realm is the TURN realm; empty means DefaultRealm.
	Realm string
	// Secret is the TURN REST secret shared with the signaling server.
	Secret string
	// MaxPerUser and MaxTotal limit concurrent allocations per login name
	// and in all; zero means the default, negative means no limit.
	MaxPerUser, MaxTotal int
	// Policy decides which peers the relay may send to. The zero value
	// permits everything; use NewPeerPolicy.
	Policy PeerPolicy
	// Metrics receives the relay's counters; nil means a private set.
	Metrics *metrics.Set
	// Now returns the current time for credential expiry; nil: time.Now.
	Now func() time.Time
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Active         int    // allocations alive now
	Allocations    uint64 // allocations ever created
	AuthFailures   uint64 // requests with a wrong password or a malformed or expired username
	UserQuota      uint64 // allocations refused by the per-user limit
	TotalQuota     uint64 // allocations refused by the total cap
	PeersDenied    uint64 // permissions refused by the peer policy
	PeersPermitted uint64 // permissions granted
}

// Server is a running embedded TURN server.
type Server struct {
	cfg  Config
	log  *slog.Logger
	conn net.PacketConn
	turn *turn.Server

	mu      sync.Mutex
	perUser map[string]int
	active  int

	allocs, authFail, userQuota, totalQuota, denied, permitted *metrics.Counter
}

// Start listens on cfg.Listen and serves TURN until Close.
func Start(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Secret == "" {
		return nil, errors.New("starting turn server: no secret")
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.MaxPerUser == 0 {
		cfg.MaxPerUser = DefaultMaxPerUser
	}
	if cfg.MaxTotal == 0 {
		cfg.MaxTotal = DefaultMaxTotal
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if (cfg.MinPort == 0) != (cfg.MaxPort == 0) || cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("starting turn server: bad relay port range %d-%d", cfg.MinPort, cfg.MaxPort)
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("starting turn server: listen address %q: %w", cfg.Listen, err)
	}
	bind := "0.0.0.0"
	if host != "" {
		bind = host
	}
	public := cfg.PublicIP
	if public == "" {
		public = host
	}
	publicIP, err := netip.ParseAddr(public)
	if err != nil || publicIP.IsUnspecified() {
		return nil, fmt.Errorf("starting turn server: need a public IP (-turn-public-ip), have %q", public)
	}

	s := &Server{cfg: cfg, log: log.With("component", "turn"), perUser: map[string]int{}}
	s.initMetrics()

	network := "udp4"
	if publicIP.Is6() && !publicIP.Is4In6() {
		network = "udp6"
	}
	s.conn, err = net.ListenPacket(network, cfg.Listen) //nolint:noctx // listening once at startup
	if err != nil {
		return nil, fmt.Errorf("starting turn server: %w", err)
	}
	var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{
		RelayAddress: net.IP(publicIP.AsSlice()), Address: bind,
	}
	if cfg.MinPort != 0 {
		gen = &turn.RelayAddressGeneratorPortRange{
			RelayAddress: net.IP(publicIP.AsSlice()), Address: bind,
			MinPort: cfg.MinPort, MaxPort: cfg.MaxPort,
		}
	}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: loggerFactory{s.log},
		EventHandler: turn.EventHandler{
			OnAuth:              s.authResult,
			OnAllocationCreated: s.created,
			OnAllocationDeleted: s.deleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            s.conn,
			RelayAddressGenerator: gen,
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		_ = s.conn.Close()
		return nil, fmt.Errorf("starting turn server: %w", err)
	}
	s.log.Info("turn server listening", "addr", s.conn.LocalAddr().String(), "public_ip", publicIP.String(),
		"relay_ports", portRange(cfg.MinPort, cfg.MaxPort), "realm", cfg.Realm,
		"max_per_user", cfg.MaxPerUser, "max_total", cfg.MaxTotal)
	return s, nil
}

// Addr returns the UDP address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// URL returns the turn: URL browsers should use, built from the public IP
// and the listening port.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.conn.LocalAddr().String())
	host, _, _ := net.SplitHostPort(s.cfg.Listen)
	if s.cfg.PublicIP != "" {
		host = s.cfg.PublicIP
	}
	return "turn:" + net.JoinHostPort(host, port) + "?transport=udp"
}

// Close stops the server and frees every allocation.
func (s *Server) Close() error {
	if err := s.turn.Close(); err != nil {
		return fmt.Errorf("closing turn server: %w", err)
	}
	return nil
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := s.active
	s.mu.Unlock()
	return Stats{
		Active: active, Allocations: s.allocs.Get(), AuthFailures: s.authFail.Get(),
		UserQuota: s.userQuota.Get(), TotalQuota: s.totalQuota.Get(),
		PeersDenied: s.denied.Get(), PeersPermitted: s.permitted.Get(),
	}
}

// WriteMetrics writes the relay's counters in the Prometheus text format,
// for the server's /metrics handler to append.
func (s *Server) WriteMetrics(w io.Writer) { s.cfg.Metrics.WritePrometheus(w) }

func (s *Server) initMetrics() {
	m := s.cfg.Metrics
	s.allocs = m.NewCounter("p2pchat_turn_allocations_total")
	s.authFail = m.NewCounter("p2pchat_turn_auth_failures_total")
	s.userQuota = m.NewCounter(`p2pchat_turn_quota_refusals_total{limit="user"}`)
	s.totalQuota = m.NewCounter(`p2pchat_turn_quota_refusals_total{limit="total"}`)
	s.denied = m.NewCounter(`p2pchat_turn_permissions_total{verdict="denied"}`)
	s.permitted = m.NewCounter(`p2pchat_turn_permissions_total{verdict="permitted"}`)
	m.NewGauge("p2pchat_turn_allocations_active", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.active)
	})
}

// auth checks a TURN REST username and returns the login name as user id
// and the long-term key derived from the expected password.
//
// The expiry is enforced when an allocation is made, not on the requests
// that keep an existing one alive (Refresh, CreatePermission, ChannelBind),
// which carry the same credential for as long as the call lasts: a call
// must not drop when its credential's TTL passes. Those requests still need
// the right password, and only reach an allocation from its own 5-tuple.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	_, name, err := ice.ParseUsername(ra.Username, s.cfg.Now())
	if errors.Is(err, ice.ErrExpired) && ra.Method != stun.MethodAllocate {
		err = nil
	}
	if err != nil {
		// Debug, not Warn: anyone can send these, and a flood must not
		// become a flood of log lines. The counter shows the rate.
		s.authFail.Inc()
		s.log.Debug("turn credential refused", "src", addrString(ra.SrcAddr), "err", err)
		return "", nil, false
	}
	// A wrong password is caught by pion when MESSAGE-INTEGRITY does not
	// match this key; it answers 401 like for an unknown user.
	pass := ice.Credential(s.cfg.Secret, ra.Username)
	return name, turn.GenerateAuthKey(ra.Username, ra.Realm, pass), true
}

// authResult counts requests whose MESSAGE-INTEGRITY did not match the
// key from auth: a wrong password for a well-formed, unexpired username.
func (s *Server) authResult(src, _ net.Addr, _, username, _, method string, ok bool) {
	if !ok {
		s.authFail.Inc()
		s.log.Debug("turn credential refused: wrong password", "src", addrString(src), "username", username, "method", method)
	}
}

func (s *Server) quota(user, _ string, src net.Addr) bool {
	s.mu.Lock()
	perUser, total := s.perUser[user], s.active
	s.mu.Unlock()
	switch {
	case s.cfg.MaxTotal > 0 && total >= s.cfg.MaxTotal:
		s.totalQuota.Inc()
		s.log.Warn("turn allocation refused: total cap reached", "user", user, "src", addrString(src), "active", total)
		return false
	case s.cfg.MaxPerUser > 0 && perUser >= s.cfg.MaxPerUser:
		s.userQuota.Inc()
		s.log.Warn("turn allocation refused: per-user limit reached", "user", user, "src", addrString(src), "user_active", perUser)
		return false
	}
	return true
}

func (s *Server) created(src, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
	s.mu.Lock()
	s.perUser[user]++
	s.active++
	s.mu.Unlock()
	s.allocs.Inc()
	s.log.Info("turn allocation created", "user", user, "src", addrString(src), "relay", addrString(relay))
}

func (s *Server) deleted(src, _ net.Addr, _, user, _ string) {
	s.mu.Lock()
	if s.perUser[user] > 0 {
		s.active--
		if s.perUser[user]--; s.perUser[user] == 0 {
			delete(s.perUser, user)
		}
	}
	s.mu.Unlock()
	s.log.Info("turn allocation deleted", "user", user, "src", addrString(src))
}

func (s *Server) permit(client net.Addr, peer net.IP) bool {
	if s.cfg.Policy.permitsNetIP(peer) {
		s.permitted.Inc()
		return true
	}
	s.denied.Inc()
	s.log.Info("turn peer refused by policy", "src", addrString(client), "peer", peer.String())
	return false
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func portRange(lo, hi uint16) string {
	if lo == 0 {
		return "any"
	}
	return strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
}
