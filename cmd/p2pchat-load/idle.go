package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// population is a set of logged-in users that stay connected and only
// read: each has one goroutine that answers the server's pings and checks
// that nothing but presence updates arrive.
type population struct {
	conns     []*websocket.Conn
	connect   samples // dial + hello
	login     samples // login sent -> reply
	presence  atomic.Int64
	readers   sync.WaitGroup
	closing   atomic.Bool
	connected atomic.Int64
}

// connectUsers logs in n users named prefix+index with the given
// concurrency. Failures are counted in errs; it returns when every attempt
// has finished or ctx ends.
func connectUsers(ctx context.Context, cfg *config, d *dialer, errs *counters, n int, prefix string) *population {
	p := &population{conns: make([]*websocket.Conn, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-progress.C:
				fmt.Fprintf(cfg.log, "connected %d/%d\n", p.connected.Load(), n)
			case <-done:
				return
			}
		}
	}()
	for range min(cfg.concurrency, n) {
		wg.Go(func() {
			var conn, lg []time.Duration
			defer func() { p.connect.add(conn); p.login.add(lg) }()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, dc, dl, err := d.connectAndLogin(ctx, cfg.timeout, prefix+strconv.Itoa(i), cfg.presence)
				if err != nil {
					errs.classify(err)
					continue
				}
				conn, lg = append(conn, dc), append(lg, dl)
				p.conns[i] = c
				p.connected.Add(1)
				p.readers.Go(func() { p.read(ctx, cfg, c, errs) })
			}
		})
	}
	wg.Wait()
	close(done)
	return p
}

// read consumes what the server sends an idle user.
func (p *population) read(ctx context.Context, cfg *config, c *websocket.Conn, errs *counters) {
	for {
		msg, err := readMsg(ctx, c, nil)
		if err != nil {
			if ctx.Err() == nil && !p.closing.Load() {
				errs.add("closed", 1, fmt.Errorf("idle user's connection ended: %w", err))
			}
			return
		}
		switch t := string(field(msg, "type")); {
		case t == "presence" && cfg.presence:
			p.presence.Add(1)
		case t == "error":
			errs.add("server-error", 1, fmt.Errorf("idle user got %.120q", msg))
		default:
			errs.add("unexpected", 1, fmt.Errorf("idle user got %.120q", msg))
		}
	}
}

// close closes every connection with a normal closure, in parallel.
func (p *population) close(concurrency int) {
	p.closing.Store(true)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(p.conns) {
					return
				}
				if c := p.conns[i]; c != nil {
					c.Close(websocket.StatusNormalClosure, "")
				}
			}
		})
	}
	wg.Wait()
	p.readers.Wait()
}

// runIdle logs in cfg.users users, holds them for cfg.hold and reports
// login latency and, given the server's PID, its RSS per user.
func runIdle(ctx context.Context, cfg *config, d *dialer, errs *counters, res *result) error {
	var rssBefore int64
	if cfg.pid > 0 {
		var err error
		if rssBefore, err = procRSS(cfg.pid); err != nil {
			return err
		}
	}
	start := time.Now()
	p := connectUsers(ctx, cfg, d, errs, cfg.users, cfg.prefix+"i")
	elapsed := time.Since(start)
	defer p.close(cfg.concurrency)

	res.Logins = p.connected.Load()
	res.LoginsPerSec = round3(float64(res.Logins) / elapsed.Seconds())
	cs, ls := p.connect.summary(), p.login.summary()
	res.Connect, res.Login = &cs, &ls
	fmt.Fprintf(cfg.log, "logged in %d users in %.1fs; connect %v; login %v\n", res.Logins, elapsed.Seconds(), cs, ls)

	meter := startCPU(cfg.pid)
	select {
	case <-ctx.Done():
	case <-time.After(cfg.hold):
	}
	res.CPU = meter.stop()
	res.PresenceMsgs = p.presence.Load()
	if cfg.pid > 0 {
		rss, err := procRSS(cfg.pid)
		if err != nil {
			return err
		}
		res.Server = &serverFigures{PID: cfg.pid, RSSBeforeKiB: rssBefore, RSSAfterKiB: rss}
		if res.Logins > 0 {
			res.Server.RSSPerUserKiB = round3(float64(rss-rssBefore) / float64(res.Logins))
		}
		fmt.Fprintf(cfg.log, "server RSS %d KiB -> %d KiB: %.2f KiB per idle user\n", rssBefore, rss, res.Server.RSSPerUserKiB)
	}
	fmt.Fprintln(cfg.log, res.CPU)
	return nil
}
