package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMediaScreenshots writes PNGs of the voice and video states into
// $P2PCHAT_SCREENSHOTS (`make screenshots`): an incoming video call, a
// video call with its controls and quality, muted and camera off as the
// other side sees them, screen sharing, the quality figures, a blocked
// camera on a 360 px phone, and a call in Traditional Chinese.
func TestMediaScreenshots(t *testing.T) {
	dir := os.Getenv("P2PCHAT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set P2PCHAT_SCREENSHOTS=<dir> to write screenshots")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), 2*mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	desk := peerOptions{width: 1000, height: 760, lang: "en-US"}
	alice := newPeer(t, ctx, srv.URL(""), "alice", desk)
	bob := newPeer(t, ctx, srv.URL(""), "bob", desk)
	mei := newPeer(t, ctx, srv.URL(""), "mei", peerOptions{width: 1000, height: 760, lang: "zh-TW"})
	dan := newPeer(t, ctx, srv.URL(""), "dan", peerOptions{width: 1000, height: 760, lang: "en-US", noCamera: true})
	for _, p := range []*peer{alice, bob, mei} {
		p.do("desktop size", chromedp.EmulateViewport(1000, 760))
	}
	dan.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	shot := func(p *peer, name string) {
		t.Helper()
		p.do("settle", chromedp.Sleep(300*time.Millisecond), chromedp.Evaluate[chromedp.Void](`scrollTo(0, 0)`))
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: screenshot %s: %v", p.name, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", name)
	}
	alice.login("alice")
	bob.login("bob")
	mei.login("小美")
	dan.login("dan")

	alice.pick("video")
	alice.call("bob")
	bob.rings("alice")
	shot(bob, "video-incoming.png")
	bob.click("accept")
	for _, p := range []*peer{alice, bob} {
		p.waitFor("video", `state.call.q && state.call.q.frames > 20 && !document.querySelector('#remote').hidden`, mediaStep)
		p.waitFor("safety", `state.call.safety !== '' && state.call.path !== ''`, mediaStep)
	}
	shot(alice, "video-call.png")
	alice.click("mic")
	alice.click("cam")
	bob.waitFor("muted, camera off", `document.querySelector('#peerAv').textContent.includes('camera off')`, mediaStep)
	shot(bob, "video-peer-muted.png")
	shot(alice, "video-muted.png")
	alice.click("mic")
	alice.click("cam")
	alice.waitFor("camera on", `state.call.av.cam`, mediaStep)
	alice.click("share")
	bob.waitFor("screen", `document.querySelector('#peerAv').textContent.includes('screen')`, mediaStep)
	bob.waitFor("screen frames", `!document.querySelector('#remote').hidden`, mediaStep)
	shot(bob, "video-screen.png")
	bob.click("qual")
	bob.waitFor("figures", `!document.querySelector('#qualInfo').hidden && document.querySelector('#qualInfo').textContent !== ''`, mediaStep)
	shot(bob, "video-quality.png")
	// One call at a time: four browsers with cameras load a small machine.
	alice.click("hangup")
	bob.waitFor("ended", `state.call.state === 'ended'`, mediaStep)

	mei.pick("video")
	mei.call("dan")
	dan.rings("小美")
	shot(dan, "video-incoming-mobile.png")
	dan.click("accept")
	dan.waitFor("blocked", `state.call.av.err === 'denied.cam' && state.call.q && state.call.q.frames > 20`, mediaStep)
	shot(dan, "video-blocked-mobile.png")
	mei.waitFor("audio from dan", `state.call.q && state.call.q.aIn > 50 && state.call.safety !== ''`, mediaStep)
	shot(mei, "video-zh-tw.png")
}
