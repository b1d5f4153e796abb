package turnserver

import (
	"net/netip"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	t.Parallel()
	def := NewPeerPolicy(nil, nil)
	loopOK := NewPeerPolicy(mustPrefixes("127.0.0.1/32"), nil)
	noLAN := NewPeerPolicy(nil, mustPrefixes("10.0.0.0/8", "192.168.0.0/16", "fc00::/7"))
	tests := []struct {
		policy PeerPolicy
		ip     string
		want   bool
	}{
		{def, "203.0.113.7", true},
		{def, "2001:db8::1", true},
		{def, "192.168.1.20", true}, // LAN peers are fine unless the operator denies them
		{def, "127.0.0.1", false},
		{def, "127.1.2.3", false},
		{def, "0.0.0.0", false},
		{def, "169.254.169.254", false},
		{def, "169.254.10.1", false},
		{def, "100.100.100.200", false},
		{def, "224.0.0.251", false},
		{def, "255.255.255.255", false},
		{def, "::1", false},
		{def, "::", false},
		{def, "fe80::1", false},
		{def, "fd00:ec2::254", false},
		{def, "ff02::1", false},
		{def, "::ffff:127.0.0.1", false},       // IPv4-mapped loopback
		{def, "::ffff:169.254.169.254", false}, // IPv4-mapped metadata
		{def, "64:ff9b::a9fe:a9fe", false},     // NAT64 of 169.254.169.254
		{def, "64:ff9b::cb00:7107", true},      // NAT64 of 203.0.113.7
		{loopOK, "127.0.0.1", true},
		{loopOK, "::ffff:127.0.0.1", true},
		{loopOK, "127.0.0.2", false},
		{loopOK, "169.254.169.254", false},
		{noLAN, "10.1.2.3", false},
		{noLAN, "192.168.1.20", false},
		{noLAN, "fd12::1", false},
		{noLAN, "172.16.0.1", true},
		{noLAN, "127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := tt.policy.Permits(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("policy %v: Permits(%s) = %v, want %v", tt.policy.Allow, tt.ip, got, tt.want)
		}
	}
	if def.Permits(netip.Addr{}) {
		t.Error("zero address permitted")
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := ParsePrefixes([]string{" 10.0.0.0/8", "192.0.2.1", "", "2001:db8::/32", "10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32", "10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %v, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3/8"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}
