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
// other side sees them, screen sharing (instead of and beside the camera)
// and the quality figures.
func TestMediaScreenshots(t *testing.T) {
	dir := os.Getenv("P2PCHAT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set P2PCHAT_SCREENSHOTS=<dir> to write screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), 2*mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	desk := peerOptions{width: 1000, height: 760, lang: "en-US"}
	alice := newPeer(t, ctx, srv.URL(""), "alice", desk)
	bob := newPeer(t, ctx, srv.URL(""), "bob", desk)
	for _, p := range []*peer{alice, bob} {
		p.do("desktop size", chromedp.EmulateViewport(1000, 760))
	}
	alice.login("alice")
	bob.login("bob")
	shot := func(p *peer, name string) { mediaShot(t, p, dir, name) }

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
	bob.click("qual")
	alice.click("share")
	alice.waitFor("camera back", `!state.call.av.screen`, mediaStep)
	alice.click("share2")
	bob.waitFor("screen beside the camera", `(() => { const r = document.querySelector('#remote'), s = document.querySelector('#remote2');
		return !r.hidden && !s.hidden && r.videoWidth > 0 && s.videoWidth > 0; })()`, mediaStep)
	shot(bob, "video-screen-beside.png")
}

// TestMediaScreenshotsPhone: a video call ringing and in progress on a
// 360 px phone whose camera is blocked, and the caller's side in
// Traditional Chinese.
func TestMediaScreenshotsPhone(t *testing.T) {
	dir := os.Getenv("P2PCHAT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set P2PCHAT_SCREENSHOTS=<dir> to write screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), 2*mediaDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	mei := newPeer(t, ctx, srv.URL(""), "mei", peerOptions{width: 1000, height: 760, lang: "zh-TW"})
	dan := newPeer(t, ctx, srv.URL(""), "dan", peerOptions{width: 1000, height: 760, lang: "en-US", noCamera: true})
	mei.do("desktop size", chromedp.EmulateViewport(1000, 760))
	dan.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	mei.login("小美")
	dan.login("dan")
	shot := func(p *peer, name string) { mediaShot(t, p, dir, name) }
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

// mediaShot writes a PNG of p's page, scrolled to the top, to dir/name.
func mediaShot(t *testing.T, p *peer, dir, name string) {
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
