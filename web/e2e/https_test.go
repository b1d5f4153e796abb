package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/p2pchat/p2pchat/server"
	"github.com/p2pchat/p2pchat/server/selfsigned"
	"github.com/p2pchat/p2pchat/server/signaling"
)

// startLANServer is the server as a bare p2pchat runs it: plain HTTP, and
// the same site over HTTPS with a self-signed certificate on a second
// port, here on 127.0.0.2 so the page's origin is not a "localhost" name.
// It returns the plain and HTTPS ports.
func startLANServer(t *testing.T) (plainPort, httpsPort int) {
	t.Helper()
	cert, _, err := selfsigned.Load(filepath.Join(t.TempDir(), "cert"), []string{"127.0.0.2"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tln, err := tls.Listen("tcp", "127.0.0.2:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := signaling.DefaultConfig()
	cfg.ICE = signaling.StaticICE{}
	cfg.PresenceInterval = 200 * time.Millisecond
	cfg.HTTPSPort = tln.Addr().(*net.TCPAddr).Port
	srv := server.New(server.Config{Signaling: cfg}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pln, err := srv.Listener(ln)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{pln, tln} {
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.NewTextHandler(io.Discard, nil), slog.LevelDebug)}
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			_ = hs.Shutdown(ctx)
		})
	}
	return ln.Addr().(*net.TCPAddr).Port, cfg.HTTPSPort
}

// TestVideoOverLANHTTPS: a page opened over plain HTTP from a name that is
// not localhost (not a secure context) shows the HTTPS address; a video
// call from it goes on as text and says where voice and video work; over
// the self-signed HTTPS listener (its certificate error accepted, as a
// user does once) the video call works.
func TestVideoOverLANHTTPS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(browserTest(t)), mediaDeadline)
	t.Cleanup(cancel)
	plain, secure := startLANServer(t)
	opt := peerOptions{width: 1000, height: 760, lang: "en-US", hostRules: "MAP lan.test 127.0.0.1", certErrors: true}
	httpsURL := fmt.Sprintf("https://127.0.0.2:%d/", secure)
	a := newPeer(t, ctx, httpsURL, "ada", opt)
	b := newPeer(t, ctx, fmt.Sprintf("http://lan.test:%d/", plain), "bo", opt)
	a.login("ada")
	b.login("bo")
	if !eval[bool](a, `isSecureContext`) || eval[bool](b, `isSecureContext`) {
		t.Fatal("want ada's page secure and bo's not")
	}
	b.wait("https notice", `!document.querySelector('#insecure').hidden`)
	wantURL := fmt.Sprintf("https://lan.test:%d/", secure)
	if got := b.text("#insecure"); !strings.Contains(got, wantURL) {
		t.Errorf("notice %q does not name %s", got, wantURL)
	}
	if !eval[bool](a, `document.querySelector('#insecure').hidden`) {
		t.Error("the notice shows on the secure page")
	}

	// A video call from the plain page: text, with the address in words.
	b.pick("video")
	b.call("ada")
	b.wait("insecure error", `state.call.av.err === 'insecure' && state.call.av.fb === 'text'`)
	if got := b.text("#avErr"); !strings.Contains(got, wantURL) {
		t.Errorf("error %q does not name %s", got, wantURL)
	}
	a.rings("bo")
	if got := a.text("#callTitle"); got != "bo is calling you" {
		t.Errorf("callee's title %q: want a text call", got)
	}
	a.click("accept")
	a.callState("connected", "bo")
	b.say("hi from http")
	a.got("hi from http")
	b.click("hangup")
	a.ended("end.hangup")
	a.click("close")

	// Over HTTPS the video call works.
	b.do("open https", chromedp.Navigate(httpsURL), chromedp.WaitVisible(chromedp.CSS("#name")))
	b.login("bo2")
	b.pick("video")
	b.call("ada")
	a.rings("bo2")
	if got := a.text("#callTitle"); got != "bo2 is calling you (video)" {
		t.Errorf("callee's title %q", got)
	}
	a.click("accept")
	for _, p := range []*peer{a, b} {
		p.wait("remote video", `document.querySelector('#remote').videoWidth > 0`)
		p.rising("frames decoded", `state.call.q.frames`, 10)
		p.rising("audio packets in", `state.call.q.aIn`, 20)
	}
}
