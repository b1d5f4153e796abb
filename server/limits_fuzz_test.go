package server

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP: whatever X-Forwarded-For says, the address a request is
// counted under is the TCP peer or one of the header's own entries, and an
// untrusted peer is always counted as itself.
func FuzzClientIP(f *testing.F) {
	for _, seed := range []string{"", "203.0.113.7", "1.1.1.1, 10.0.0.2", "garbage, 10.0.0.2", "::1,,", " , ", "[::1]:80"} {
		f.Add("10.0.0.1:5555", seed)
		f.Add("198.51.100.1:5555", seed)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		got := clientIP(r, trusted)
		peer := peerAddr(r)
		if !isTrusted(peer, trusted) {
			if got != peer {
				t.Fatalf("untrusted peer %q counted as %v (xff %q)", remote, got, xff)
			}
			return
		}
		if got == peer {
			return
		}
		for _, hop := range strings.Split(xff, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(hop)); err == nil && a.Unmap() == got {
				return
			}
		}
		t.Fatalf("counted as %v, which is neither the peer %q nor in %q", got, remote, xff)
	})
}
