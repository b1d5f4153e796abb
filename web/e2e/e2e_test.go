package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestCallChatHangup is the main path: log in, see each other, call,
// accept, chat both ways with receipts, check the safety code and path,
// hang up, and the other side learns why.
func TestCallChatHangup(t *testing.T) {
	_, a, b := loggedInPair(t, "alice", "bob")
	a.sees("bob")
	b.sees("alice")
	connect(t, a, b, "alice", "bob")

	chatBothWays(a, b, "hello from alice", "hi alice")

	a.wait("safety code", `/^\d{4} \d{4} \d{4} \d{4}$/.test(state.call.safety)`)
	b.wait("safety code", `/^\d{4} \d{4} \d{4} \d{4}$/.test(state.call.safety)`)
	ca, cb := a.text("#safety"), b.text("#safety")
	if ca != cb {
		t.Errorf("safety codes differ: alice %q, bob %q", ca, cb)
	}
	// The plain-JS SHA-256 (for pages served over http from a LAN address,
	// where crypto.subtle is missing) must agree with WebCrypto.
	same := evalAwait[bool](a, `import('/safety.js').then(async (m) => {
		for (const n of [0, 55, 56, 64, 200, 1000]) {
			const d = new Uint8Array(n).map((_, i) => i * 7 + 3);
			if ((await m.sha256(d)).join() !== m.sha256js(d).join()) return false;
		}
		return true;
	})`)
	if !same {
		t.Error("sha256js disagrees with crypto.subtle")
	}
	a.wait("path", `state.call.path !== ''`)
	b.wait("path", `state.call.path !== ''`)
	if pa, pb := a.text("#path"), b.text("#path"); pa != "direct" || pb != "direct" {
		t.Errorf("path: alice %q, bob %q, want direct", pa, pb)
	}

	// Everything the page loaded came from its own origin.
	for _, p := range []*peer{a, b} {
		if other := eval[[]string](p, `performance.getEntriesByType('resource').map(e => e.name).filter(u => /^(https?|wss?):/.test(u) && !u.startsWith(location.origin))`); len(other) != 0 {
			t.Errorf("%s: requests to other origins: %v", p.name, other)
		}
		if n := eval[int](p, `performance.getEntriesByType('resource').length`); n < 8 {
			t.Errorf("%s: only %d resources seen; is the check blind?", p.name, n)
		}
	}

	a.do("hang up", chromedp.Click(chromedp.CSS("#hangup")))
	a.ended("end.hangup.local")
	b.ended("end.hangup")
	if got := b.text("#notice"); got != "alice hung up." {
		t.Errorf("bob's notice = %q", got)
	}
}

// TestDecline: the callee declines; the caller is told.
func TestDecline(t *testing.T) {
	_, a, b := loggedInPair(t, "ann", "ben")
	a.call("ben")
	b.callState("incoming", "ann")
	if got := b.text("#callTitle"); got != "ann is calling you" {
		t.Errorf("ben's call title = %q", got)
	}
	b.do("decline", chromedp.Click(chromedp.CSS("#decline")))
	b.ended("end.declined.local")
	a.ended("end.declined")
	if got := a.text("#notice"); got != "ben declined the call." {
		t.Errorf("ann's notice = %q", got)
	}
	// Both can call again after closing the notice.
	a.do("close", chromedp.Click(chromedp.CSS("#close")))
	a.wait("idle", `state.call.state === 'idle'`)
	a.call("ben")
	b.callState("incoming", "ann")
}

// TestBusy: a third user calling someone in a call is told "busy", and the
// call in progress carries on.
func TestBusy(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), "amy")
	b := newPeer(t, ctx, srv.URL(""), "bea")
	c := newPeer(t, ctx, srv.URL(""), "cat")
	a.login("amy")
	b.login("bea")
	// amy's row for bea stays the same element, keyboard focus included,
	// when cat joins and the list changes under it.
	a.sees("bea")
	eval[bool](a, `(document.querySelector('#users button.user[data-name="bea"]').focus(), true)`)
	c.login("cat")
	a.sees("cat")
	if !eval[bool](a, `document.activeElement === document.querySelector('#users button.user[data-name="bea"]')`) {
		t.Error("amy's focus left bea's row when cat joined")
	}
	connect(t, a, b, "amy", "bea")
	c.call("bea")
	c.ended("end.busy")
	if got := c.text("#notice"); got != "bea is in another call. Try again later." {
		t.Errorf("cat's notice = %q", got)
	}
	b.callState("connected", "amy")
	a.say("still here?")
	b.got("still here?")
	a.delivered("still here?")
}

// TestDuplicateName: a taken name is refused in place, and another works.
func TestDuplicateName(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), "first")
	b := newPeer(t, ctx, srv.URL(""), "second")
	a.login("sam")
	b.do("take sam", chromedp.WaitEnabled(chromedp.CSS("#join")), chromedp.SendKeys(chromedp.CSS("#name"), "sam"), chromedp.Click(chromedp.CSS("#join")))
	b.wait("error shown", `document.querySelector('#nameErr').textContent !== ''`)
	if got := b.text("#nameErr"); got != "The name “sam” is already in use. Please choose another." {
		t.Errorf("error = %q", got)
	}
	if eval[bool](b, `document.querySelector('#login').hidden || state.joined`) {
		t.Error("login form hidden after a refused name")
	}
	// An invisible character: the server's invalid-name, shown in words.
	b.do("invisible", chromedp.Evaluate[chromedp.Void](`document.querySelector('#name').value = 'sa\u200bm'`), chromedp.Click(chromedp.CSS("#join")))
	b.wait("invalid name shown", `document.querySelector('#nameErr').textContent.startsWith('That name cannot be used')`)
	b.do("clear", chromedp.Evaluate[chromedp.Void](`document.querySelector('#name').value = ''`))
	b.login("sam2")
	b.sees("sam")
	// Presence follows people leaving, too: navigating away is leaving,
	// even if the browser keeps the page in its back/forward cache.
	a.sees("sam2")
	b.do("leave", chromedp.Navigate("about:blank"))
	a.wait("sam2 gone", `!state.users.includes('sam2') && !document.querySelector('#users button.user')`)
	// Coming back (from the cache) logs in again by itself.
	// Deferred, so that the evaluation returns before the page goes.
	eval[bool](b, `(setTimeout(() => history.back(), 0), true)`)
	b.settle("back and logged in again", `location.pathname === '/' && window.state && state.loggedIn && state.logins === 2`)
	a.sees("sam2")
}

// TestGlare: both click Call on each other at the same moment; the two
// offers cross and perfect negotiation leaves exactly one working call.
func TestGlare(t *testing.T) {
	_, a, b := loggedInPair(t, "gail", "gus")
	a.sees("gus")
	b.sees("gail")
	// Both pages click at the same wall-clock time (same machine clock),
	// so each sends its offer before the other's arrives.
	at := time.Now().Add(400 * time.Millisecond).UnixMilli()
	click := func(p *peer, other string) {
		eval[bool](p, fmt.Sprintf(`(() => { const b = document.querySelector('#users button.user[data-name=%q]');
			setTimeout(() => b.click(), %d - Date.now()); return true })()`, other, at))
	}
	click(a, "gus")
	click(b, "gail")
	a.callState("connected", "gus")
	b.callState("connected", "gail")
	if !eval[bool](a, `state.log.some(l => l.startsWith('glare'))`) && !eval[bool](b, `state.log.some(l => l.startsWith('glare'))`) {
		t.Error("no side saw the offers cross; the test did not produce glare")
	}
	a.say("one call")
	b.got("one call")
	b.say("indeed")
	a.got("indeed")
	a.delivered("one call")
	b.delivered("indeed")
}

// TestXSS: markup in a name and in a message is shown as text.
func TestXSS(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	const evil = `<img src=x onerror=alert(1)>`
	const evilMsg = `<b>bold</b><img src=x onerror=alert(2)><script>alert(3)</script>`
	a := newPeer(t, ctx, srv.URL(""), "evil")
	b := newPeer(t, ctx, srv.URL(""), "victim")
	a.login(evil)
	b.login("vic")
	b.sees(evil)
	if got := eval[string](b, `document.querySelector('#users button.user').textContent`); !strings.Contains(got, evil) {
		t.Errorf("list shows %q, want the name as text", got)
	}
	connect(t, a, b, evil, "vic")
	if got := b.text("#callTitle"); got != "In a call with "+evil {
		t.Errorf("call title = %q", got)
	}
	a.say(evilMsg)
	b.got(evilMsg)
	for _, p := range []*peer{a, b} {
		if n := eval[int](p, `document.querySelectorAll('img, b, main script').length`); n != 0 {
			t.Errorf("%s: %d elements injected", p.name, n)
		}
	}
}

// TestUnansweredCall: nobody answers; both sides give up (ring shortened to
// 2 s by the test-only ?ring parameter).
func TestUnansweredCall(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL("ring=2"), "ursula")
	b := newPeer(t, ctx, srv.URL("ring=2"), "uma")
	a.login("ursula")
	b.login("uma")
	a.call("uma")
	b.callState("incoming", "ursula")
	a.ended("end.timeout")
	b.ended("end.timeout.in")
	if got := a.text("#notice"); got != "No answer from uma. The call was cancelled." {
		t.Errorf("caller notice = %q", got)
	}
	if got := b.text("#notice"); got != "Missed call from ursula." {
		t.Errorf("callee notice = %q", got)
	}
}

// TestServerRestart: the server goes away mid-chat. The chat keeps flowing
// peer to peer, and both pages log in again by themselves within 5 s of the
// server coming back.
func TestServerRestart(t *testing.T) {
	srv, a, b := loggedInPair(t, "rita", "rob")
	connect(t, a, b, "rita", "rob")
	a.say("before")
	b.got("before")

	srv.stop()
	a.wait("reconnecting", `state.sig === 'reconnecting'`)
	b.wait("reconnecting", `state.sig === 'reconnecting'`)
	chatBothWays(a, b, "while the server is down", "still chatting")

	srv.start()
	back := time.Now()
	a.waitFor("re-login", `state.logins === 2 && state.sig === 'connected'`, 5*time.Second)
	b.waitFor("re-login", `state.logins === 2 && state.sig === 'connected'`, 5*time.Second)
	t.Logf("both logged in again %v after the server came back", time.Since(back).Round(time.Millisecond))
	a.callState("connected", "rob")
	b.callState("connected", "rita")
	a.say("after")
	b.got("after")
	a.sees("rob")
	b.sees("rita")
}
