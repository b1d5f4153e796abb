package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shards (-procs N): a process may open only RLIMIT_NOFILE files (20,000
// here), so 100,000 idle users need several processes. The tool starts N
// copies of itself with -shard, each holding a slice of the users (the
// same names and instances as one process would use: user first+i). A
// shard writes "ready" on stdout once its logins are done, holds its
// users until its stdin closes, closes them and writes its JSON result.
// A shard's run is bounded by the parent's remaining -max-time, and it
// ends when the parent does (its stdin closes).

// maxProcs bounds -procs.
const maxProcs = 16

// shardEnv marks a child started by -procs, so a test binary knows to
// run the tool instead of the tests.
const shardEnv = "P2PCHAT_LOAD_SHARD"

// shardFigures are one shard's own figures.
type shardFigures struct {
	PID          int              `json:"pid"`
	Users        int              `json:"users"`
	Logins       int64            `json:"logins"`
	LoginsPerSec float64          `json:"logins_per_s"`
	Login        *summary         `json:"login,omitempty"`
	Errors       int64            `json:"errors"`
	ErrorKinds   map[string]int64 `json:"error_kinds,omitempty"`
}

// shardSet is the children of one run.
type shardSet struct {
	cmds   []*exec.Cmd
	stdins []io.WriteCloser
	outs   []*bufio.Reader
	users  []int
}

// shardArgs is the command line of a shard holding users users from index
// first, dialing from srcAddrs source addresses after the first srcFirst.
// Each shard needs its own: bound to one source address, the shards would
// share its ~28,000 ports ("address already in use" past them).
func shardArgs(cfg *config, first, users, srcFirst, srcAddrs int, deadline time.Time) []string {
	args := []string{
		"-mode", "idle", "-shard",
		"-url", strings.Join(cfg.urls, ","),
		"-users", strconv.Itoa(users), "-first", strconv.Itoa(first),
		"-prefix", cfg.prefix,
		"-src-first", strconv.Itoa(srcFirst), "-src-addrs", strconv.Itoa(srcAddrs),
		"-concurrency", strconv.Itoa(max(1, cfg.concurrency/cfg.procs)),
		"-timeout", cfg.timeout.String(),
		"-max-time", max(time.Second, time.Until(deadline)).String(),
	}
	if cfg.presence {
		args = append(args, "-presence")
	}
	if cfg.tutorial {
		args = append(args, "-tutorial")
	}
	return args
}

// shardSpec is one shard's share: users from index first, dialing from
// srcAddrs source addresses after the first srcFirst.
type shardSpec struct{ first, users, srcFirst, srcAddrs int }

// shardPlan splits n users over procs shards, each with source addresses
// of its own from src on.
func shardPlan(n, procs, src int) []shardSpec {
	plan := make([]shardSpec, procs)
	first := 0
	for k := range plan {
		users := n/procs + btoi(k < n%procs)
		plan[k] = shardSpec{first: first, users: users, srcFirst: src, srcAddrs: users/portsPerSource + 1}
		first += users
		src += plan[k].srcAddrs
	}
	return plan
}

// startShards starts cfg.procs children holding n idle users and waits
// until every one has logged its users in.
func startShards(ctx context.Context, cfg *config, n int) (*shardSet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the tool's executable: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(cfg.maxTime)
	}
	s := &shardSet{}
	// After the parent's own source addresses (its pairs and probes).
	for k, sp := range shardPlan(n, cfg.procs, cfg.srcFirst+cfg.srcAddrs) {
		cmd := exec.CommandContext(ctx, exe, shardArgs(cfg, sp.first, sp.users, sp.srcFirst, sp.srcAddrs, deadline)...)
		cmd.Env = append(os.Environ(), shardEnv+"=1")
		cmd.Stderr = cfg.log
		in, err := cmd.StdinPipe()
		if err == nil {
			var out io.ReadCloser
			if out, err = cmd.StdoutPipe(); err == nil {
				s.outs = append(s.outs, bufio.NewReader(out))
				err = cmd.Start()
			}
		}
		if err != nil {
			s.stop(nil, nil)
			return nil, fmt.Errorf("starting shard %d: %w", k, err)
		}
		s.cmds, s.stdins, s.users = append(s.cmds, cmd), append(s.stdins, in), append(s.users, sp.users)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(s.cmds))
	for k := range s.cmds {
		wg.Go(func() {
			line, err := s.outs[k].ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ready" {
				errs[k] = fmt.Errorf("shard %d (pid %d) did not get ready: %q %v", k, s.cmds[k].Process.Pid, line, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.stop(nil, nil)
		return nil, err
	}
	return s, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pids are the children's PIDs, for the CPU meter.
func (s *shardSet) pids() []int {
	if s == nil {
		return nil
	}
	pids := make([]int, len(s.cmds))
	for i, c := range s.cmds {
		pids[i] = c.Process.Pid
	}
	return pids
}

// stop closes every shard's stdin, so each closes its users, and
// collects their results into res and errs (when not nil).
func (s *shardSet) stop(res *result, errs *counters) {
	for _, in := range s.stdins {
		in.Close()
	}
	for k, cmd := range s.cmds {
		var r result
		line, _ := io.ReadAll(s.outs[k])
		jerr := json.Unmarshal(lastLine(line), &r)
		werr := cmd.Wait()
		if res == nil {
			continue
		}
		if jerr != nil {
			errs.add("closed", 1, fmt.Errorf("shard %d (pid %d): no result (%v; exit: %v)", k, cmd.Process.Pid, jerr, werr))
			continue
		}
		for kind, v := range r.ErrorKinds {
			if v > 0 {
				errs.add(kind, v, nil)
			}
		}
		res.Logins += r.Logins
		res.PresenceMsgs += r.PresenceMsgs
		res.Shards = append(res.Shards, shardFigures{PID: cmd.Process.Pid, Users: s.users[k], Logins: r.Logins,
			LoginsPerSec: r.LoginsPerSec, Login: r.Login, Errors: r.Errors, ErrorKinds: r.ErrorKinds})
	}
}

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// holdShard is a shard's hold: it says it is ready and waits until the
// parent closes its stdin (or ctx ends).
func holdShard(ctx context.Context) {
	fmt.Println("ready")
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
}
