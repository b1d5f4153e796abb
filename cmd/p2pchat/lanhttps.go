package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/p2pchat/p2pchat/server/selfsigned"
)

// defaultLANHTTPSAddr is where a bare p2pchat also serves HTTPS with a
// self-signed certificate: 8443 is the customary "second HTTPS port",
// next to the default :8080.
const defaultLANHTTPSAddr = ":8443"

// lanHTTPSFlags is the second listener that makes voice and video work on
// a LAN out of the box: browsers allow the camera and microphone only in a
// secure context, which http://192.168.1.23:8080 is not. With -tls-cert or
// -autocert-domain the main listener is HTTPS already and this one stays
// off.
type lanHTTPSFlags struct {
	addr string
	dir  string
}

func (f *lanHTTPSFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "https-addr", defaultLANHTTPSAddr, "address of a second listener serving HTTPS with a self-signed certificate, so voice and video work on a LAN (browsers allow the camera only over HTTPS); empty turns it off. Off with -tls-cert or -autocert-domain")
	fs.StringVar(&f.dir, "self-signed-dir", "", "directory keeping the self-signed certificate of -https-addr, made on first start (default: the user cache dir + /p2pchat/selfsigned)")
}

// listen opens the self-signed HTTPS listener, or returns nil if it is off.
// A busy default port is not fatal: plain HTTP still serves chat.
func (f *lanHTTPSFlags) listen(ctx context.Context, tlsOn bool, log *slog.Logger) (net.Listener, error) {
	if f.addr == "" || tlsOn {
		return nil, nil
	}
	dir := f.dir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			log.Warn("no https listener: no cache dir for its certificate (set -self-signed-dir, or -https-addr= to silence this)", "err", err)
			return nil, nil
		}
		dir = filepath.Join(base, "p2pchat", "selfsigned")
	}
	cert, made, err := selfsigned.Load(dir, selfsigned.Hosts(), time.Now())
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate for -https-addr: %w", err)
	}
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", f.addr)
	if err != nil {
		if f.addr == defaultLANHTTPSAddr {
			log.Warn("no https listener for voice and video (port busy?); set -https-addr", "addr", f.addr, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("listen on -https-addr %s: %w", f.addr, err)
	}
	if made {
		log.Info("made a self-signed certificate", "dir", dir)
	}
	log.Info("https certificate", "sha256", selfsigned.Fingerprint(cert),
		"note", "browsers warn about this self-signed certificate once: check the fingerprint, then choose Advanced, Proceed")
	// HTTP/1.1 only, as on the main listener: WebSockets need Upgrade.
	return tls.NewListener(ln, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
		Certificates: []tls.Certificate{cert},
	}), nil
}

// serveLANHTTPS serves h on ln until stop is called.
func serveLANHTTPS(ln net.Listener, h http.Handler, log *slog.Logger) (stop func(ctx context.Context)) {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Browsers that have not accepted the certificate yet fail every
		// handshake: that is expected, not worth a log line each.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { _ = hs.Serve(ln) }()
	return func(ctx context.Context) { _ = hs.Shutdown(ctx) }
}
