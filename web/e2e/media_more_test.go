package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// evalAsync evaluates a JS expression that yields a promise, awaiting it.
func evalAsync[T any](p *peer, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, js, err)
	}
	return v
}

// videoSender is the track of the connection's first video sender, as the
// deviceId of its camera (” for none).
const videoSender = `(() => { const s = window.__pcs.at(-1).getSenders().find((s) => s.track && s.track.kind === 'video'); return s ? s.track.getSettings().deviceId || '' : ''; })()`

// localSDP is the connection's local description: a renegotiation changes it.
const localSDP = `window.__pcs.at(-1).currentLocalDescription.sdp`

// inboundFrames maps each inbound video stream (by mid) to its decoded frames.
const inboundFrames = `window.__pcs.at(-1).getStats().then((s) => Object.fromEntries([...s.values()].filter((r) => r.type === 'inbound-rtp' && r.kind === 'video').map((r) => [r.mid, r.framesDecoded || 0])))`

// TestCameraFlipAndScreenBeside: Switch camera moves to the next camera
// with replaceTrack (the call is not renegotiated), and on a phone, where
// the camera tells its facing mode, asks for the other one first; the
// screen shared beside the camera is a second video stream (renegotiated),
// shown big on the other side with the camera as a tile, and stopping it
// leaves the camera.
func TestCameraFlipAndScreenBeside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), "gil")
	b := newPeer(t, ctx, srv.URL(""), "hal")
	for _, p := range []*peer{a, b} {
		eval[any](p, recordPCs)
	}
	a.login("gil")
	b.login("hal")
	a.pick("video")
	a.call("hal")
	b.rings("gil")
	b.click("accept")
	a.callState("connected", "hal")
	b.callState("connected", "gil")
	b.rising("frames decoded", `state.call.q.frames`, 10)

	// Flip: the synthetic cameras in order (the second is a depth camera
	// that sends no frames, so flip twice to see frames again).
	cams := evalAsync[[]string](a, `navigator.mediaDevices.enumerateDevices().then((l) => l.filter((d) => d.kind === 'videoinput').map((d) => d.deviceId))`)
	if len(cams) != 3 {
		t.Fatalf("cameras: %v", cams)
	}
	a.wait("switch camera offered", `!document.querySelector('#flip').hidden`)
	a.wait("stable", `window.__pcs.at(-1).signalingState === 'stable'`)
	sdp := eval[string](a, localSDP)
	at := 0
	for i, id := range cams {
		if id == eval[string](a, `state.call.av.camId`) {
			at = i
		}
	}
	for range 2 {
		at = (at + 1) % len(cams)
		a.click("flip")
		a.wait("next camera", fmt.Sprintf(`state.call.av.camId === %q && %s === %q`, cams[at], videoSender, cams[at]))
	}
	if cams[at] != cams[1] {
		b.rising("frames from the flipped camera", `state.call.q.frames`, 10)
	}
	if got := eval[string](a, localSDP); got != sdp {
		t.Errorf("the flip renegotiated the call")
	}

	// On a phone the camera reports facingMode: flip asks for the other
	// one. The synthetic cameras have none, so the request fails and flip
	// falls back to the next camera.
	eval[any](a, `(() => {
		window.__facing = [];
		const get = MediaStreamTrack.prototype.getSettings;
		MediaStreamTrack.prototype.getSettings = function () { const s = get.call(this); return this.kind === 'video' ? { ...s, facingMode: 'user' } : s; };
		const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
		navigator.mediaDevices.getUserMedia = (c) => { if (c.video && c.video.facingMode) window.__facing.push(c.video.facingMode.exact); return gum(c); };
	})()`)
	next := cams[(at+1)%len(cams)]
	a.click("flip")
	a.wait("facing mode asked, then the next camera", fmt.Sprintf(`window.__facing.join() === 'environment' && state.call.av.camId === %q && state.call.av.err === ''`, next))
	if got := eval[string](a, localSDP); got != sdp {
		t.Errorf("the flip renegotiated the call")
	}
	b.rising("frames after the flips", `state.call.q.frames`, 10)

	// The screen beside the camera: two inbound videos at hal, both
	// decoding; the screen big, the camera a tile.
	a.wait("share beside camera offered", `!document.querySelector('#share2').hidden`)
	a.click("share2")
	a.wait("sharing beside the camera", `state.call.av.screen && state.call.av.join && document.querySelector('#self').classList.contains('mirror')`)
	b.waitFor("screen and camera shown", `(() => { const r = document.querySelector('#remote'), s = document.querySelector('#remote2');
		return !r.hidden && !s.hidden && r.videoWidth > 0 && s.videoWidth > 0 && document.querySelector('#stage').classList.contains('both'); })()`, mediaStep)
	b.wait("peer sharing shown", `document.querySelector('#peerAv').textContent === 'gil is sharing their screen'`)
	if got := eval[string](a, localSDP); got == sdp {
		t.Errorf("the screen beside the camera did not renegotiate")
	}
	before := evalAsync[map[string]float64](b, inboundFrames)
	b.waitFor("both videos decoding", fmt.Sprintf(`%s.then((now) => { const was = %s;
		return Object.keys(now).filter((mid) => now[mid] > (was[mid] || 0) + 10).length >= 2; })`, inboundFrames, jsonString(before)), mediaStep)
	a.click("share")
	a.wait("sharing stopped", `!state.call.av.screen && state.call.av.cam`)
	b.waitFor("camera alone again", `(() => { const r = document.querySelector('#remote'); return !r.hidden && r.videoWidth > 0 && document.querySelector('#remote2').hidden && !document.querySelector('#stage').classList.contains('both'); })()`, mediaStep)
	b.wait("peer state cleared", `document.querySelector('#peerAv').hidden`)
	b.rising("camera frames", `state.call.q.frames`, 10)
	a.say("still one call")
	b.got("still one call")
}

// jsonString is v as a JS literal.
func jsonString(v map[string]float64) string {
	s := "{"
	for k, n := range v {
		s += fmt.Sprintf("%q: %v,", k, n)
	}
	return s + "}"
}

// TestRingNotification: with notifications allowed (granted over
// DevTools, Browser.setPermission), an incoming call on a hidden page shows a system
// notification, and clicking it focuses the page; a page hidden while it
// rings gets one too, closed when the ringing stops. The tab title
// flashes meanwhile. Headless pages are never really hidden: the test
// makes document.hidden true and records the Notification objects the
// page constructs (real ones, from the browser's own constructor).
func TestRingNotification(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL("ring=20"), "ida")
	b := newPeer(t, ctx, srv.URL("ring=20"), "jo")
	// Browser.setPermission: this cdproto has no Browser.grantPermissions,
	// which does the same for a list.
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "notifications"}, Setting: browser.PermissionSettingGranted, Origin: "http://" + srv.addr}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	a.login("ida")
	b.login("jo")
	b.wait("notifications granted", `Notification.permission === 'granted'`)
	eval[any](b, `(() => {
		window.__notes = [];
		window.__focused = 0;
		window.__hidden = true;
		Object.defineProperty(document, 'hidden', { configurable: true, get: () => window.__hidden });
		window.focus = () => { window.__focused++; };
		const N = window.Notification;
		window.Notification = class extends N {
			constructor(title, o) { super(title, o); this.closed = false; window.__notes.push(this); }
			close() { this.closed = true; super.close(); }
		};
	})()`)

	a.call("jo")
	b.rings("ida")
	b.wait("notification shown", `window.__notes.length === 1 && window.__notes[0].title === 'ida is calling you' && window.__notes[0].tag === 'p2pchat-call'`)
	b.wait("title with the bell", `document.title === '🔔 ida is calling you · p2pchat'`)
	b.wait("title without the bell", `document.title === 'ida is calling you · p2pchat'`)
	b.wait("title with the bell again", `document.title.startsWith('🔔 ')`)
	eval[any](b, `window.__notes[0].dispatchEvent(new Event('click'))`)
	b.wait("page focused, notification closed", `window.__focused === 1 && window.__notes[0].closed`)
	b.click("accept")
	b.wait("ring stopped", `state.ring === 'off' && document.title === 'p2pchat'`)
	b.callState("connected", "ida")
	a.click("hangup")
	b.ended("end.hangup")
	b.click("close")
	a.click("close")

	// Visible when the call comes, hidden while it rings.
	eval[any](b, `window.__hidden = false`)
	a.call("jo")
	b.rings("ida")
	b.wait("ringing", `state.ring === 'on'`)
	if n := eval[float64](b, `window.__notes.length`); n != 1 {
		t.Errorf("a visible page got a notification (%v in all)", n)
	}
	eval[any](b, `(window.__hidden = true, document.dispatchEvent(new Event('visibilitychange')))`)
	b.wait("notification once hidden", `window.__notes.length === 2 && !window.__notes[1].closed`)
	a.click("cancel")
	b.wait("notification closed with the ring", `state.ring === 'off' && window.__notes[1].closed`)
}

// TestQualityLevels: quality.js's good / fair / poor, from Jitsi's loss
// levels and ITU-T G.114's round trips, in the page's own module; and a
// sample whose loss falls climbs back at most 2 points a second.
func TestQualityLevels(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	p := newPeer(t, ctx, srv.URL(""), "quality")
	type row struct {
		loss, rtt float64
		score     float64
		level     string
	}
	for _, r := range []row{
		{0, 20, 100, "good"}, {0.02, 20, 100, "good"}, {0.021, 20, 70, "good"},
		{0.06, 20, 50, "good"}, {0.08, 20, 30, "good"}, {0.081, 20, 10, "fair"},
		{0.12, 20, 10, "fair"}, {0.121, 20, 0, "poor"}, {0.5, 20, 0, "poor"},
		{0, -1, 100, "good"}, {0, 300, 100, "good"}, {0, 301, 100, "fair"},
		{0.1, 500, 10, "fair"}, {0, 800, 100, "fair"}, {0, 801, 100, "poor"},
	} {
		got := evalAsync[[]any](p, fmt.Sprintf(`import('/quality.js').then((m) => { const s = m.score(%v); return [s, m.level(s, %v)]; })`, r.loss, r.rtt))
		if got[0] != r.score || got[1] != r.level {
			t.Errorf("loss %v, round trip %v ms: score %v, %v; want %v, %v", r.loss, r.rtt, got[0], got[1], r.score, r.level)
		}
	}
	// Three samples of a fake connection: 20 of 120 packets lost in the
	// window (poor), then 20 of 1220: 1.6 % scores 100, but the score
	// climbs from 0 by 2 a second, and the samples are milliseconds apart
	// (under 25 s even on a loaded machine, so below 50).
	got := evalAsync[[]any](p, `import('/quality.js').then(async (m) => {
		const pc = (lost, got) => ({ getStats: async () => new Map([['a', { type: 'inbound-rtp', kind: 'audio', packetsLost: lost, packetsReceived: got }]]) });
		const s1 = await m.sample(pc(0, 100), null);
		const s2 = await m.sample(pc(20, 200), s1);
		const s3 = await m.sample(pc(20, 1300), s2);
		return [s1.level, s2.level, s2.score, s3.level, Math.round(s3.loss * 1000), s3.score < 50];
	})`)
	if want := []any{"good", "poor", 0.0, "poor", 16.0, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("samples: %v, want %v", got, want)
	}
}
