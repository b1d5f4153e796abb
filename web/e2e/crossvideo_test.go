package e2e

import (
	"fmt"
	"testing"
	"time"
)

// crossMediaStep bounds a wait for cameras and codecs across browsers: a
// Firefox and a Chromium both encoding and decoding on a loaded 2-core
// machine.
const crossMediaStep = 45 * time.Second

// waitMedia is tab.wait with the longer bound for media.
func (u *tab) waitMedia(what, cond string) {
	u.t.Helper()
	if !u.within(crossMediaStep, cond) {
		u.t.Fatalf("%s: waiting for %s (%s): timed out\nstate: %s", u, what, cond, u.snapshot())
	}
}

// risingIn waits until the number expr grows by more than min from its
// value now.
func (u *tab) risingIn(what, expr string, min float64) {
	u.t.Helper()
	u.waitMedia(what+" sampled", `state.call.q && `+expr+` > 0`)
	v := tabEval[float64](u, expr)
	u.waitMedia(what+" rising", fmt.Sprintf(`%s > %v`, expr, v+min))
}

// crossVideo: for each pair, the caller makes a video call and the callee
// accepts with its camera; in both browsers the remote <video> has a
// picture (videoWidth > 0), its decoded frames (framesDecoded of the
// inbound video, state.call.q.frames) keep rising, and audio packets
// arrive. Firefox's synthetic camera and microphone come from its profile
// (media.navigator.streams.fake), Chromium's from its flags.
func crossVideo(t *testing.T, pairs [][2]*tab) {
	seen := map[*tab]bool{}
	for _, p := range pairs {
		for _, u := range p {
			if !seen[u] {
				seen[u] = true
				use(t, u)
			}
		}
	}
	for _, p := range pairs {
		a, b := p[0], p[1]
		tabEval[bool](a, `(document.querySelector('#kind').value = 'video', true)`)
		a.call(b)
		b.waitMedia("video call from "+a.name, fmt.Sprintf(`state.call.state === 'incoming' && state.call.peer === %q && state.call.kind === 'video'`, a.name))
		if got, want := b.text("#callTitle"), a.name+" is calling you (video)"; got != want {
			t.Errorf("%v: call title %q, want %q", b, got, want)
		}
		b.click("#accept")
		for _, q := range [][2]*tab{{a, b}, {b, a}} {
			q[0].waitMedia("video call connected with "+q[1].name, fmt.Sprintf(`state.call.state === 'connected' && state.call.peer === %q`, q[1].name))
		}
		for _, u := range []*tab{a, b} {
			u.waitMedia("remote picture", `(() => { const v = document.querySelector('#remote'); return !v.hidden && v.videoWidth > 0 && v.videoHeight > 0; })()`)
			u.risingIn("frames decoded", `state.call.q.frames`, 10)
			u.risingIn("audio packets in", `state.call.q.aIn`, 20)
			t.Logf("%v: remote video %s from %s", u, tabEval[string](u, `(() => { const v = document.querySelector('#remote'); return v.videoWidth + 'x' + v.videoHeight; })()`), map[*tab]*tab{a: b, b: a}[u].browser)
		}
		a.say("video from " + a.browser)
		b.got("video from " + a.browser)
		tabEval[bool](a, `(document.querySelector('#kind').value = 'text', true)`)
		hangUp(a, b)
	}
}
