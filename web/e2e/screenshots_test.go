package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestScreenshots writes a PNG of each screen into $P2PCHAT_SCREENSHOTS
// (`make screenshots` sets it to docs/screenshots). Without the variable
// it does nothing.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("P2PCHAT_SCREENSHOTS")
	if dir == "" {
		t.Skip("set P2PCHAT_SCREENSHOTS=<dir> to write screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := browserTest(t)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*testDeadline)
	t.Cleanup(cancel)
	srv := startServer(t)
	desktop := peerOptions{width: 1000, height: 680, lang: "en-US"}
	alice := newPeer(t, ctx, srv.URL(""), "alice", desktop)
	bob := newPeer(t, ctx, srv.URL(""), "bob", desktop)
	mei := newPeer(t, ctx, srv.URL(""), "mei", peerOptions{width: 1000, height: 680, lang: "zh-TW"})
	dan := newPeer(t, ctx, srv.URL(""), "dan", desktop)
	for _, p := range []*peer{alice, bob, mei} {
		p.do("desktop size", chromedp.EmulateViewport(1000, 700))
	}
	dan.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))

	shot := func(p *peer, name string) {
		t.Helper()
		// Let transitions and the receipt round trip settle.
		p.do("settle", chromedp.Sleep(150*time.Millisecond))
		ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: screenshot %s: %v", p.name, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", filepath.Join(dir, name))
	}

	shot(alice, "login.png")
	alice.login("alice")
	bob.do("take alice", chromedp.WaitEnabled(chromedp.CSS("#join")), chromedp.SendKeys(chromedp.CSS("#name"), "alice"), chromedp.Click(chromedp.CSS("#join")))
	bob.wait("name error", `document.querySelector('#nameErr').textContent !== ''`)
	shot(bob, "name-error.png")
	bob.do("clear", chromedp.Evaluate[chromedp.Void](`document.querySelector('#name').value = ''`))
	bob.login("bob")
	mei.login("小美")
	dan.login("dan")
	alice.sees("小美")
	alice.sees("dan")
	shot(alice, "online.png")

	alice.call("bob")
	bob.callState("incoming", "alice")
	shot(bob, "incoming.png")
	bob.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	alice.callState("connected", "bob")
	alice.say("Hi Bob! Is this really going straight to you?")
	bob.got("Hi Bob! Is this really going straight to you?")
	bob.say("It is: the path says direct, and my safety code matches yours.")
	alice.got("It is: the path says direct, and my safety code matches yours.")
	alice.say("Great.\nShift+Enter gives a second line, Enter sends.")
	bob.got("Great.\nShift+Enter gives a second line, Enter sends.")
	alice.delivered("Great.\nShift+Enter gives a second line, Enter sends.")
	alice.wait("safety code", `state.call.safety !== '' && state.call.path !== ''`)
	shot(alice, "chat.png")

	mei.call("dan")
	dan.callState("incoming", "小美")
	dan.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	mei.callState("connected", "dan")
	mei.say("你好！聽得到嗎？")
	dan.got("你好！聽得到嗎？")
	dan.say("Yes! Reading you on my phone.")
	mei.got("Yes! Reading you on my phone.")
	mei.delivered("你好！聽得到嗎？")
	mei.wait("safety code", `state.call.safety !== '' && state.call.path !== ''`)
	dan.wait("safety code", `state.call.safety !== '' && state.call.path !== ''`)
	shot(mei, "zh-tw.png")
	shot(dan, "mobile.png")

	alice.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	bob.ended("end.hangup")
	shot(bob, "ended.png")

	// The server goes away: the status line counts down to the next
	// attempt and offers "Retry now"; the call goes on peer to peer.
	srv.stop()
	for _, sh := range []struct {
		p    *peer
		file string
	}{{alice, "reconnecting.png"}, {dan, "reconnecting-mobile.png"}, {mei, "reconnecting-zh-tw.png"}} {
		sh.p.wait("countdown", `state.retryAt - Date.now() > 1800`)
		shot(sh.p, sh.file)
	}
}
