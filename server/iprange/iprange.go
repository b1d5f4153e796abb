// Package iprange parses the lists of IP ranges that flags take (trusted
// proxies, the TURN relay's peer allow and deny lists), so that every
// list accepts the same syntax: CIDR prefixes or bare addresses,
// surrounding spaces and empty items ignored.
package iprange

import (
	"fmt"
	"net/netip"
	"strings"
)

// Parse parses each item as a CIDR prefix, or as an address meaning just
// that address. Prefixes are masked (10.1.2.3/8 is 10.0.0.0/8) and
// IPv4-mapped IPv6 addresses become IPv4, so that they match what the
// network code compares them with.
func Parse(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("parsing %q: %w", item, err)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
