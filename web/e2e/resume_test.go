package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/p2pchat/p2pchat/server/signaling"
)

// hub returns the running server's hub.
func (s *testServer) hub() *signaling.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.Hub()
}

// recordLogins keeps the login messages the page sends in window.__logins,
// the tokens it is given in window.__tokens and when (Date.now(), the
// machine's clock) in window.__loginAt, and counts the sockets it opens in
// window.__sockets.
const recordLogins = `(() => {
  window.__logins = [];
  window.__tokens = [];
  window.__loginAt = [];
  window.__sockets = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (d) {
    const m = JSON.parse(d);
    if (m.type === 'login') window.__logins.push(m);
    return send.call(this, d);
  };
  const Orig = window.WebSocket;
  window.WebSocket = class extends Orig {
    constructor(...a) {
      super(...a);
      window.__sockets++;
      this.addEventListener('message', (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === 'login' && m.success) window.__tokens.push(m.token), window.__loginAt.push(Date.now());
      });
    }
  };
})()`

// retryNow presses "Retry now" until the page is connected again. The
// button shows only while the page waits for its next attempt.
func (p *peer) retryNow() {
	p.t.Helper()
	p.wait("retry now", `(() => {
  const r = document.querySelector('#retry');
  if (!r.hidden) r.click();
  return state.sig === 'connected';
})()`)
}

// TestResumeDropBetweenOfferAndAnswer: the callee's network drops while its
// phone rings; it accepts while offline (the answer waits in the page), its
// socket comes back through "Retry now", the server hands its name back at
// once although it still holds the dead connection (closed with 4001), and
// the call connects.
func TestResumeDropBetweenOfferAndAnswer(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	link := newFlakyLink(t, srv.addr)
	a := newPeer(t, ctx, srv.URL(""), "ada")
	b := newPeer(t, ctx, link.URL(""), "ben")
	a.login("ada")
	b.login("ben")
	a.call("ben")
	b.callState("incoming", "ada")

	link.cut(true)
	b.wait("socket lost", `state.sig === 'reconnecting' && state.retryAt > 0`)
	if got := b.text("#sig"); !strings.Contains(got, "reconnecting in") {
		t.Errorf("status line %q, want a countdown", got)
	}
	b.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	b.wait("answer kept", `state.signaling.outbox.some(e => e.m.type === 'answer')`)
	if srv.hub().Online() != 2 {
		t.Fatalf("server sees %d online: the dead connection should still hold ben", srv.hub().Online())
	}

	link.setDown(false)
	b.retryNow()
	b.wait("logged in again", `state.logins === 2 && state.sig === 'connected'`)
	a.callState("connected", "ben")
	b.callState("connected", "ada")
	a.wait("channel open", `state.call.open`)
	b.wait("channel open", `state.call.open`)
	a.say("made it")
	b.got("made it")
	b.say("despite the drop")
	a.got("despite the drop")

	if n := eval[int](b, `state.taken`); n != 0 {
		t.Errorf("%d name-taken answers to the re-login, want 0", n)
	}
	if n := srv.hub().Stats().Resumes.Load(); n != 1 {
		t.Errorf("server counted %d resumes, want 1", n)
	}
	for deadline := time.Now().Add(stepTimeout); !slices.Contains(link.closeCodes(), signaling.StatusSessionResumed); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the old connection got close codes %v, want %d", link.closeCodes(), signaling.StatusSessionResumed)
		}
	}
}

// TestResumeAfterServerKill: the server process is killed mid-call
// (SIGKILL: no close frame, its registry and tokens gone) and started
// again on the same port, at once, as a supervisor does. The chat keeps
// flowing peer to peer both ways, with receipts, and each time both pages
// log in again at the first attempt (no "name taken" retries), presenting
// their tokens. It logs the time from the server listening again to both
// pages logged in, and from the kill: measurements, not limits. Three
// kills; ten with P2PCHAT_RESUME_FIGURES=1 (docs/benchmarks.md).
func TestResumeAfterServerKill(t *testing.T) {
	ctx := browserTest(t)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*testDeadline)
	t.Cleanup(cancel)
	n := 3
	if os.Getenv("P2PCHAT_RESUME_FIGURES") == "1" {
		n = 10
	}
	srv := startProcServer(t)
	a := newPeer(t, ctx, srv.URL(), "rae")
	b := newPeer(t, ctx, srv.URL(), "roy")
	for _, p := range []*peer{a, b} {
		eval[any](p, recordLogins)
	}
	a.login("rae")
	b.login("roy")
	connect(t, a, b, "rae", "roy")
	var fromListen, fromKill []float64
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for i := range n {
		killed := time.Now()
		srv.kill()
		if i == 0 {
			a.wait("reconnecting", `state.sig === 'reconnecting'`)
			b.wait("reconnecting", `state.sig === 'reconnecting'`)
			chatBothWays(a, b, "while the server is dead", "still here")
			killed = time.Now()
		}
		back := srv.start()
		want := fmt.Sprintf(`state.logins === %d && state.sig === 'connected'`, i+2)
		a.wait("re-login", want)
		b.wait("re-login", want)
		// The later of the two pages' login replies, by the page's clock.
		at := time.UnixMilli(max(eval[int64](a, `window.__loginAt.at(-1)`), eval[int64](b, `window.__loginAt.at(-1)`)))
		fromListen = append(fromListen, ms(at.Sub(back)))
		fromKill = append(fromKill, ms(at.Sub(killed)))
	}
	for _, p := range []*peer{a, b} {
		if got := eval[int](p, `state.taken`); got != 0 {
			t.Errorf("%s: %d name-taken answers, want 0", p.name, got)
		}
		// n+1 logins, one per socket, each re-login with the token of
		// the login before (the recorder missed the socket opened with
		// the page: its token is the one the first re-login presents).
		if !eval[bool](p, fmt.Sprintf(`window.__logins.length === %d && window.__tokens.length === %d &&
			window.__logins.every((m, i) => i === 0 ? !m.token : i === 1 ? !!m.token : m.token === window.__tokens[i - 2])`, n+1, n)) {
			t.Errorf("%s: logins sent %v, tokens received %v", p.name, eval[any](p, `window.__logins`), eval[any](p, `window.__tokens`))
		}
	}
	a.callState("connected", "roy")
	b.callState("connected", "rae")
	chatBothWays(a, b, "after the kills", "all fine")
	a.sees("roy")
	b.sees("rae")
	t.Logf("sockets opened: %s %d, %s %d, for %d kills", a.name, eval[int](a, `window.__sockets`), b.name, eval[int](b, `window.__sockets`), n)
	t.Logf("re-login after the server listened again (ms): %v; median %.0f ms", fromListen, median(fromListen))
	t.Logf("re-login after the kill (ms): %v; median %.0f ms", fromKill, median(fromKill))
}

// TestResumeStolenToken: another connection cannot take a name with a
// wrong token, a malformed one, or a token that died when its owner
// resumed, neither while the owner is online nor while the server holds
// the owner's dead connection; the owner keeps the name throughout.
func TestResumeStolenToken(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	link := newFlakyLink(t, srv.addr)
	a := newPeer(t, ctx, link.URL(""), "tia")
	a.login("tia")
	first := eval[string](a, `state.signaling.token`)
	wsURL := "ws://" + srv.addr + "/ws"
	try := func(tok string) map[string]any {
		t.Helper()
		c, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		read := func() map[string]any {
			rctx, cancel := context.WithTimeout(ctx, stepTimeout)
			defer cancel()
			_, data, err := c.Read(rctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			return m
		}
		read() // hello
		msg, _ := json.Marshal(map[string]any{"type": "login", "name": "tia", "token": tok})
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		return read()
	}
	refused := func(what, tok string) {
		t.Helper()
		if m := try(tok); m["success"] != false || m["code"] != "name-taken" {
			t.Errorf("%s: got %v, want name-taken", what, m)
		}
	}
	wrong := strings.Repeat("A", len(first))
	refused("wrong token, owner online", wrong)
	refused("malformed token", first+"!")

	// The owner's network changes: the server holds a dead connection
	// while the owner cannot reach it.
	link.cut(true)
	a.wait("offline", `state.sig === 'reconnecting'`)
	refused("wrong token, owner's connection dead", wrong)
	link.setDown(false)
	a.retryNow()
	a.wait("resumed", `state.logins === 2 && state.sig === 'connected'`)
	second := eval[string](a, `state.signaling.token`)
	if second == first || second == "" {
		t.Fatalf("token after the resume %q, want a new one", second)
	}
	link.cut(true)
	a.wait("offline", `state.sig === 'reconnecting'`)
	refused("token that died with the resume, owner's connection dead", first)
	link.setDown(false)
	a.retryNow()
	a.wait("resumed again", `state.logins === 3 && state.sig === 'connected'`)
	if n := eval[int](a, `state.taken`); n != 0 {
		t.Errorf("the owner got %d name-taken answers", n)
	}
	if n := srv.hub().Stats().Resumes.Load(); n != 2 {
		t.Errorf("%d resumes, want 2 (the owner's)", n)
	}
}

// TestResumePeerGaveUp: the caller cancels while the callee is offline (the
// cancel is lost with the callee's dead connection); the callee accepts
// offline, and when its answer goes out after the re-login the server
// says there is no such call any more: the callee's call ends with a
// reason, and the caller, whose call ended already, is not rung again.
func TestResumePeerGaveUp(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	link := newFlakyLink(t, srv.addr)
	a := newPeer(t, ctx, srv.URL(""), "cal")
	b := newPeer(t, ctx, link.URL(""), "cat")
	a.login("cal")
	b.login("cat")
	a.call("cat")
	b.callState("incoming", "cal")
	link.cut(true)
	b.wait("socket lost", `state.sig === 'reconnecting'`)
	a.do("cancel", chromedp.Click(chromedp.CSS("#cancel")))
	a.ended("end.cancelled.local")
	b.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	b.wait("answer kept", `state.signaling.outbox.some(e => e.m.type === 'answer')`)
	link.setDown(false)
	b.retryNow()
	b.ended("end.other")
	if got := b.text("#notice"); got != "The call with cal ended." {
		t.Errorf("notice %q", got)
	}
	// The callee offered no ICE restart on its re-login (which would
	// have rung the caller again): it waits to see whether the call lives.
	if s := eval[string](a, `state.call.state + ' ' + state.call.reason`); s != "ended end.cancelled.local" {
		t.Errorf("caller's call: %s, want it ended as cancelled", s)
	}
}

// TestResumeSilentSocket: after a network change the page's socket may
// look open while nothing gets through. Coming back online, or to the
// page, it checks the socket, finds it silent, reconnects and resumes its
// session (the server still holds the silent connection).
func TestResumeSilentSocket(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	link := newFlakyLink(t, srv.addr)
	a := newPeer(t, ctx, link.URL(""), "sol")
	a.login("sol")
	for i, ev := range []string{`dispatchEvent(new Event('online'))`, `document.dispatchEvent(new Event('visibilitychange'))`} {
		link.stall()
		a.do("wake", chromedp.Evaluate[chromedp.Void](ev))
		// The check alone waits 4 s for an answer: more than one step.
		a.waitFor("resumed", fmt.Sprintf(`state.logins === %d && state.sig === 'connected'`, i+2), 2*stepTimeout)
	}
	if n := srv.hub().Stats().Resumes.Load(); n != 2 {
		t.Errorf("%d resumes, want 2", n)
	}
	if n := eval[int](a, `state.taken`); n != 0 {
		t.Errorf("%d name-taken answers, want 0", n)
	}
	// Awake with a working socket: the check passes and nothing changes.
	a.do("wake", chromedp.Evaluate[chromedp.Void](`dispatchEvent(new Event('online'))`))
	a.wait("probe answered", `!state.signaling.probe`)
	if n := eval[int](a, `state.logins`); n != 3 {
		t.Errorf("%d logins after a wake-up on a working socket, want 3", n)
	}
}

// TestResumeTooLate: the callee accepts while offline and comes back only
// when its answer is too old to matter (aged here in the page, not waited
// for): the page does not send it, ends the call saying the server could
// not be reached in time, and tells the caller, whose call ends too.
func TestResumeTooLate(t *testing.T) {
	ctx := browserTest(t)
	srv := startServer(t)
	link := newFlakyLink(t, srv.addr)
	a := newPeer(t, ctx, srv.URL(""), "lea")
	b := newPeer(t, ctx, link.URL(""), "lee")
	a.login("lea")
	b.login("lee")
	a.call("lee")
	b.callState("incoming", "lea")
	link.cut(true)
	b.wait("socket lost", `state.sig === 'reconnecting'`)
	b.do("accept", chromedp.Click(chromedp.CSS("#accept")))
	b.wait("answer kept", `state.signaling.outbox.some(e => e.m.type === 'answer')`)
	eval[any](b, `state.signaling.outbox.forEach(e => { e.at -= 60000; })`)
	link.setDown(false)
	b.retryNow()
	b.ended("end.sigLost")
	if got := b.text("#notice"); got != "The server could not be reached in time, so the call with lea could not be set up." {
		t.Errorf("callee's notice %q", got)
	}
	a.ended("end.offline")
	if got := a.text("#notice"); got != "lee went offline." {
		t.Errorf("caller's notice %q", got)
	}
}
