package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// mediaDeadline bounds a media test: cameras and codecs are slow to start
// on a loaded 2-core machine, and these tests walk through many states.
const mediaDeadline = 3 * time.Minute

// mediaStep bounds a wait for media to start (a camera opening, the first
// frames) on a loaded machine.
const mediaStep = 45 * time.Second

// rings waits until p is called by name: after the caller's camera and
// microphone have opened, which is slow on a loaded machine.
func (p *peer) rings(name string) {
	p.t.Helper()
	p.waitFor("call incoming", fmt.Sprintf(`state.call.state === 'incoming' && state.call.peer === %q`, name), mediaStep)
}

// mediaPair is loggedInPair with the longer deadline, and options for b.
func mediaPair(t *testing.T, nameA, nameB string, ob ...peerOptions) (*testServer, *peer, *peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), nameA)
	b := newPeer(t, ctx, srv.URL(""), nameB, ob...)
	a.login(nameA)
	b.login(nameB)
	return srv, a, b
}

// Media tests: two browsers with Chromium's synthetic cameras (two),
// microphones (a beep) and screen. Their state is read from window.state:
// state.call.q is the page's own getStats() sample (quality.js), once a
// second: frames = framesDecoded of the inbound video, aIn = inbound audio
// packets, energy = totalAudioEnergy, w×h = inbound frame size.

// pick sets the "call as" select of the lobby.
func (p *peer) pick(kind string) {
	p.t.Helper()
	p.do("call as "+kind, chromedp.SetValue(chromedp.CSS("#kind"), kind))
}

// click clicks the element with id.
func (p *peer) click(id string) {
	p.t.Helper()
	p.do("click #"+id, chromedp.Click(chromedp.CSS("#"+id)))
}

// rising waits until the counter expr (a number) grows by more than min
// from its value now: media flows.
func (p *peer) rising(what, expr string, min float64) {
	p.t.Helper()
	p.waitFor(what+" sampled", `state.call.q && `+expr+` > 0`, mediaStep)
	v := eval[float64](p, expr)
	p.waitFor(what+" rising", fmt.Sprintf(`%s > %v`, expr, v+min), mediaStep)
}

// still waits until the counter expr stays the same across two fresh
// samples of the page (2 s apart at least): media stopped.
func (p *peer) still(what, expr string) {
	p.t.Helper()
	p.waitFor(what+" stopped", `(() => {
		const q = state.call.q; if (!q) return false;
		const w = window.__still || (window.__still = {});
		const k = `+fmt.Sprintf("%q", what)+`;
		if (!w[k] || w[k].at > q.at) w[k] = { at: q.at, v: `+expr+`, n: 0 };
		if (q.at === w[k].at) return false;
		if (`+expr+` !== w[k].v) { w[k] = { at: q.at, v: `+expr+`, n: 0 }; return false; }
		w[k].at = q.at; return ++w[k].n >= 2;
	})()`, 2*stepTimeout)
	p.do("reset", chromedp.Evaluate[chromedp.Void](`delete (window.__still || {})[`+fmt.Sprintf("%q", what)+`]`))
}

// TestVideoCall: a video call with every control. The callee sees the kind
// of call and hears the ring; video and audio flow both ways; mute silences
// the audio and camera off stops the frames, each shown to the other side;
// the screen replaces the camera and back; a second camera replaces the
// first; back to text keeps the chat.
func TestVideoCall(t *testing.T) {
	_, a, b := mediaPair(t, "alice", "bob")
	a.pick("video")
	a.call("bob")
	b.rings("alice")
	if got := b.text("#callTitle"); got != "alice is calling you (video)" {
		t.Errorf("callee's title %q", got)
	}
	b.wait("ringing", `state.ring === 'on'`)
	b.wait("accept without camera offered", `!document.querySelector('#acceptNoCam').hidden`)
	b.click("accept")
	b.wait("ring stopped", `state.ring === 'off'`)
	a.callState("connected", "bob")
	b.callState("connected", "alice")
	for _, p := range []*peer{a, b} {
		p.wait("remote video", `document.querySelector('#remote').videoWidth > 0 && !document.querySelector('#remote').hidden`)
		p.rising("frames decoded", `state.call.q.frames`, 10)
		p.rising("audio packets in", `state.call.q.aIn`, 20)
		p.wait("self-view mirrored", `!document.querySelector('#self').hidden && document.querySelector('#self').classList.contains('mirror')`)
	}
	a.wait("first frame timed", `state.call.videoMs > 0`)
	t.Logf("alice: Call click -> first remote frame %v ms", eval[float64](a, `state.call.videoMs`))

	// Mute with the keyboard shortcut: bob's inbound audio energy stops
	// growing and bob is told.
	b.rising("audio energy", `state.call.q.energy`, 0)
	a.do("focus page", chromedp.Focus(chromedp.CSS("#log")))
	a.do("press m", chromedp.KeyEvent("m"))
	a.wait("muted", `state.call.av.muted && document.querySelector('#mic').getAttribute('aria-pressed') === 'true'`)
	b.wait("peer muted shown", `document.querySelector('#peerAv').textContent === 'alice muted their microphone'`)
	b.still("audio energy", `state.call.q.energy`)
	b.rising("audio packets while muted", `state.call.q.aIn`, 10) // silence still flows
	a.do("press m", chromedp.KeyEvent("m"))
	b.wait("peer unmuted", `document.querySelector('#peerAv').hidden`)
	b.rising("audio energy again", `state.call.q.energy`, 0)

	// Camera off: frames stop, bob sees it, the call stays.
	a.click("cam")
	a.wait("camera off", `!state.call.av.cam && document.querySelector('#self').hidden`)
	b.wait("peer camera off shown", `document.querySelector('#peerAv').textContent === 'alice turned their camera off' && document.querySelector('#remote').hidden`)
	b.still("frames", `state.call.q.frames`)
	a.do("press v", chromedp.KeyEvent("v"))
	a.wait("camera on", `state.call.av.cam`)
	b.rising("frames again", `state.call.q.frames`, 10)

	// The screen replaces the camera, and back. Frame sizes adapt to the
	// machine's load, shapes do not: the synthetic camera is 4:3, the
	// screen as Chromium sends it is not.
	const camShape = `Math.abs(state.call.q.w / state.call.q.h - 4 / 3) < 0.05`
	b.wait("camera shape", camShape)
	a.click("share")
	a.wait("sharing", `state.call.av.screen && !document.querySelector('#self').classList.contains('mirror')`)
	b.wait("screen arrives", `state.call.q.w > 0 && !(`+camShape+`)`)
	b.wait("peer sharing shown", `document.querySelector('#peerAv').textContent === 'alice is sharing their screen'`)
	a.click("share")
	b.wait("camera back", camShape)

	// Another camera, same call: the third synthetic one, from the Devices
	// panel (the flip button cycles through the same list).
	setups := eval[float64](a, `state.setupTimes.length`)
	camID := eval[string](a, `state.call.av.camId`)
	a.wait("switch camera offered", `!document.querySelector('#flip').hidden`)
	a.click("devBtn")
	a.wait("cameras listed", `document.querySelector('#camSel').options.length === 3`)
	a.do("pick the third camera", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.querySelector('#camSel'); s.selectedIndex = 2; s.dispatchEvent(new Event('change')); })()`))
	a.wait("other camera", fmt.Sprintf(`state.call.av.camId !== '' && state.call.av.camId !== %q`, camID))
	b.rising("frames from the other camera", `state.call.q.frames`, 10)
	if n := eval[float64](a, `state.setupTimes.length`); n != setups || eval[string](a, `state.call.state`) != "connected" {
		t.Errorf("the device switch redid the call: %v setups, state %s", n, eval[string](a, `state.call.state`))
	}

	// Back to text: both sides stop their media; the chat goes on.
	a.say("still here?")
	b.got("still here?")
	safety := eval[string](a, `state.call.safety`)
	a.click("textOnly")
	for _, p := range []*peer{a, b} {
		p.wait("back to text", `!state.call.av.mic && !state.call.av.cam && document.querySelector('#stage').hidden`)
	}
	b.say("yes")
	a.got("yes")
	a.delivered("still here?")
	a.wait("same safety code", fmt.Sprintf(`state.call.safety === %q`, safety))
}

// TestUpgradeToVideo: a text chat turns into a video call with one click on
// each side and back to text, keeping its messages and its safety code.
func TestUpgradeToVideo(t *testing.T) {
	_, a, b := mediaPair(t, "ann", "ben")
	connect(t, a, b, "ann", "ben")
	a.say("text first")
	b.got("text first")
	a.wait("safety code", `state.call.safety !== ''`)
	safety := eval[string](a, `state.call.safety`)
	if got := a.text("#cam"); got != "Turn on camera (V)" {
		t.Errorf("camera button in a text chat: %q", got)
	}
	a.click("cam")
	b.wait("ann's video", `!document.querySelector('#remote').hidden && document.querySelector('#remote').videoWidth > 0`)
	b.rising("frames", `state.call.q.frames`, 10)
	b.click("mic")
	a.rising("ben's audio", `state.call.q.aIn`, 20)
	b.say("now with video")
	a.got("now with video")
	b.click("textOnly")
	for _, p := range []*peer{a, b} {
		p.wait("back to text", `!state.call.av.mic && !state.call.av.cam && document.querySelector('#stage').hidden && document.querySelector('#textOnly').hidden`)
		p.wait("safety code kept", fmt.Sprintf(`state.call.safety === %q`, safety))
	}
	a.got("now with video")
	b.got("text first")
	a.say("text again")
	b.got("text again")
}

// TestCameraBlocked: the callee's camera is denied (a real permission
// refusal): accepting a video call goes on as voice, says so in words, and
// video still flows the other way.
func TestCameraBlocked(t *testing.T) {
	_, a, b := mediaPair(t, "cara", "dora", peerOptions{width: 1000, height: 760, lang: "en-US", noCamera: true})
	a.pick("video")
	a.call("dora")
	b.rings("cara")
	b.click("accept")
	b.callState("connected", "cara")
	b.wait("blocked message", `state.call.av.err === 'denied.cam' && state.call.av.fb === 'voice' && !document.querySelector('#avMsg').hidden`)
	if got := b.text("#avMsg"); got != "The camera is blocked for this page. Allow it in the site settings (the icon left of the address), then turn it on. The call goes on as a voice call." {
		t.Errorf("message %q", got)
	}
	b.rising("cara's video", `state.call.q.frames`, 10)
	a.rising("dora's voice", `state.call.q.aIn`, 20)
	a.wait("no video from dora", `document.querySelector('#remote').hidden`)
	// Turning the camera on again says the same, and the call goes on.
	b.click("cam")
	b.wait("still blocked", `state.call.av.err === 'denied.cam'`)
	b.callState("connected", "cara")
}

// TestRingStops: the ringtone (Web Audio oscillators, state.ring) starts on
// every incoming call and stops on accept, decline, cancel and timeout.
func TestRingStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL("ring=8"), "eve")
	b := newPeer(t, ctx, srv.URL("ring=8"), "fay")
	a.login("eve")
	b.login("fay")
	ringing := func() {
		t.Helper()
		a.call("fay")
		b.rings("eve")
		b.wait("ringing", `state.ring === 'on'`)
		b.wait("title flashes", `document.title.startsWith('🔔 ')`)
	}
	stopped := func(why string) {
		t.Helper()
		b.wait("ring stopped on "+why, `state.ring === 'off' && !document.title.includes('🔔')`)
	}
	closeBoth := func() {
		t.Helper()
		for _, p := range []*peer{a, b} {
			p.wait("ended", `state.call.state === 'ended'`)
			p.click("close")
		}
	}

	ringing()
	b.click("decline")
	stopped("decline")
	closeBoth()

	ringing()
	a.click("cancel")
	stopped("cancel")
	closeBoth()

	ringing()
	b.ended("end.timeout.in")
	stopped("timeout")
	closeBoth()

	ringing()
	b.click("accept")
	stopped("accept")
	b.callState("connected", "eve")
}
