package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// autoAcceptSwitch installs, once, a callee with zero reaction time that
// presses Accept whenever window.__autoAccept is true, and sets it to on.
func autoAcceptSwitch(on bool) string {
	return fmt.Sprintf(`(() => {
  if (!('__autoAccept' in window)) new MutationObserver(() => {
    const b = document.getElementById('accept');
    if (window.__autoAccept && !b.hidden) b.click();
  }).observe(document.getElementById('callBox'), { attributes: true, subtree: true });
  window.__autoAccept = %t;
  return true;
})()`, on)
}

// TestCrossBrowser: Firefox calls Chromium, Chromium calls Firefox and
// Firefox calls Firefox, through the real page: chat both ways with
// receipts, the same safety code on both sides of every call (and again
// after each side restarts ICE), decline, busy and glare. The three browsers (two Firefox, one Chromium) start
// once and serve every case, which keeps the test short.
//
// Each case is a subtest; to add one (a video call, a file), write it
// against *tab, whose helpers work the same in both browsers.
func TestCrossBrowser(t *testing.T) {
	firefoxPath(t)
	ctx := browserTestFor(t, 4*time.Minute)
	srv := startServer(t)
	// In glare the polite side is the one whose name sorts later:
	// ann-ff < max-cr < zoe-ff, so each browser is polite once against the
	// other kind.

	fa, fz := startFirefox(t, "ann-ff"), startFirefox(t, "zoe-ff")
	max := newChromiumTab(t, ctx, srv.URL(""), "max-cr")
	ann, zoe := fa.open(ctx, srv.URL("")), fz.open(ctx, srv.URL(""))
	all := []*tab{ann, max, zoe}
	for _, u := range all {
		tabEval[any](u, recordPCs)
		u.login()
	}
	for _, u := range all {
		for _, o := range all {
			if o != u {
				u.sees(o)
			}
		}
	}
	// caller, callee: Firefox -> Chromium, Chromium -> Firefox, Firefox -> Firefox.
	pairs := [][2]*tab{{ann, max}, {max, ann}, {ann, zoe}}

	t.Run("chat", func(t *testing.T) {
		use(t, all...)
		for _, p := range pairs {
			a, b := p[0], p[1]
			dial(a, b)
			chatBothWays(a, b, "hello from "+a.browser, "hi from "+b.browser)
			ca, cb := a.safetyCode(stepTimeout), b.safetyCode(stepTimeout)
			if ca == "" || ca != cb {
				t.Errorf("%v -> %v: safety codes %q and %q", a, b, ca, cb)
			}
			for _, u := range []*tab{a, b} {
				u.wait("path", `state.call.path !== ''`)
				if got := u.text("#path"); got != "direct" {
					t.Errorf("%v: path %q, want direct", u, got)
				}
			}
			hangUp(a, b)
		}
	})

	t.Run("safety", func(t *testing.T) {
		use(t, all...)
		n := envCount("P2PCHAT_CROSS_CALLS", 20)
		for _, u := range all {
			tabEval[bool](u, autoAcceptSwitch(true))
		}
		defer func() {
			for _, u := range all {
				tabEval[bool](u, autoAcceptSwitch(false))
			}
		}()
		for _, p := range pairs {
			a, b := p[0], p[1]
			start := time.Now()
			same := 0
			for i := range n {
				a.call(b)
				for _, q := range [][2]*tab{{a, b}, {b, a}} {
					q[0].callState("connected", q[1])
				}
				// A code that is missing or differs after 5 s is what a user
				// sees: count it, and go on to the next call.
				ca, cb := a.safetyCode(5*time.Second), b.safetyCode(5*time.Second)
				if ca != "" && ca == cb {
					same++
				} else {
					t.Errorf("%v -> %v, call %d: safety codes %q and %q", a, b, i+1, ca, cb)
				}
				hangUp(a, b)
			}
			t.Logf("%s -> %s: the same safety code on both sides in %d/%d calls (%.0f ms a call)",
				a.browser, b.browser, same, n, float64(time.Since(start).Milliseconds())/float64(n))
		}
	})

	t.Run("restart", func(t *testing.T) {
		use(t, all...)
		// ICE restarts on a live call, across browsers: the caller, the
		// callee, then who restarts, in turn. Chromium restarting a call
		// it made to Firefox sometimes stalls on a dead pair; the page's
		// ping after the restart must catch that and restart again
		// (docs/client.md), so the chat after it still arrives.
		restartCall(t, ann, max, ann, max)
		restartCall(t, ann, zoe, ann, zoe)
		caught := len(max.logged("no pong after ICE restart")) + len(ann.logged("no pong after ICE restart"))
		n := envCount("P2PCHAT_CROSS_RESTARTS", 1)
		for range n {
			restartCall(t, max, ann, max, ann)
		}
		caught = len(max.logged("no pong after ICE restart")) + len(ann.logged("no pong after ICE restart")) - caught
		t.Logf("chromium -> firefox: %d restarts on each side, %d caught by the ping and restarted again", n, caught)
	})

	t.Run("decline", func(t *testing.T) {
		use(t, all...)
		for _, p := range [][2]*tab{{ann, max}, {max, zoe}} {
			a, b := p[0], p[1]
			a.call(b)
			b.callState("incoming", a)
			if got := b.text("#callTitle"); got != a.name+" is calling you" {
				t.Errorf("%v: call title %q", b, got)
			}
			b.click("#decline")
			b.ended("end.declined.local")
			a.ended("end.declined")
			if got := a.text("#notice"); got != b.name+" declined the call." {
				t.Errorf("%v: notice %q", a, got)
			}
			idle(a, b)
		}
	})

	t.Run("busy", func(t *testing.T) {
		use(t, all...)
		// Chromium refuses a Firefox caller, then Firefox a Chromium one.
		for _, c := range [][3]*tab{{ann, max, zoe}, {zoe, ann, max}} {
			a, b, third := c[0], c[1], c[2]
			dial(a, b)
			third.call(b)
			third.ended("end.busy")
			if got := third.text("#notice"); got != b.name+" is in another call. Try again later." {
				t.Errorf("%v: notice %q", third, got)
			}
			b.callState("connected", a)
			a.say("still here, " + b.name + "?")
			b.got("still here, " + b.name + "?")
			a.delivered("still here, " + b.name + "?")
			idle(third)
			hangUp(a, b)
		}
	})

	t.Run("files", func(t *testing.T) { crossFiles(t, pairs[:2]) })

	t.Run("video", func(t *testing.T) { crossVideo(t, pairs[:2]) })

	t.Run("glare", func(t *testing.T) {
		use(t, all...)
		// ann-ff is impolite against max-cr: the candidates of max-cr's
		// dropped offer reach Firefox, which would reject them.
		for _, p := range [][2]*tab{{ann, max}, {max, zoe}, {ann, zoe}} {
			a, b := p[0], p[1]
			rejected := map[*tab]int{a: len(a.logged("candidate rejected")), b: len(b.logged("candidate rejected"))}
			// Both pages click at the same wall-clock time (one machine
			// clock), so each sends its offer before the other's arrives.
			// A click late by more than the offer's trip finds the page
			// ringing and its buttons disabled: that page answers instead,
			// and the round is tried again.
			for round := 1; ; round++ {
				glares := len(a.logged("glare")) + len(b.logged("glare"))
				at := time.Now().Add(400 * time.Millisecond)
				for _, q := range [][2]*tab{{a, b}, {b, a}} {
					tabEval[bool](q[0], fmt.Sprintf(`(() => { const b = document.querySelector('#users button.user[data-name=%q]');
  setTimeout(() => b.click(), %d - Date.now()); return true })()`, q[1].name, at.UnixMilli()))
				}
				time.Sleep(time.Until(at.Add(time.Second)))
				for _, u := range []*tab{a, b} {
					if tabEval[bool](u, `state.call.state === 'incoming'`) {
						u.click("#accept")
					}
				}
				for _, q := range [][2]*tab{{a, b}, {b, a}} {
					q[0].callState("connected", q[1])
					q[0].wait("channel open", `state.call.open`)
				}
				if len(a.logged("glare"))+len(b.logged("glare")) > glares {
					break
				}
				if round == 3 {
					t.Fatalf("%v, %v: no side saw the offers cross in %d rounds; the test did not produce glare", a, b, round)
				}
				t.Logf("%v, %v: round %d: a click came after the other's offer; answered instead", a, b, round)
				hangUp(a, b)
			}
			a.say("one call")
			b.got("one call")
			b.say("indeed")
			a.got("indeed")
			a.delivered("one call")
			b.delivered("indeed")
			if ca, cb := a.safetyCode(stepTimeout), b.safetyCode(stepTimeout); ca == "" || ca != cb {
				t.Errorf("%v, %v: safety codes %q and %q", a, b, ca, cb)
			}
			for _, u := range []*tab{a, b} {
				if got := u.logged("candidate rejected"); len(got) != rejected[u] {
					t.Errorf("%v: %v", u, got[rejected[u]:])
				}
			}
			hangUp(a, b)
		}
	})
}

// envCount is the count in the environment variable name (1-500), or def.
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 && v <= 500 {
		return v
	}
	return def
}

// restartCall has a call b, then each of sides restart ICE in turn: the new
// ICE credentials are applied on both sides, the safety code, wiped from
// both states first, comes back only if the new stable state recomputes
// it, and chat goes on.
func restartCall(t *testing.T, a, b *tab, sides ...*tab) {
	t.Helper()
	dial(a, b)
	want := a.safetyCode(stepTimeout)
	if got := b.safetyCode(stepTimeout); want == "" || got != want {
		t.Fatalf("%v -> %v: safety codes %q and %q", a, b, want, got)
	}
	const ufrag = `(window.__pcs.at(-1).currentLocalDescription.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1]`
	for _, side := range sides {
		before := map[*tab]string{a: tabEval[string](a, ufrag), b: tabEval[string](b, ufrag)}
		for _, u := range []*tab{a, b} {
			tabEval[bool](u, `(state.call.safety = '', true)`)
		}
		// Through the page's own restart, as a network change would.
		tabEval[bool](side, `(window.__link.restart(null), true)`)
		for _, u := range []*tab{a, b} {
			u.wait("new ICE credentials", fmt.Sprintf(`(() => { const pc = window.__pcs.at(-1);
  return pc.signalingState === 'stable' && %s !== %q && ['connected', 'completed'].includes(pc.iceConnectionState); })()`, ufrag, before[u]))
			u.wait("safety code recomputed", fmt.Sprintf(`state.call.safety === %q`, want))
		}
		a.say("after " + side.browser + " restarted")
		b.got("after " + side.browser + " restarted")
	}
	hangUp(a, b)
}
