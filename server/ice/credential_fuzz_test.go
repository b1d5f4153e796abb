package ice

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseUsername: usernames come from the network (TURN requests); the
// parser must never panic, and what it accepts must round-trip.
func FuzzParseUsername(f *testing.F) {
	for _, seed := range []string{"1700000060:alice", "1700000060:a:b", ":", "", "x:y", "-1:z", "99999999999999999999:n", "1700000060:小明"} {
		f.Add(seed)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, username string) {
		expiry, name, err := ParseUsername(username, now)
		if err != nil {
			return
		}
		if !expiry.After(now) {
			t.Fatalf("accepted %q expiring at %v, not after now", username, expiry)
		}
		if !strings.HasSuffix(username, ":"+name) {
			t.Fatalf("name %q is not the tail of %q", name, username)
		}
	})
}
