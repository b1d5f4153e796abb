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

// runChurn has cfg.concurrency workers each connect, log in and disconnect
// (with a WebSocket close handshake) in a loop, for cfg.duration or until
// cfg.count logins in all, and reports logins per second.
func runChurn(ctx context.Context, cfg *config, d *dialer, errs *counters, res *result) error {
	var done atomic.Int64
	var started atomic.Int64
	var connect, lg samples
	end := time.Now().Add(cfg.duration)
	meter := startCPU(cfg.pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.concurrency {
		wg.Go(func() {
			var cs, ls []time.Duration
			defer func() { connect.add(cs); lg.add(ls) }()
			for i := 0; ctx.Err() == nil && time.Now().Before(end); i++ {
				if cfg.count > 0 && started.Add(1) > int64(cfg.count) {
					return
				}
				c, dc, dl, err := d.connectAndLogin(ctx, cfg.timeout, cfg.prefix+"w"+strconv.Itoa(w)+"-"+strconv.Itoa(i), cfg.presence)
				if err != nil {
					errs.classify(err)
					continue
				}
				cs, ls = append(cs, dc), append(ls, dl)
				done.Add(1)
				// Close waits for the server's close frame; presence or
				// other data frames still in flight are skipped by it.
				if err := c.Close(websocket.StatusNormalClosure, ""); err != nil && ctx.Err() == nil {
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
