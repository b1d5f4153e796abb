package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageDriver is the one thing a browser must offer the cross-browser tests: run
// a JavaScript expression in the app's page (awaiting a promise) and return
// the JSON text of its value. Everything else, clicks and typing included,
// is done by the page's own DOM API, so the same test drives Chromium (CDP,
// chromedp) and Firefox (WebDriver BiDi) alike.
type pageDriver interface {
	evalJSON(js string, timeout time.Duration) (string, error)
}

// tab is one user of the app in one browser, driven through a page.
type tab struct {
	t       *testing.T
	name    string // labels failures; also the user name the tests log in with
	browser string // "chromium" or "firefox"
	page    pageDriver
}

// chromiumPage adapts a chromedp peer.
type chromiumPage struct{ p *peer }

func (c chromiumPage) evalJSON(js string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(c.p.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](jsonOf(js), chromedp.EvalAwaitPromise))
}

// newChromiumTab starts a Chromium (as newPeer does) and wraps it as a tab.
func newChromiumTab(t *testing.T, ctx context.Context, url, name string) *tab {
	t.Helper()
	p := newPeer(t, ctx, url, name)
	return &tab{t: t, name: name, browser: "chromium", page: chromiumPage{p}}
}

// use makes tabs report to t, a subtest, until it ends: a helper's Fatal
// must stop the goroutine of the test that is running.
func use(t *testing.T, tabs ...*tab) {
	for _, u := range tabs {
		prev := u.t
		u.t = t
		t.Cleanup(func() { u.t = prev })
	}
}

func (u *tab) String() string { return u.name + " (" + u.browser + ")" }

// run evaluates js, failing the test on error, and returns its JSON.
func (u *tab) run(js string, d time.Duration) string {
	u.t.Helper()
	out, err := u.page.evalJSON(js, d)
	if err != nil {
		u.t.Fatalf("%s: eval %s: %v", u, js, err)
	}
	return out
}

// tabEval evaluates a JavaScript expression in u's page.
func tabEval[T any](u *tab, js string) T {
	u.t.Helper()
	var v T
	out := u.run(js, stepTimeout)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		u.t.Fatalf("%s: eval %s: result %s: %v", u, js, out, err)
	}
	return v
}

// wait waits until the JavaScript condition is truthy. The page itself
// polls (every 20 ms), so a wait is one round trip whatever the browser.
func (u *tab) wait(what, cond string) {
	u.t.Helper()
	if !u.within(stepTimeout, cond) {
		u.t.Fatalf("%s: waiting for %s (%s): timed out\nstate: %s", u, what, cond, u.snapshot())
	}
}

// snapshot is the page's state for a failure message.
func (u *tab) snapshot() string {
	out, err := u.page.evalJSON(`({sig: state.sig, name: state.name, call: state.call, users: state.users, log: state.log.slice(-20)})`, stepTimeout)
	if err != nil {
		return err.Error()
	}
	return out
}

// within reports whether cond becomes truthy within d.
func (u *tab) within(d time.Duration, cond string) bool {
	u.t.Helper()
	js := fmt.Sprintf(`new Promise((resolve) => {
  const end = Date.now() + %d;
  const check = () => {
    let ok = false;
    try { ok = !!(%s); } catch { /* not yet */ }
    if (ok || Date.now() > end) resolve(ok); else setTimeout(check, 20);
  };
  check();
})`, d.Milliseconds(), cond)
	return u.run(js, d+5*time.Second) == "true"
}

// click clicks the element matching the CSS selector sel.
func (u *tab) click(sel string) {
	u.t.Helper()
	if !tabEval[bool](u, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e || e.disabled || e.closest('[hidden]')) return false; e.click(); return true })()`, sel)) {
		u.t.Fatalf("%s: nothing to click at %s\nstate: %s", u, sel, u.snapshot())
	}
}

// login types the tab's name into the form and joins.
func (u *tab) login() {
	u.t.Helper()
	// #join is enabled once main.js runs; before, a submit would reload.
	u.wait("client ready", `!document.querySelector('#join').disabled`)
	tabEval[bool](u, fmt.Sprintf(`(document.querySelector('#name').value = %q, true)`, u.name))
	u.click("#join")
	u.wait("login", fmt.Sprintf(`state.loggedIn && state.name === %q`, u.name))
}

// sees waits until other is in the online list.
func (u *tab) sees(other *tab) {
	u.t.Helper()
	u.wait("online: "+other.name, fmt.Sprintf(`!!document.querySelector('#users button.user[data-name=%q]')`, other.name))
}

// call clicks other in the online list.
func (u *tab) call(other *tab) {
	u.t.Helper()
	u.sees(other)
	u.click(fmt.Sprintf(`#users button.user[data-name=%q]`, other.name))
	u.wait("calling", `['outgoing', 'connecting', 'connected'].includes(state.call.state)`)
}

// callState waits until the call with other is in state s.
func (u *tab) callState(s string, other *tab) {
	u.t.Helper()
	u.wait("call "+s+" with "+other.name, fmt.Sprintf(`state.call.state === %q && state.call.peer === %q`, s, other.name))
}

// ended waits until the call ended with the i18n reason key.
func (u *tab) ended(reason string) {
	u.t.Helper()
	u.wait("ended "+reason, fmt.Sprintf(`state.call.state === 'ended' && state.call.reason === %q`, reason))
}

// say sends text from the composer.
func (u *tab) say(text string) {
	u.t.Helper()
	u.wait("send enabled", `!document.querySelector('#send').disabled`)
	tabEval[bool](u, fmt.Sprintf(`(document.querySelector('#msg').value = %q, document.querySelector('#composer').requestSubmit(), true)`, text))
}

// got waits until a message with text from the peer is shown.
func (u *tab) got(text string) {
	u.t.Helper()
	u.wait("message "+text, fmt.Sprintf(`[...document.querySelectorAll('#log li.theirs .text')].some(e => e.textContent === %q)`, text))
}

// delivered waits until my message with text shows a receipt.
func (u *tab) delivered(text string) {
	u.t.Helper()
	defer func() {
		if u.t.Failed() {
			u.t.Logf("%s: #log: %s", u, u.run(`[...document.querySelectorAll('#log li')].map(li => li.className + ': ' + li.textContent)`, stepTimeout))
		}
	}()
	u.wait("receipt "+text, fmt.Sprintf(`[...document.querySelectorAll('#log li.mine')].some(li => li.querySelector('.text')?.textContent === %q && li.querySelector('.receipt.done'))`, text))
}

// text returns the textContent of the element matching sel.
func (u *tab) text(sel string) string {
	u.t.Helper()
	return tabEval[string](u, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// logged returns the lines of the page's state.log that start with prefix.
func (u *tab) logged(prefix string) []string {
	u.t.Helper()
	return tabEval[[]string](u, fmt.Sprintf(`state.log.filter(l => l.startsWith(%q))`, prefix))
}

// dial has caller call callee and callee accept; both wait for the open
// chat channel.
func dial(caller, callee *tab) {
	caller.t.Helper()
	caller.call(callee)
	callee.callState("incoming", caller)
	callee.click("#accept")
	for _, p := range [][2]*tab{{caller, callee}, {callee, caller}} {
		p[0].callState("connected", p[1])
		p[0].wait("channel open", `state.call.open`)
	}
}

// hangUp has u hang up; both then close the notice, back to idle.
func hangUp(u, other *tab) {
	u.t.Helper()
	u.click("#hangup")
	u.ended("end.hangup.local")
	other.ended("end.hangup")
	idle(u, other)
}

// idle brings each tab back to an idle call, ending what is left: a
// failed step must not spoil the next case sharing the browsers.
func idle(tabs ...*tab) {
	for _, u := range tabs {
		u.t.Helper()
		tabEval[bool](u, `(() => {
  const s = state.call.state;
  const b = {incoming: '#decline', outgoing: '#cancel', connecting: '#hangup', connected: '#hangup'}[s];
  if (b) document.querySelector(b).click();
  return true;
})()`)
	}
	for _, u := range tabs {
		u.wait("call over", `['ended', 'idle'].includes(state.call.state)`)
		tabEval[bool](u, `(state.call.state === 'ended' && document.querySelector('#close').click(), true)`)
		u.wait("idle", `state.call.state === 'idle'`)
	}
}

// safetyCode waits (up to d) for a complete safety code on the page and
// returns what it shows, "" if none came.
func (u *tab) safetyCode(d time.Duration) string {
	u.t.Helper()
	if !u.within(d, `/^\d{4} \d{4} \d{4} \d{4}$/.test(document.querySelector('#safety').textContent)`) {
		return ""
	}
	return strings.TrimSpace(u.text("#safety"))
}
