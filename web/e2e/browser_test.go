package e2e

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// testDeadline bounds one whole test, browsers included.
const testDeadline = 60 * time.Second

// stepTimeout bounds one wait for the page to reach a state.
const stepTimeout = 15 * time.Second

// maxParallel is how many browser tests run at once: each starts two or
// three Chromium processes, and the machines running CI have 2 cores.
const maxParallel = 2

var slots = make(chan struct{}, maxParallel)

// browserPath finds Chromium or Chrome, or skips (fails in CI) the test.
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "\n*** BROWSER TESTS SKIPPED: no Chromium or Chrome found ($CHROME_BIN, chromium, chromium-browser, google-chrome).\n" +
		"*** Install it, e.g. `apt-get install -y --no-install-recommends chromium`, or set CHROME_BIN.\n"
	if os.Getenv("P2PCHAT_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "*** P2PCHAT_REQUIRE_BROWSER=1: a missing browser is a failure.")
	}
	t.Skip(msg)
	return ""
}

// browserTest marks t parallel, waits for a slot and returns the context
// every browser of the test derives from, with the overall deadline.
func browserTest(t *testing.T) context.Context {
	t.Helper()
	return browserTestFor(t, testDeadline)
}

// browserTestFor is browserTest with a longer deadline, for a test that
// makes many calls with the same browsers.
func browserTestFor(t *testing.T, deadline time.Duration) context.Context {
	t.Helper()
	bin := browserPath(t)
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return context.WithValue(ctx, browserKey{}, bin)
}

type browserKey struct{}

// peer is one user: one Chromium process with one tab on the app.
type peer struct {
	t    *testing.T
	name string
	ctx  context.Context // the tab

	mu      sync.Mutex
	console []string
	bad     []string // exceptions and CSP violations
}

// peerOptions adjusts a peer's browser.
type peerOptions struct {
	width, height int
	lang          string // navigator.language, e.g. "zh-TW"
	// noCamera: the camera permission is denied (the microphone granted)
	// through DevTools, instead of the fake UI that grants everything.
	noCamera bool
	// hostRules maps test host names (Chromium's --host-resolver-rules);
	// certErrors accepts any certificate (the self-signed listener).
	hostRules  string
	certErrors bool
}

// newPeer starts a browser and opens url in it. name labels its logs; the
// user name is typed later by login.
func newPeer(t *testing.T, ctx context.Context, url, name string, o ...peerOptions) *peer {
	t.Helper()
	opt := peerOptions{width: 1000, height: 760, lang: "en-US"}
	if len(o) > 0 {
		opt = o[0]
	}
	bin, _ := ctx.Value(browserKey{}).(string)
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.WindowSize(opt.width, opt.height),
		// Without a media permission Chromium gathers host candidates only
		// on the default-route interface, which these machines may lack;
		// with it (fake UI grants it) loopback candidates are offered.
		chromedp.Flag("use-fake-ui-for-media-stream", !opt.noCamera),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		// Three synthetic cameras (the second is a Y16 depth camera, whose
		// frames no encoder takes: tests switch to the third, MJPEG) and
		// microphones, and a
		// synthetic screen for getDisplayMedia.
		chromedp.Flag("use-fake-device-for-media-stream", "device-count=3"),
		chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"),
		chromedp.Flag("ignore-certificate-errors", opt.certErrors),
		// Repeats chromedp's defaults, since this flag replaces them; raw IPs
		// instead of mDNS names keep candidates resolvable in the sandbox.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
	)
	if opt.hostRules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", opt.hostRules))
	}
	// chromedp makes (and removes) a fresh user-data-dir per allocator.
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, flags...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	p := &peer{t: t, name: name, ctx: tab}
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("%s: start browser: %v", name, err)
	}
	msgs := chromedp.Console(tab)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, time.Now().Format("15:04:05.000 ")+m.String())
			// Any uncaught exception, or anything the CSP blocked, is a bug
			// even when the test's own checks pass.
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				p.bad = append(p.bad, m.String())
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, b := range p.bad {
			t.Errorf("%s: page error: %s", name, b)
		}
		if t.Failed() {
			t.Logf("--- console of %s:\n%s", name, strings.Join(p.console, "\n"))
		}
	})
	// Headless Chromium ignores --lang; the DevTools override sets
	// navigator.language (and Accept-Language) instead.
	setLang := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		ua, err := chromedp.Evaluate[string](`navigator.userAgent`)(ctx, tg)
		if err != nil {
			return err
		}
		_, err = cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: opt.lang})
		return err
	})
	if opt.noCamera {
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		origin := u.Scheme + "://" + u.Host
		for perm, set := range map[string]browser.PermissionSetting{"camera": browser.PermissionSettingDenied, "microphone": browser.PermissionSettingGranted} {
			if _, err := chromedp.CallBrowser(tab, browser.SetPermission, browser.SetPermissionParams{Permission: &browser.PermissionDescriptor{Name: perm}, Setting: set, Origin: origin}); err != nil {
				t.Fatalf("%s: set %s permission: %v", name, perm, err)
			}
		}
	}
	if err := chromedp.Do(tab, setLang, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#name"))); err != nil {
		t.Fatalf("%s: open %s: %v", name, url, err)
	}
	return p
}

// do runs actions, failing the test on error.
func (p *peer) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// eval evaluates a JS expression in the page.
func eval[T any](p *peer, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, js, err)
	}
	return v
}

// wait polls a JS expression until it is truthy.
func (p *peer) wait(what, js string) {
	p.t.Helper()
	p.waitFor(what, js, stepTimeout)
}

func (p *peer) waitFor(what, js string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		snap, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify({sig: state.sig, name: state.name, call: state.call, users: state.users})`))
		p.t.Fatalf("%s: waiting for %s (%s): %v\nstate: %s", p.name, what, js, err, snap)
	}
}

// settle waits until js is truthy across a navigation, when the page's
// JavaScript context changes under chromedp's Poll: it evaluates in a loop
// and treats errors as "not yet".
func (p *peer) settle(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+js+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s: waiting for %s (%s): timed out", p.name, what, js)
}

// login types name and joins, then waits until the server accepted it.
func (p *peer) login(name string) {
	p.t.Helper()
	p.do("type name", chromedp.WaitEnabled(chromedp.CSS("#join")), chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.Click(chromedp.CSS("#join")))
	p.wait("login", fmt.Sprintf(`state.loggedIn && state.name === %q`, name))
}

// sees waits until name is in the online list, as a button.
func (p *peer) sees(name string) {
	p.t.Helper()
	p.wait("online: "+name, fmt.Sprintf(`[...document.querySelectorAll('#users button.user')].some(b => b.dataset.name === %q)`, name))
}

// call clicks name in the online list.
func (p *peer) call(name string) {
	p.t.Helper()
	p.sees(name)
	p.do("call "+name, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#users button.user[data-name=%q]`, name))))
	p.wait("calling", `['outgoing', 'connecting', 'connected'].includes(state.call.state)`)
}

// state waits until the call is in state s with peer name.
func (p *peer) callState(s, name string) {
	p.t.Helper()
	p.wait("call "+s, fmt.Sprintf(`state.call.state === %q && state.call.peer === %q`, s, name))
}

// ended waits until the call ended with the i18n reason key.
func (p *peer) ended(reason string) {
	p.t.Helper()
	p.wait("ended "+reason, fmt.Sprintf(`state.call.state === 'ended' && state.call.reason === %q`, reason))
}

// say types text into the message box and presses Enter; line breaks in
// text are typed as Shift+Enter.
func (p *peer) say(text string) {
	p.t.Helper()
	p.wait("send enabled", `!document.querySelector('#send').disabled`)
	var keys []chromedp.Action[chromedp.Void]
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			keys = append(keys, chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)))
		}
		keys = append(keys, chromedp.SendKeys(chromedp.CSS("#msg"), line))
	}
	p.do("say", append(keys, enter())...)
}

// enter presses Enter on the focused element as a keyboard does: one
// keyDown carrying the text "\r", so a page that cancels the keydown also
// cancels the newline. (chromedp's SendKeys("\r") sends a separate char
// event, which a real keyboard never does after a cancelled keydown.)
func enter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		k := input.DispatchKeyEventParams{
			Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r",
		}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k); err != nil {
			return fmt.Errorf("enter down: %w", err)
		}
		k.Type, k.Text, k.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, k); err != nil {
			return fmt.Errorf("enter up: %w", err)
		}
		return nil
	})
}

// got waits until a message with text from the peer is shown.
func (p *peer) got(text string) {
	p.t.Helper()
	p.wait("message "+text, fmt.Sprintf(`[...document.querySelectorAll('#log li.theirs .text')].some(e => e.textContent === %q)`, text))
}

// delivered waits until my message with text shows a receipt.
func (p *peer) delivered(text string) {
	p.t.Helper()
	p.wait("receipt "+text, fmt.Sprintf(`[...document.querySelectorAll('#log li.mine')].some(li => li.querySelector('.text').textContent === %q && li.querySelector('.receipt.done'))`, text))
}

// chatter is a page that chats: a Chromium peer or a tab of either browser.
type chatter interface {
	say(text string)
	got(text string)
	delivered(text string)
}

// chatBothWays sends there from a to b, then back from b to a, each shown
// on the other side and with its receipt on the sender's.
func chatBothWays(a, b chatter, there, back string) {
	a.say(there)
	b.got(there)
	a.delivered(there)
	b.say(back)
	a.got(back)
	b.delivered(back)
}

// text returns the textContent of the element matching sel.
func (p *peer) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// connect logs a and b in, has a call b and b accept, and waits until both
// have an open channel.
func connect(t *testing.T, a, b *peer, aName, bName string) {
	t.Helper()
	a.call(bName)
	b.callState("incoming", aName)
	b.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	a.callState("connected", bName)
	b.callState("connected", aName)
	a.wait("channel open", `state.call.open`)
	b.wait("channel open", `state.call.open`)
}

// loggedInPair starts a server and two browsers, each logged in under its
// name (which is also the peer's name in failure messages).
func loggedInPair(t *testing.T, nameA, nameB string) (*testServer, *peer, *peer) {
	t.Helper()
	ctx := browserTest(t)
	srv := startServer(t)
	a := newPeer(t, ctx, srv.URL(""), nameA)
	b := newPeer(t, ctx, srv.URL(""), nameB)
	a.login(nameA)
	b.login(nameB)
	return srv, a, b
}
