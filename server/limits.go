package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pchat/p2pchat/server/iprange"
)

// DefaultMaxConnsPerIP is the default cap on WebSocket connections from one
// client address. A LAN party gives every guest their own address, and a
// household behind one NAT opens a handful of tabs; 64 leaves room for both
// while one host cannot take every connection of the server.
const DefaultMaxConnsPerIP = 64

// ipv6Group is the prefix length under which IPv6 addresses count as one
// client: a single host usually owns a whole /64 and can pick any address
// in it, so a per-address cap alone would not stop it.
const ipv6Group = 64

// Connection refusal reasons, as exported in metrics.
const (
	refusedPerIP = "per-ip-limit"
	refusedFull  = "server-full"
)

// connLimiter enforces the per-address and global connection caps. A zero
// limit means unlimited. One mutex is plenty: it is taken twice per
// connection, never per message.
type connLimiter struct {
	maxPerIP, max int

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int

	refusedPerIP atomic.Uint64
	refusedFull  atomic.Uint64

	// Unix nanoseconds of the last refusal logged, per reason: refusals
	// are logged at most once per refusalLogEvery, so a host hammering
	// the server cannot flood the log (the metrics count every one).
	lastLogPerIP, lastLogFull atomic.Int64
}

// refusalLogEvery is the least time between two logged refusals of one kind.
const refusalLogEvery = 10 * time.Second

// shouldLog reports whether a refusal may be logged now.
func shouldLog(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(refusalLogEvery) && last.CompareAndSwap(prev, now)
}

func newConnLimiter(maxPerIP, max int) *connLimiter {
	return &connLimiter{maxPerIP: maxPerIP, max: max, perIP: make(map[netip.Addr]int)}
}

// ipKey is the address a client is counted under.
func ipKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(ipv6Group); err == nil {
			return p.Addr()
		}
	}
	return a
}

// acquire counts a new connection from key, or returns the reason it is
// refused.
func (l *connLimiter) acquire(key netip.Addr) (refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		l.refusedFull.Add(1)
		return refusedFull
	}
	n := l.perIP[key]
	if l.maxPerIP > 0 && n >= l.maxPerIP {
		l.refusedPerIP.Add(1)
		return refusedPerIP
	}
	l.perIP[key] = n + 1
	l.total++
	return ""
}

// release forgets one connection from key.
func (l *connLimiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perIP[key]; n > 1 {
		l.perIP[key] = n - 1
	} else {
		delete(l.perIP, key)
	}
}

// admit decides whether a /ws request may open a connection. On refusal it
// writes the coded HTTP error itself: 429 when this address has too many
// connections, 503 when the server is full. Browsers do not show the body
// of a failed WebSocket handshake, but curl, proxies and logs do. remote is
// the client address to log; release must be called when the connection
// ends.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (remote string, release func(), ok bool) {
	ip := clientIP(r, s.cfg.TrustedProxies)
	key := ipKey(ip)
	remote = r.RemoteAddr
	if ip.IsValid() && ip != peerAddr(r) {
		remote = ip.String() + " via " + r.RemoteAddr
	}
	switch s.limits.acquire(key) {
	case refusedPerIP:
		if shouldLog(&s.limits.lastLogPerIP) {
			s.log.Warn("connection refused: too many from one address (logged at most every 10s)",
				"remote", remote, "limit", s.cfg.MaxConnsPerIP, "refused_total", s.limits.refusedPerIP.Load())
		}
		refuse(w, http.StatusTooManyRequests, fmt.Sprintf(
			"too many connections from your address (limit %d): close some p2pchat tabs or try again later", s.cfg.MaxConnsPerIP))
		return "", nil, false
	case refusedFull:
		if shouldLog(&s.limits.lastLogFull) {
			s.log.Warn("connection refused: server full (logged at most every 10s)",
				"remote", remote, "limit", s.cfg.MaxConns, "refused_total", s.limits.refusedFull.Load())
		}
		refuse(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"server is full (%d connections): try again later", s.cfg.MaxConns))
		return "", nil, false
	}
	return remote, func() { s.limits.release(key) }, true
}

// refuse writes a plain-text refusal with a hint of when to retry.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Retry-After", "10")
	http.Error(w, msg, code)
}

// peerAddr is the TCP peer's address, or the zero Addr.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// clientIP returns the address a request is counted and logged under: the
// TCP peer, unless the peer is a trusted proxy, in which case
// X-Forwarded-For is walked from the right (the hop nearest to us) past
// every trusted proxy, and the first untrusted address is the client. The
// left part of the header is whatever the client chose to send, so it is
// never believed; a malformed entry stops the walk at the last proxy.
// (This is why chi's RealIP middleware, which believes the header from
// anyone, is not used.)
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peerAddr(r)
	if !isTrusted(addr, trusted) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = hop.Unmap()
		if !isTrusted(addr, trusted) {
			return addr
		}
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses a comma-separated list of CIDR prefixes; a plain
// address stands for itself (/32 or /128).
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	p, err := iprange.Parse(strings.Split(list, ","))
	if err != nil {
		return nil, fmt.Errorf("trusted proxy: %w", err)
	}
	return p, nil
}
