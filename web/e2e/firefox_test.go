package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// firefoxPrefs go into the fresh profile's user.js.
var firefoxPrefs = map[string]any{
	// Measured here: in a namespace with only loopback, headless Firefox
	// gathers no ICE candidate at all without these two. Without a media
	// permission it offers only "default local addresses" (there is no
	// default route), and loopback candidates are off by default. BiDi
	// cannot grant a permission, so the profile does.
	"media.peerconnection.ice.loopback": true,
	"permissions.default.microphone":    1,
	"permissions.default.camera":        1,
	// The page asks for notifications on the Join click; the tests click
	// from script, without a user gesture, which Firefox reports as an
	// error. Denied, the page does not ask.
	"permissions.default.desktop-notification": 2,
	// Raw IPs instead of mDNS names, which nothing here resolves.
	"media.peerconnection.ice.obfuscate_host_addresses": false,
	// A synthetic camera and microphone, for tests with media.
	"media.navigator.streams.fake": true,
	// No "slow script" stop on a machine busy with other tests.
	"dom.max_script_run_time": 0,
	// The tests read English texts.
	"intl.accept_languages": "en-US",
	// Nothing phones home or updates itself mid-test (there is no internet).
	"app.update.disabledForTesting":               true,
	"browser.shell.checkDefaultBrowser":           false,
	"datareporting.policy.dataSubmissionEnabled":  false,
	"toolkit.telemetry.reportingpolicy.firstRun":  false,
	"browser.startup.homepage_override.mstone":    "ignore",
	"services.settings.server":                    "http://127.0.0.1:9/",
	"network.connectivity-service.enabled":        false,
	"browser.safebrowsing.update.enabled":         false,
	"extensions.getAddons.cache.enabled":          false,
	"browser.region.network.url":                  "",
	"messaging-system.rsexperimentloader.enabled": false,
}

// firefoxPath finds Firefox, or skips (fails in CI) the test.
func firefoxPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FIREFOX_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "\n*** FIREFOX TESTS SKIPPED: no Firefox found ($FIREFOX_BIN, firefox-esr, firefox).\n" +
		"*** Install it, e.g. `apt-get install -y --no-install-recommends firefox-esr`, or set FIREFOX_BIN.\n"
	if os.Getenv("P2PCHAT_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + "*** P2PCHAT_REQUIRE_BROWSER=1: a missing browser is a failure.")
	}
	t.Skip(msg)
	return ""
}

// firefoxPage is one headless Firefox process, its own profile, driven over
// WebDriver BiDi; its one browsing context shows the app.
type firefoxPage struct {
	bidi *bidi
	ctx  string // the browsing context id

	mu      sync.Mutex
	console []string
	bad     []string // uncaught exceptions
}

// firefoxStartTimeout bounds each step of starting one Firefox, up to its
// page: about 5 s of CPU, which a machine busy with other tests can stretch
// to a minute.
const firefoxStartTimeout = 2 * time.Minute

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// firefox is a Firefox process on its way up. Starting several before
// opening any overlaps their start-up, the slow part (seconds each).
type firefox struct {
	t      *testing.T
	name   string
	page   *firefoxPage
	found  chan string   // the BiDi address, once printed
	exited chan struct{} // closed when the process is gone
}

// startFirefox launches a headless Firefox with a fresh profile.
func startFirefox(t *testing.T, name string) *firefox {
	t.Helper()
	bin := firefoxPath(t)
	profile := t.TempDir()
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		val, _ := json.Marshal(v)
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, val)
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// Port 0: Firefox picks a free port and prints the address.
	cmd := exec.Command(bin, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0", "about:blank")
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1")
	// Its own process group, so the cleanup ends its content processes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr // both into the pipe
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	f := &firefox{t: t, name: name, page: &firefoxPage{}, found: make(chan string, 1), exited: make(chan struct{})}
	var outMu sync.Mutex
	var output []string
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := bidiListening.FindStringSubmatch(line); m != nil {
				select {
				case f.found <- m[1]:
				default:
				}
			}
			outMu.Lock()
			if len(output) < 200 {
				output = append(output, line)
			}
			outMu.Unlock()
		}
		_ = cmd.Wait()
		close(f.exited)
	}()
	p := f.page
	t.Cleanup(func() {
		// The profile is thrown away: no need for a graceful quit, which
		// costs seconds.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
		if p.bidi != nil {
			p.bidi.close()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, b := range p.bad {
			t.Errorf("%s: page error: %s", name, b)
		}
		if t.Failed() {
			outMu.Lock()
			t.Logf("--- console of %s:\n%s\n--- output of Firefox (%s):\n%s", name, strings.Join(p.console, "\n"), name, strings.Join(output, "\n"))
			outMu.Unlock()
		}
	})
	return f
}

// open connects to the started Firefox over BiDi and opens url in it.
func (f *firefox) open(ctx context.Context, url string) *tab {
	t, name, p := f.t, f.name, f.page
	t.Helper()
	var ws string
	select {
	case ws = <-f.found:
	case <-f.exited:
		t.Fatalf("%s: Firefox exited before it listened for BiDi", name)
	case <-time.After(firefoxStartTimeout):
		t.Fatalf("%s: Firefox did not listen for BiDi within %v", name, firefoxStartTimeout)
	}
	b, err := dialBiDi(ctx, ws+"/session", p.event)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p.bidi = b
	// Starting takes a few seconds, many more on a busy machine.
	call := func(method string, params any) json.RawMessage {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, firefoxStartTimeout)
		defer cancel()
		res, err := b.call(step, method, params)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	call("session.new", map[string]any{"capabilities": map[string]any{}})
	call("session.subscribe", map[string]any{"events": []string{"log.entryAdded"}})
	res := call("browsingContext.getTree", nil)
	var tree struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	if err := json.Unmarshal(res, &tree); err != nil || len(tree.Contexts) == 0 {
		t.Fatalf("%s: no browsing context in %s (%v)", name, res, err)
	}
	p.ctx = tree.Contexts[0].Context
	call("browsingContext.navigate", map[string]any{"context": p.ctx, "url": url, "wait": "complete"})
	u := &tab{t: t, name: name, browser: "firefox", page: p}
	u.wait("page", `!!window.state && !document.querySelector('#name').hidden`)
	return u
}

// event keeps the page's console; an uncaught exception is a bug even when
// the test's own checks pass.
func (p *firefoxPage) event(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Type  string `json:"type"`
		Level string `json:"level"`
		Text  string `json:"text"`
	}
	if json.Unmarshal(params, &e) != nil {
		return
	}
	line := time.Now().Format("15:04:05.000 ") + e.Level + " " + e.Text
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.console) < 2000 {
		p.console = append(p.console, line)
	}
	if e.Type == "javascript" {
		p.bad = append(p.bad, e.Text)
	}
}

func (p *firefoxPage) evalJSON(js string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.bidi.evaluate(ctx, p.ctx, js)
}
