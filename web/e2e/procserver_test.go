package e2e

import (
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procServer is the p2pchat binary (built once, buildOnce) run as a
// subprocess on a fixed loopback port, so that a test can kill it with
// SIGKILL, as a crash or the OOM killer would: no close frame, no
// shutdown, every socket closed by the kernel and all state gone, and
// then start it again on the same port.
type procServer struct {
	t      *testing.T
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *syncBuffer
	args   []string // flags after the test's own
}

// startProcServer starts the binary on a free loopback port, with args
// after the test's flags; it is killed at cleanup.
func startProcServer(t *testing.T, args ...string) *procServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &procServer{t: t, addr: ln.Addr().String(), args: args}
	ln.Close()
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("--- server log (last run):\n%s", s.logs.String())
		}
	})
	return s
}

// URL returns the page's address.
func (s *procServer) URL() string { return "http://" + s.addr + "/" }

// start runs the binary and returns when it listens: the moment the
// re-login times are measured from.
func (s *procServer) start() time.Time {
	s.t.Helper()
	bin, err := buildOnce()
	if err != nil {
		s.t.Fatal(err)
	}
	// The killed process's port may linger a moment.
	for range 20 {
		if at, ok := s.run(bin); ok {
			return at
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server could not listen on %s again:\n%s", s.addr, s.logs.String())
	return time.Time{}
}

// run starts the binary once; false if it exited because the port was
// still in use.
func (s *procServer) run(bin string) (time.Time, bool) {
	s.t.Helper()
	logs := &syncBuffer{}
	// As the in-process test server: no STUN (never the internet),
	// presence published every 200 ms; no second HTTPS listener (its
	// default, :8443 on every interface, is shared with whatever else
	// runs here).
	args := append([]string{"-addr", s.addr, "-https-addr", "", "-stun", "none", "-presence-interval", "200ms", "-log-format", "json"}, s.args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.logs = logs
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(logs.String(), `"p2pchat listening"`) {
			s.cmd, s.exited = cmd, exited
			return time.Now(), true
		}
		select {
		case <-exited:
			if strings.Contains(logs.String(), "address already in use") {
				return time.Time{}, false
			}
			s.t.Fatalf("server exited:\n%s", logs.String())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			s.t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone. It is safe to
// call twice.
func (s *procServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}
