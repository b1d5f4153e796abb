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

// connectUsers logs in n users named prefix+index, index from cfg.first,
// with the given concurrency; user index is on instance index mod
// len(ds). Failures are counted in errs; it returns when every attempt
// has finished or ctx ends.
func connectUsers(ctx context.Context, cfg *config, ds []*dialer, errs *counters, n int, prefix string) *population {
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
				idx := cfg.first + i
				d := ds[instanceOf(idx, len(ds))]
				c, dc, dl, err := d.connectAndLogin(ctx, cfg.timeout, prefix+strconv.Itoa(idx), cfg.presence)
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

// holdIdle logs in n idle users, in this process or, with -procs, in
// child processes, and records the logins and their rate in res. The
// population is nil when shards hold the users; release lets them go
// (and collects the shards' figures into res).
func holdIdle(ctx context.Context, cfg *config, ds []*dialer, errs *counters, n int, res *result) (p *population, shards *shardSet, release func(), err error) {
	start := time.Now()
	if cfg.procs > 1 {
		if shards, err = startShards(ctx, cfg, n); err != nil {
			return nil, nil, nil, err
		}
		elapsed := time.Since(start)
		// Every shard is ready: its users are in, or counted as errors.
		res.LoginsPerSec = round3(float64(n) / elapsed.Seconds())
		fmt.Fprintf(cfg.log, "%d shards logged in their %d idle users in %.1fs\n", cfg.procs, n, elapsed.Seconds())
		return nil, shards, func() { shards.stop(res, errs) }, nil
	}
	p = connectUsers(ctx, cfg, ds, errs, n, cfg.prefix+"i")
	elapsed := time.Since(start)
	logins := p.connected.Load()
	res.Logins += logins
	cs, ls := p.connect.summary(), p.login.summary()
	res.Connect, res.Login = &cs, &ls
	res.LoginsPerSec = round3(float64(logins) / elapsed.Seconds())
	fmt.Fprintf(cfg.log, "logged in %d idle users in %.1fs; connect %v; login %v\n", logins, elapsed.Seconds(), cs, ls)
	return p, nil, func() { p.close(cfg.concurrency) }, nil
}

// runIdle logs in cfg.users users, holds them for cfg.hold and reports
// login latency and, given the servers' PIDs, their RSS per user. With
// -procs the users are held by child processes; with -shard this is one
// of them, holding its users until its parent lets go.
func runIdle(ctx context.Context, cfg *config, ds []*dialer, errs *counters, res *result) error {
	rss := startRSS(cfg)
	p, shards, release, err := holdIdle(ctx, cfg, ds, errs, cfg.users, res)
	if err != nil {
		return err
	}
	defer release()
	if cfg.shard {
		holdShard(ctx)
		return nil
	}

	meter := startCPU(cfg, shards.pids())
	select {
	case <-ctx.Done():
	case <-time.After(cfg.hold):
	}
	res.CPU = meter.stop()
	if p != nil {
		res.PresenceMsgs = p.presence.Load()
	}
	if cfg.pid > 0 {
		before, after := rss.stop(res, spread(0, cfg.users, len(ds)))
		res.Server = &serverFigures{PID: cfg.pid, RSSBeforeKiB: before, RSSAfterKiB: after}
		n := int64(cfg.users)
		if p != nil {
			n = res.Logins
		}
		if n > 0 {
			res.Server.RSSPerUserKiB = round3(float64(after-before) / float64(n))
		}
		fmt.Fprintf(cfg.log, "server RSS %d KiB -> %d KiB: %.2f KiB per idle user\n", before, after, res.Server.RSSPerUserKiB)
		logInstances(cfg.log, res)
	}
	fmt.Fprintln(cfg.log, res.CPU)
	return nil
}
