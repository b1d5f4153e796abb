package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runChurn has cfg.concurrency workers each connect, log in and disconnect
// (with a WebSocket close handshake) in a loop, for cfg.duration or until
// cfg.count logins in all, and reports logins per second. Workers use the
// lean client of rawclient.go. Worker w logs in on instance w mod len(ds).
func runChurn(ctx context.Context, cfg *config, ds []*dialer, errs *counters, res *result) error {
	end := time.Now().Add(cfg.duration)
	meter := startCPU(cfg, nil)
	start := time.Now()
	done, cs, ls := churn(ctx, cfg, ds, errs, cfg.concurrency, cfg.count, 0, end, cfg.prefix+"w")
	elapsed := time.Since(start)
	res.CPU = meter.stop()
	res.Logins = done
	res.LoginsPerSec = round3(float64(res.Logins) / elapsed.Seconds())
	res.Connect, res.Login = &cs, &ls
	fmt.Fprintf(cfg.log, "%d logins in %.1fs with concurrency %d: %.0f logins/s\n", res.Logins, elapsed.Seconds(), cfg.concurrency, res.LoginsPerSec)
	fmt.Fprintf(cfg.log, "connect %v; login %v\n", cs, ls)
	fmt.Fprintln(cfg.log, res.CPU)
	if cfg.pid > 0 && res.Logins > 0 {
		rss, _ := procRSS(cfg.pid)
		res.Server = &serverFigures{PID: cfg.pid, RSSAfterKiB: rss, CPUPerLoginUs: round3(res.CPU.ServerCPUS * 1e6 / float64(res.Logins))}
		fmt.Fprintf(cfg.log, "server CPU per login %.1fµs\n", res.Server.CPUPerLoginUs)
	}
	return nil
}

// churn has workers connect, log in as prefix<w>-<i> and disconnect in a
// loop until end (or count logins in all, if positive); worker w logs in
// on instance w mod len(ds). With every > 0 a worker starts a login at
// most that often, so that a slower server is not given fewer logins. It
// returns the logins and their connect and login latencies.
func churn(ctx context.Context, cfg *config, ds []*dialer, errs *counters, workers, count int, every time.Duration, end time.Time, prefix string) (int64, summary, summary) {
	var done atomic.Int64
	var started atomic.Int64
	var connect, lg samples
	var wg sync.WaitGroup
	for w := range workers {
		d := ds[instanceOf(w, len(ds))]
		wg.Go(func() {
			var cs, ls []time.Duration
			defer func() { connect.add(cs); lg.add(ls) }()
			rng := rand.NewChaCha8([32]byte{byte(w), byte(w >> 8)}) // mask keys and nonces: unpredictable enough for a load tool
			next := time.Now().Add(every * time.Duration(w) / time.Duration(workers))
			for i := 0; ctx.Err() == nil && time.Now().Before(end); i++ {
				if count > 0 && started.Add(1) > int64(count) {
					return
				}
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
					if !time.Now().Before(end) {
						return
					}
				}
				t0 := time.Now()
				c, err := d.rawDial(t0.Add(cfg.timeout), rng)
				if err != nil {
					errs.classify(err)
					continue
				}
				t1 := time.Now()
				if err := c.login(t1.Add(cfg.timeout), prefix+strconv.Itoa(w)+"-"+strconv.Itoa(i), cfg.presence); err != nil {
					c.nc.Close()
					errs.classify(err)
					continue
				}
				t2 := time.Now()
				cs, ls = append(cs, t1.Sub(t0)), append(ls, t2.Sub(t1))
				done.Add(1)
				// The close waits for the server's close frame; presence
				// frames still in flight are skipped.
				if err := c.close(t2.Add(cfg.timeout)); err != nil && ctx.Err() == nil {
					errs.add("closed", 1, fmt.Errorf("closing: %w", err))
				}
			}
		})
	}
	wg.Wait()
	return done.Load(), connect.summary(), lg.summary()
}
