package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/ice"
	"github.com/p2pchat/p2pchat/server/signaling"
	"github.com/p2pchat/p2pchat/server/turnserver"
)

// flakyUDP is one browser's UDP path to the TURN relay. cut drops every
// packet and forgets the mappings; after restore each browser socket gets
// a new source port towards the relay, as after a change of network: the
// relay no longer knows the browser's allocation from its new address.
type flakyUDP struct {
	conn   *net.UDPConn
	target *net.UDPAddr

	mu   sync.Mutex
	down bool
	ups  map[string]*net.UDPConn
}

func newFlakyUDP(t *testing.T, target net.Addr) *flakyUDP {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u := &flakyUDP{conn: c, target: target.(*net.UDPAddr), ups: map[string]*net.UDPConn{}}
	go u.run()
	t.Cleanup(func() { _ = c.Close(); u.cut(true) })
	return u
}

func (u *flakyUDP) addr() string { return u.conn.LocalAddr().String() }

func (u *flakyUDP) run() {
	buf := make([]byte, 64<<10)
	for {
		n, src, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		u.mu.Lock()
		if u.down {
			u.mu.Unlock()
			continue
		}
		up := u.ups[src.String()]
		if up == nil {
			if up, err = net.DialUDP("udp", nil, u.target); err != nil {
				u.mu.Unlock()
				continue
			}
			u.ups[src.String()] = up
			go u.back(up, src)
		}
		u.mu.Unlock()
		_, _ = up.Write(buf[:n])
	}
}

func (u *flakyUDP) back(up *net.UDPConn, src *net.UDPAddr) {
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		u.mu.Lock()
		down := u.down
		u.mu.Unlock()
		if !down {
			_, _ = u.conn.WriteToUDP(buf[:n], src)
		}
	}
}

// cut drops all traffic (down) and forgets the mappings, or lets traffic
// through again.
func (u *flakyUDP) cut(down bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.down = down
	for k, up := range u.ups {
		_ = up.Close()
		delete(u.ups, k)
	}
}

// viaProxy hands one login name TURN URLs that lead through a proxy.
type viaProxy struct {
	*ice.Provider
	name, from, to string
}

func (v viaProxy) LoginServers(name string) json.RawMessage {
	s := v.Provider.LoginServers(name)
	if name != v.name {
		return s
	}
	return bytes.ReplaceAll(s, []byte(v.from), []byte(v.to))
}

// TestResumeNetworkChangeExpiredTURN: a relayed call outlives its TURN
// credentials (the relay's and the server's clock jump past -turn-ttl),
// then one side's network changes: its WebSocket and its path to the relay
// break together, and come back from a new address. The page resumes its
// session, restarts ICE with the fresh credentials of that login (the old
// ones could no longer allocate a relay), and the call goes on through
// the relay.
func TestResumeNetworkChangeExpiredTURN(t *testing.T) {
	ctx := browserTest(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	const secret, ttl = "e2e-netchange-secret", 10 * time.Minute
	relay, err := turnserver.Start(turnserver.Config{
		Listen: "127.0.0.1:0", Secret: secret, Now: now,
		Policy: turnserver.NewPeerPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil),
	}, log)
	if err != nil {
		t.Fatalf("start turn: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	udp := newFlakyUDP(t, relay.Addr())
	provider, err := ice.New(ice.Config{TURN: []string{relay.URL()}, Secret: secret, TTL: ttl, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := signaling.DefaultConfig()
	cfg.ICE = viaProxy{Provider: provider, name: "amy", from: relay.Addr().String(), to: udp.addr()}
	cfg.TestRelay = true
	srv := server.New(server.Config{Signaling: cfg}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()); _ = hs.Close() })
	link := newFlakyLink(t, ln.Addr().String())

	a := newPeer(t, ctx, link.URL("relay=1"), "amy")
	b := newPeer(t, ctx, "http://"+ln.Addr().String()+"/?relay=1", "bo")
	for _, p := range []*peer{a, b} {
		eval[any](p, recordPCs)
	}
	a.login("amy")
	b.login("bo")
	a.wait("relay-only", `state.relayOnly`)
	connect(t, a, b, "amy", "bo")
	var before pairInfo
	for range 40 {
		if before = a.selectedPair(); before.State == "succeeded" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if before.Local != "relay" {
		t.Fatalf("amy's pair before the change %+v, want a relay candidate", before)
	}
	allocs := relay.Stats().Allocations

	// Every credential handed out so far is now past its expiry.
	skew.Store(int64(ttl + time.Hour))
	link.cut(true)
	udp.cut(true)
	a.wait("socket lost", `state.sig === 'reconnecting'`)
	a.wait("ICE lost", `['disconnected', 'failed'].includes(window.__pcs.at(-1).iceConnectionState)`)
	udp.cut(false)
	link.setDown(false)
	a.do("back online", chromedp.Evaluate[chromedp.Void](`dispatchEvent(new Event('online'))`))
	a.wait("resumed", `state.logins === 2 && state.sig === 'connected'`)

	const healthy = `state.call.state === 'connected' && state.call.open && ['connected', 'completed'].includes(window.__pcs.at(-1).iceConnectionState)`
	for _, p := range []*peer{a, b} {
		p.wait("call recovered", healthy)
	}
	a.say("new network, same call")
	b.got("new network, same call")
	b.say("through a new relay allocation")
	a.got("through a new relay allocation")
	var after pairInfo
	for range 40 {
		if after = a.selectedPair(); after.State == "succeeded" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after.Local != "relay" || after.LocalAddr == before.LocalAddr {
		t.Errorf("amy's pair after the change %+v (before %+v): want a new relay candidate", after, before)
	}
	if st := relay.Stats(); st.Allocations <= allocs {
		t.Errorf("relay allocations %d, %d before the change: the recovery made none", st.Allocations, allocs)
	}
	if n := srv.Hub().Stats().Resumes.Load(); n != 1 {
		t.Errorf("%d resumes, want 1", n)
	}
}
