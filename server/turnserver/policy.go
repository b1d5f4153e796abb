package turnserver

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/p2pchat/p2pchat/server/iprange"
)

// DefaultDeny lists the peer ranges the relay refuses unless a range in
// PeerPolicy.Allow covers them.
var DefaultDeny = mustPrefixes(
	"0.0.0.0/8",          // "this network": 0.0.0.0 reaches the host itself on Linux
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link-local, including 169.254.169.254 (AWS, GCP, Azure, OCI metadata)
	"100.100.100.200/32", // Alibaba Cloud metadata
	"224.0.0.0/4",        // multicast
	"240.0.0.0/4",        // reserved, including broadcast 255.255.255.255
	"::/96",              // unspecified, loopback, deprecated IPv4-compatible
	"fe80::/10",          // link-local
	"fd00:ec2::254/128",  // AWS metadata over IPv6
	"ff00::/8",           // multicast
)

// nat64 is the well-known NAT64 prefix: its addresses embed an IPv4
// address that a NAT64 gateway would reach, so that one is checked too.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// PeerPolicy decides which peer addresses the relay may send to.
type PeerPolicy struct {
	// Allow lists ranges that are permitted even if Deny covers them.
	Allow []netip.Prefix
	// Deny lists refused ranges. NewPeerPolicy puts DefaultDeny here.
	Deny []netip.Prefix
}

// NewPeerPolicy returns DefaultDeny plus deny, with allow taking precedence.
func NewPeerPolicy(allow, deny []netip.Prefix) PeerPolicy {
	return PeerPolicy{
		Allow: allow,
		Deny:  append(append([]netip.Prefix(nil), DefaultDeny...), deny...),
	}
}

// Permits reports whether the relay may send to ip.
func (p PeerPolicy) Permits(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return false
	}
	if nat64.Contains(ip) {
		s := ip.As16()
		if !p.Permits(netip.AddrFrom4([4]byte(s[12:]))) {
			return false
		}
	}
	if contains(p.Allow, ip) {
		return true
	}
	return !contains(p.Deny, ip)
}

func (p PeerPolicy) permitsNetIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	return ok && p.Permits(a)
}

func contains(l []netip.Prefix, ip netip.Addr) bool {
	for _, p := range l {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes parses CIDR ranges; a bare address means just that address.
// Empty strings are skipped, so a flag's empty default parses to nothing.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	p, err := iprange.Parse(list)
	if err != nil {
		return nil, fmt.Errorf("peer range: %w", err)
	}
	return p, nil
}

func mustPrefixes(list ...string) []netip.Prefix {
	p, err := ParsePrefixes(list)
	if err != nil {
		panic(err)
	}
	return p
}
