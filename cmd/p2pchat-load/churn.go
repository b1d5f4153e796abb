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
	var done atomic.Int64
	var started atomic.Int64
	var connect, lg samples
	end := time.Now().Add(cfg.duration)
	meter := startCPU(cfg, nil)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		d := ds[instanceOf(w, len(ds))]
		wg.Go(func() {
			var cs, ls []time.Duration
			defer func() { connect.add(cs); lg.add(ls) }()
			rng := rand.NewChaCha8([32]byte{byte(w), byte(w >> 8)}) // mask keys and nonces: unpredictable enough for a load tool
			for i := 0; ctx.Err() == nil && time.Now().Before(end); i++ {
				if cfg.count > 0 && started.Add(1) > int64(cfg.count) {
					return
				}
				t0 := time.Now()
				c, err := d.rawDial(t0.Add(cfg.timeout), rng)
				if err != nil {
					errs.classify(err)
					continue
				}
				t1 := time.Now()
				if err := c.login(t1.Add(cfg.timeout), cfg.prefix+"w"+strconv.Itoa(w)+"-"+strconv.Itoa(i), cfg.presence); err != nil {
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
	elapsed := time.Since(start)
	res.CPU = meter.stop()
	res.Logins = done.Load()
	res.LoginsPerSec = round3(float64(res.Logins) / elapsed.Seconds())
	cs, ls := connect.summary(), lg.summary()
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
