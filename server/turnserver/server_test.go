package turnserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/p2pchat/p2pchat/server/ice"
)

const testSecret = "test-secret"

// startServer runs a relay on 127.0.0.1 with loopback peers allowed, as
// tests must, unless cfg.Policy is set.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	if cfg.Policy.Allow == nil && cfg.Policy.Deny == nil {
		cfg.Policy = NewPeerPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	}
	s, err := Start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// restCreds returns REST credentials for name valid for ttl (negative:
// already expired).
func restCreds(secret, name string, ttl time.Duration) (user, pass string) {
	user = ice.Username(time.Now().Add(ttl), name)
	return user, ice.Credential(secret, user)
}

// allocate asks s for a relay with a pion TURN client and returns the
// relayed conn. The client is closed when the test ends.
func allocate(t *testing.T, s *Server, user, pass string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.Addr().String(),
		TURNServerAddr: s.Addr().String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          DefaultRealm,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	relay, err := c.AllocateWithContext(ctx)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay, nil
}

// allocateAs allocates with fresh, valid credentials for name.
func allocateAs(t *testing.T, s *Server, name string) (net.PacketConn, error) {
	t.Helper()
	user, pass := restCreds(testSecret, name, time.Hour)
	return allocate(t, s, user, pass)
}

// listenPeer is a UDP peer on loopback for a relay to send to.
func listenPeer(t *testing.T) net.PacketConn {
	t.Helper()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	return peer
}

func TestAllocateCredentials(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{})
	goodUser, goodPass := restCreds(testSecret, "alice", time.Hour)
	expUser, expPass := restCreds(testSecret, "alice", -time.Minute)
	forgedUser, forgedPass := restCreds("other-secret", "alice", time.Hour)
	zhUser, zhPass := restCreds(testSecret, "小明", time.Hour)
	tests := []struct {
		name       string
		user, pass string
		ok         bool
	}{
		{"good", goodUser, goodPass, true},
		{"utf-8 name", zhUser, zhPass, true},
		{"wrong password", goodUser, goodPass + "x", false},
		{"expired", expUser, expPass, false},
		{"other secret", forgedUser, forgedPass, false},
		{"no expiry", "alice", ice.Credential(testSecret, "alice"), false},
		{"extended expiry, old password", ice.Username(time.Now().Add(48*time.Hour), "alice"), goodPass, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			relay, err := allocate(t, s, tt.user, tt.pass)
			if tt.ok && err != nil {
				t.Fatalf("allocation refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("allocation granted at %v", relay.LocalAddr())
			}
		})
	}
}

func TestRelayCarriesData(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{})
	relay, err := allocateAs(t, s, "bob")
	if err != nil {
		t.Fatal(err)
	}
	peer := listenPeer(t)
	if _, err := relay.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
		t.Fatalf("writing through relay: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Errorf("peer saw %v, relay address is %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("relay read %q, %v", buf[:n], err)
	}
	if st := s.Stats(); st.Allocations != 1 || st.PeersPermitted == 0 {
		t.Errorf("stats %+v", st)
	}
	var prom strings.Builder
	s.WriteMetrics(&prom)
	for _, want := range []string{"p2pchat_turn_allocations_total 1\n", "p2pchat_turn_allocations_active 1\n", `p2pchat_turn_permissions_total{verdict="denied"} 0`} {
		if !strings.Contains(prom.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom.String())
		}
	}
}

func TestPolicyRefusesLoopbackByDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{Policy: NewPeerPolicy(nil, nil)})
	relay, err := allocateAs(t, s, "carol")
	if err != nil {
		t.Fatal(err)
	}
	peer := listenPeer(t)
	if _, err := relay.WriteTo([]byte("secret"), peer.LocalAddr()); err == nil {
		t.Error("relay accepted a permission for a loopback peer")
	}
	_ = peer.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := peer.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("loopback peer received %d bytes", n)
	}
	if st := s.Stats(); st.PeersDenied == 0 || st.PeersPermitted != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{MaxPerUser: 1, MaxTotal: 2})
	alice1, err := allocateAs(t, s, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := allocateAs(t, s, "alice"); err == nil {
		t.Error("second allocation for alice granted despite per-user limit 1")
	}
	if _, err := allocateAs(t, s, "bob"); err != nil {
		t.Fatalf("bob refused: %v", err)
	}
	if _, err := allocateAs(t, s, "carol"); err == nil {
		t.Error("third allocation granted despite total cap 2")
	}
	st := s.Stats()
	if st.Active != 2 || st.UserQuota != 1 || st.TotalQuota != 1 {
		t.Errorf("stats %+v, want active 2, one refusal of each kind", st)
	}
	// Freeing alice's relay frees her quota and a slot of the cap.
	_ = alice1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Active != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := allocateAs(t, s, "alice"); err != nil {
		t.Errorf("alice refused after freeing her relay: %v (stats %+v)", err, s.Stats())
	}
}

// TestExpiryDuringCall: a credential that expires while its allocation is
// in use keeps that allocation working (new permissions, refresh), but
// cannot make a new allocation.
func TestExpiryDuringCall(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // how far the server's clock is ahead
	s := startServer(t, Config{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	user, pass := restCreds(testSecret, "dora", time.Minute)
	relay, err := allocate(t, s, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(time.Hour)) // the credential is now 59 minutes past its expiry
	peer := listenPeer(t)
	if _, err := relay.WriteTo([]byte("still here"), peer.LocalAddr()); err != nil {
		t.Fatalf("new permission on a live allocation after expiry: %v", err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "still here" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if _, err := allocate(t, s, user, pass); err == nil {
		t.Error("expired credential made a new allocation")
	}
}
