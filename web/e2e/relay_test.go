package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/ice"
	"github.com/p2pchat/p2pchat/server/signaling"
	"github.com/p2pchat/p2pchat/server/turnserver"
)

// startRelayServer runs p2pchat with the embedded TURN relay on 127.0.0.1
// (loopback peers allowed, as only tests may), no STUN, and the relay-only
// test switch on. It returns the page URL and the relay.
func startRelayServer(t *testing.T) (string, *turnserver.Server) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const secret = "e2e-relay-secret"
	relay, err := turnserver.Start(turnserver.Config{
		Listen: "127.0.0.1:0",
		Secret: secret,
		Policy: turnserver.NewPeerPolicy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil),
	}, log)
	if err != nil {
		t.Fatalf("start turn: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	provider, err := ice.New(ice.Config{TURN: []string{relay.URL()}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	cfg := signaling.DefaultConfig()
	cfg.ICE = provider
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
	return "http://" + ln.Addr().String() + "/", relay
}

// recordPCs makes the page keep every RTCPeerConnection it creates in
// window.__pcs, so the test can read getStats() without relying on the
// client's own reporting. The client looks RTCPeerConnection up when a call
// starts, so installing this after the page loaded is early enough.
const recordPCs = `(() => {
  if (window.__pcs) return;
  window.__pcs = [];
  const Orig = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Orig {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})()`

// selectedPair reports the policy and the selected candidate pair of the
// page's newest peer connection, as getStats() shows them.
const selectedPair = `(async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  if (!pc) return '{}';
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
  });
  if (!pair) return JSON.stringify({policy: pc.getConfiguration().iceTransportPolicy});
  const l = stats.get(pair.localCandidateId), r = stats.get(pair.remoteCandidateId);
  return JSON.stringify({
    policy: pc.getConfiguration().iceTransportPolicy, state: pair.state,
    local: l.candidateType, remote: r.candidateType,
    localAddr: l.address + ':' + l.port, remoteAddr: r.address + ':' + r.port,
    relayProtocol: l.relayProtocol || '', bytesSent: pair.bytesSent,
  });
})()`

type pairInfo struct {
	Policy        string `json:"policy"`
	State         string `json:"state"`
	Local         string `json:"local"`
	Remote        string `json:"remote"`
	LocalAddr     string `json:"localAddr"`
	RemoteAddr    string `json:"remoteAddr"`
	RelayProtocol string `json:"relayProtocol"`
	BytesSent     int64  `json:"bytesSent"`
}

func (p *peer) selectedPair() pairInfo {
	p.t.Helper()
	var info pairInfo
	s := evalAwait[string](p, selectedPair)
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		p.t.Fatalf("%s: stats %q: %v", p.name, s, err)
	}
	return info
}

func evalAwait[T any](p *peer, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: eval: %v", p.name, err)
	}
	return v
}

// TestRelayOnlyCall: two browsers forced to relay-only ICE connect through
// the embedded TURN relay, getStats shows a relay pair on both sides, and
// they chat over it.
func TestRelayOnlyCall(t *testing.T) {
	ctx := browserTest(t)
	url, relay := startRelayServer(t)
	a := newPeer(t, ctx, url+"?relay=1", "alice")
	b := newPeer(t, ctx, url+"?relay=1", "bob")
	for _, p := range []*peer{a, b} {
		eval[any](p, recordPCs)
	}
	a.login("alice")
	b.login("bob")
	a.wait("relay-only switch", `state.relayOnly === true`)
	b.wait("relay-only switch", `state.relayOnly === true`)
	connect(t, a, b, "alice", "bob")

	relayIP := strings.Split(relay.Addr().String(), ":")[0]
	infos := map[*peer]pairInfo{}
	for _, p := range []*peer{a, b} {
		// The pair is selected by the time the channel is open, but give
		// the stats a moment to say so.
		p.wait("selected pair", `window.__pcs.length > 0`)
		var info pairInfo
		for range 40 {
			if info = p.selectedPair(); info.State == "succeeded" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: %+v", p.name, info)
		infos[p] = info
		if info.Policy != "relay" || info.Local != "relay" || info.State != "succeeded" {
			t.Errorf("%s: selected pair %+v, want a local relay candidate under policy relay", p.name, info)
		}
		if !strings.HasPrefix(info.LocalAddr, relayIP+":") || info.RelayProtocol != "udp" {
			t.Errorf("%s: local candidate %s over %q, want the relay at %s over udp", p.name, info.LocalAddr, info.RelayProtocol, relayIP)
		}
	}
	// The remote end is the other browser's relay candidate. With trickle
	// ICE a connectivity check from it can arrive before its candidate
	// message, and then getStats calls it peer-reflexive. Under policy
	// "relay" no other kind of remote candidate can carry the call.
	for p, info := range infos {
		if info.Remote != "relay" && info.Remote != "prflx" {
			t.Errorf("%s: remote candidate %s %s, want the other side's relay", p.name, info.Remote, info.RemoteAddr)
		}
	}
	a.wait("path shown", `state.call.path === 'relay'`)
	b.wait("path shown", `state.call.path === 'relay'`)

	chatBothWays(a, b, "through the relay", "and back")

	if st := relay.Stats(); st.Allocations < 2 || st.PeersPermitted < 2 || st.AuthFailures != 0 {
		t.Errorf("relay stats %+v, want an allocation and permissions per browser", st)
	}
}

// TestRelayParamIgnoredWithoutSwitch: without -allow-relay-only-test the
// page ignores ?relay=1, so a stray link cannot push calls onto the relay.
func TestRelayParamIgnoredWithoutSwitch(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL("relay=1"), "alice")
	a.login("alice")
	if eval[bool](a, `state.relayOnly`) {
		t.Error("relay-only on although the server did not allow it")
	}
}
