package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestCallChatHangup is the main path: log in, see each other, call,
// accept, chat both ways with receipts, check the safety code and path,
// hang up, and the other side learns why.
func TestCallChatHangup(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), "alice")
	b := newPeer(t, ctx, srv.URL(""), "bob")
	a.login("alice")
	b.login("bob")
	a.sees("bob")
	b.sees("alice")
	connect(t, a, b, "alice", "bob")

	a.say("hello from alice")
	b.got("hello from alice")
	a.delivered("hello from alice")
	b.say("hi alice")
	a.got("hi alice")
	b.delivered("hi alice")

	a.wait("safety code", `/^\d{4} \d{4} \d{4} \d{4}$/.test(state.call.safety)`)
	b.wait("safety code", `/^\d{4} \d{4} \d{4} \d{4}$/.test(state.call.safety)`)
	ca, cb := a.text("#safety"), b.text("#safety")
	if ca != cb {
		t.Errorf("safety codes differ: alice %q, bob %q", ca, cb)
	}
	a.wait("path", `state.call.path !== ''`)
	b.wait("path", `state.call.path !== ''`)
	if pa, pb := a.text("#path"), b.text("#path"); pa != "direct" || pb != "direct" {
		t.Errorf("path: alice %q, bob %q, want direct", pa, pb)
	}

	a.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	a.ended("end.hangup.local")
	b.ended("end.hangup")
	if got := b.text("#notice"); got != "alice hung up." {
		t.Errorf("bob's notice = %q", got)
	}
}
