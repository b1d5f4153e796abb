// Command p2pchat serves the p2pchat browser client and its WebSocket
// signaling server from one binary.
//
// Every flag has an environment twin: -read-limit is P2PCHAT_READ_LIMIT.
// A flag given on the command line wins over its environment variable.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/p2pchat/p2pchat/server"
)

// shutdownTimeout bounds a graceful stop: clients get a 1001 close, then
// the process exits even if some never answered.
const shutdownTimeout = 4 * time.Second

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		if errors.Is(err, errHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "p2pchat:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.logFormat, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("p2pchat stopped", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	relay, err := cfg.ice.apply(&cfg.server.Signaling, log)
	if err != nil {
		return err
	}
	if relay != nil {
		defer relay.Close()
		cfg.server.MetricsWriters = append(cfg.server.MetricsWriters, relay.WriteMetrics)
	}
	lanLn, err := cfg.lanHTTPS.listen(ctx, cfg.tls.enabled(), log)
	if err != nil {
		return err
	}
	if lanLn != nil {
		defer lanLn.Close() // if run fails before serving it; harmless after
		cfg.server.Signaling.HTTPSPort = lanLn.Addr().(*net.TCPAddr).Port
	}
	openNATS := cfg.nats.prepare(&cfg.server)
	srv := server.New(cfg.server, log)
	leaveNATS, err := openNATS(ctx, srv, log)
	if err != nil {
		return err
	}
	defer leaveNATS() // after srv.Shutdown below: the names go back first
	stopMetrics, err := cfg.ops.serveMetrics(srv, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// No TCP keep-alive: WebSocket pings find dead peers, and the four
	// setsockopt calls per accepted connection are a tenth of what a
	// login costs the server.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	ln, scheme, stopRedirect, err := cfg.tls.wrap(ln, log)
	if err != nil {
		return err
	}
	defer stopRedirect()
	if ln, err = srv.Listener(ln); err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	logURLs(log, ln.Addr().(*net.TCPAddr), scheme, "p2pchat listening", "reachable at")
	stopLAN := func(context.Context) {}
	if lanLn != nil {
		stopLAN = serveLANHTTPS(lanLn, srv.Handler(), log)
		logURLs(log, lanLn.Addr().(*net.TCPAddr), "https", "https for voice and video", "https reachable at")
	}

	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Close the WebSockets first: http.Server.Shutdown cannot see them
	// (they are hijacked), and the hub refuses new ones from now on.
	_ = srv.Shutdown(sctx)
	stopLAN(sctx)
	if err := httpSrv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newLogger returns a text or JSON slog logger.
func newLogger(format string, w *os.File) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// logURLs logs every URL the server can be reached at: the point of
// p2pchat is to open it from another machine, so show the LAN addresses.
func logURLs(log *slog.Logger, addr *net.TCPAddr, scheme, msg, more string) {
	port := addr.Port
	if !addr.IP.IsUnspecified() {
		log.Info(msg, "url", fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(addr.IP.String(), fmt.Sprint(port))))
		return
	}
	log.Info(msg, "url", fmt.Sprintf("%s://localhost:%d", scheme, port))
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Warn("cannot list interface addresses", "err", err)
		return
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		log.Info(more, "url", fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(ipnet.IP.String(), fmt.Sprint(port))))
	}
}
