package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// runFailover measures how long a dead instance's names stay taken:
// cfg.users users log in on the first instance, cfg.probes of their names
// are tried on the other instances (each must be refused as taken), the
// first instance is killed with SIGKILL, and each probe logs its name in
// again every cfg.probeEvery until it succeeds. The figure is the time
// from the kill to each name being free; with NATS it is bounded by the
// lease (-nats-lease).
func runFailover(ctx context.Context, cfg *config, ds []*dialer, errs *counters, res *result) error {
	if err := checkVictim(cfg.killPID); err != nil {
		return err
	}
	victims := connectUsers(ctx, cfg, ds[:1], errs, cfg.users, cfg.prefix+"i")
	defer victims.close(cfg.concurrency)
	res.Logins = victims.connected.Load()
	if res.Logins != int64(cfg.users) {
		return fmt.Errorf("only %d of %d users logged in on the instance to kill", res.Logins, cfg.users)
	}
	probes := min(cfg.probes, cfg.users)
	conns := make([]*websocket.Conn, probes)
	names := make([]string, probes)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	// Probe k tries user k*users/probes, on the other instances in turn;
	// each is refused first, as the name is held on the first instance.
	var wg sync.WaitGroup
	sem := make(chan struct{}, cfg.concurrency)
	for k := range probes {
		names[k] = cfg.prefix + "i" + strconv.Itoa(k*cfg.users/probes)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			opCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
			defer cancel()
			c, err := ds[1+k%(len(ds)-1)].dial(opCtx)
			if err != nil {
				errs.classify(err)
				return
			}
			conns[k] = c
			if free, err := tryLogin(opCtx, c, names[k]); err != nil || free {
				if err == nil {
					err = fmt.Errorf("%w: %s was free on another instance while held", errUnexpected, names[k])
				}
				errs.classify(err)
			}
		})
	}
	wg.Wait()
	if _, n := errs.snapshot(); n > 0 {
		return errors.New("the probes failed before the kill")
	}

	victims.closing.Store(true)
	if err := killProcess(cfg.killPID); err != nil {
		return fmt.Errorf("killing pid %d: %w", cfg.killPID, err)
	}
	killed := time.Now()
	fmt.Fprintf(cfg.log, "killed pid %d with %d users; %d probes on %d other instances\n", cfg.killPID, res.Logins, probes, len(ds)-1)
	until := killed.Add(cfg.duration)
	free := make([]time.Duration, probes)
	var mu sync.Mutex
	for k := range probes {
		wg.Go(func() {
			opCtx, cancel := context.WithDeadline(ctx, until)
			defer cancel()
			for tick := time.Duration(0); ; tick += cfg.probeEvery {
				time.Sleep(time.Until(killed.Add(tick)))
				ok, err := tryLogin(opCtx, conns[k], names[k])
				if err != nil {
					errs.classify(fmt.Errorf("probing %s: %w", names[k], err))
					return
				}
				if ok {
					mu.Lock()
					free[k] = time.Since(killed)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	var s samples
	s.add(free)
	sum := s.summary()
	res.FreeAfter = &sum
	fmt.Fprintf(cfg.log, "names free again after the kill: %v (probed every %v)\n", sum, cfg.probeEvery)
	return nil
}

// tryLogin sends a login for name on c: true if it succeeded, false if
// the name is taken; anything else is an error.
func tryLogin(ctx context.Context, c *websocket.Conn, name string) (bool, error) {
	err := login(ctx, c, name, false)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errLoginFailed) && strings.Contains(err.Error(), `name-taken`):
		return false, nil
	}
	return false, err
}

// checkVictim refuses to kill anything but another p2pchat process.
func checkVictim(pid int) error {
	if pid == os.Getpid() {
		return errors.New("-kill-pid is the load tool itself")
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return fmt.Errorf("-kill-pid: %w", err)
	}
	if name := string(bytes.TrimSpace(comm)); name != "p2pchat" {
		return fmt.Errorf("-kill-pid %d is %q, not a p2pchat instance", pid, name)
	}
	return nil
}

// killProcess kills pid without letting it clean up: SIGKILL on Unix,
// TerminateProcess on Windows, so the instance's leases are left to expire.
func killProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
