package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/p2pchat/p2pchat/server"
)

// fdReserve is how many file descriptors the default global connection
// cap leaves for everything that is not a WebSocket: listeners, TURN
// sockets, certificate files, metrics scrapes.
const fdReserve = 256

// opsFlags are the operations settings: connection caps, the proxies
// whose X-Forwarded-For is believed, and where metrics are served.
type opsFlags struct {
	maxConnsPerIP int
	maxConns      int
	trustedProxy  string
	metricsAddr   string
}

func (f *opsFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "WebSocket connections allowed from one client address (IPv6: one /64); more are refused with HTTP 429. 0 = unlimited")
	fs.IntVar(&f.maxConns, "max-conns", defaultMaxConns(), "WebSocket connections allowed in all; more are refused with HTTP 503. 0 = unlimited. Default: the open-file limit minus 256, so the server refuses cleanly instead of running out of descriptors")
	fs.StringVar(&f.trustedProxy, "trusted-proxy", "", "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For header is believed; from any other peer the TCP address is the client's")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this separate address (e.g. 127.0.0.1:9090) instead of on the main one")
}

// apply validates the flags and writes them into the server config.
func (f *opsFlags) apply(cfg *server.Config) error {
	if f.maxConnsPerIP < 0 || f.maxConns < 0 {
		return errors.New("-max-conns-per-ip and -max-conns must be 0 (unlimited) or positive")
	}
	proxies, err := server.ParseCIDRs(f.trustedProxy)
	if err != nil {
		return fmt.Errorf("-trusted-proxy: %w", err)
	}
	cfg.MaxConnsPerIP, cfg.MaxConns, cfg.TrustedProxies = f.maxConnsPerIP, f.maxConns, proxies
	cfg.Metrics = f.metricsAddr == ""
	return nil
}

// serveMetrics starts the separate metrics listener, if one is set. The
// returned function stops it.
func (f *opsFlags) serveMetrics(srv *server.Server, log *slog.Logger) (stop func(), err error) {
	if f.metricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", f.metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.MetricsHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
