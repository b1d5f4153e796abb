package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	buildBin  string
	buildErr  error
	buildOut  []byte
)

// buildBinary builds the p2pchat binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "p2pchat-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "p2pchat")
		buildOut, buildErr = exec.Command("go", "build", "-o", buildBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

var urlRE = regexp.MustCompile(`msg="p2pchat listening" url=http://(127\.0\.0\.1:\d+)`)

// process is the binary running in a child process.
type process struct {
	cmd  *exec.Cmd
	addr chan string // the listening host:port, once logged

	mu   sync.Mutex
	tail []string // the last lines of its log
}

// startProcess runs the binary with args; it is killed when the test
// ends. Its log is read until it exits, so it never blocks on it.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), addr: make(chan string, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := urlRE.FindStringSubmatch(line); m != nil {
				select {
				case p.addr <- m[1]:
				default:
				}
			}
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 20 {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// listening waits up to d for the process to log its URL and returns
// its host:port.
func (p *process) listening(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case <-time.After(d):
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("%v did not listen within %v; its log ends:\n%s", p.cmd.Args[1:], d, strings.Join(p.tail, "\n"))
		return ""
	}
}

// freePort returns a loopback port nobody listens on, for a listener a
// child process must know in advance.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
