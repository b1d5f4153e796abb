package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// certCheckInterval is how often the certificate files are checked for a
// renewal (certbot and friends replace them in place). Rare enough that a
// handshake almost never pays for a stat, often enough that a renewed
// certificate is live long before the old one expires.
const certCheckInterval = time.Minute

// tlsFlags are the HTTPS settings: a certificate from files, or one from
// Let's Encrypt via ACME (autocert). With neither, p2pchat serves plain
// HTTP, which is right on a LAN or behind a TLS-terminating proxy.
type tlsFlags struct {
	certFile, keyFile string
	domains           string
	cacheDir          string
	redirectAddr      string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "tls-cert", "", "PEM certificate (chain) file; serve HTTPS with it and -tls-key. Reloaded when the file changes")
	fs.StringVar(&f.keyFile, "tls-key", "", "PEM private key file for -tls-cert")
	fs.StringVar(&f.domains, "autocert-domain", "", "comma-separated domain names to get Let's Encrypt certificates for (ACME); serve HTTPS with them. Needs ports 443 (-addr :443) and usually 80 reachable")
	fs.StringVar(&f.cacheDir, "autocert-cache", "", "directory for ACME account keys and certificates (default: the user cache dir + /p2pchat/autocert)")
	fs.StringVar(&f.redirectAddr, "redirect-addr", "", "address of a plain-HTTP listener that redirects to HTTPS (and answers ACME http-01 challenges); default :80 with -autocert-domain, none otherwise")
}

// check validates the combination of flags.
func (f *tlsFlags) check() error {
	switch {
	case (f.certFile == "") != (f.keyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case f.certFile != "" && f.domains != "":
		return errors.New("-tls-cert and -autocert-domain are exclusive")
	case f.redirectAddr != "" && !f.enabled():
		return errors.New("-redirect-addr needs -tls-cert or -autocert-domain")
	}
	if f.domains != "" && f.redirectAddr == "" {
		f.redirectAddr = ":80"
	}
	return nil
}

func (f *tlsFlags) enabled() bool { return f.certFile != "" || f.domains != "" }

// setup returns the TLS configuration for the main listener (nil: plain
// HTTP) and the handler for the redirect listener (nil: none). httpsAddr is
// the main listener's address, so redirects go to the right port.
func (f *tlsFlags) setup(httpsAddr string, log *slog.Logger) (*tls.Config, http.Handler, error) {
	if !f.enabled() {
		return nil, nil, nil
	}
	_, port, err := net.SplitHostPort(httpsAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing https address %q: %w", httpsAddr, err)
	}
	redirect := redirectHandler(port)
	// HTTP/1.1 only: WebSockets need the HTTP/1.1 Upgrade, and a browser
	// that negotiated h2 might try WebSocket over HTTP/2, which the
	// signaling endpoint does not speak.
	if f.certFile != "" {
		kp := &keyPair{certFile: f.certFile, keyFile: f.keyFile, log: log}
		if err := kp.load(); err != nil {
			return nil, nil, err
		}
		return &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: kp.get,
		}, redirect, nil
	}
	dir := f.cacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, nil, fmt.Errorf("finding a cache dir for autocert (set -autocert-cache): %w", err)
		}
		dir = filepath.Join(base, "p2pchat", "autocert")
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(splitList(f.domains)...),
		Cache:      autocert.DirCache(dir),
	}
	log.Info("https with ACME certificates", "domains", f.domains, "cache", dir)
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	cfg.NextProtos = []string{"http/1.1", acme.ALPNProto}
	return cfg, m.HTTPHandler(redirect), nil
}

// redirectHandler sends GET and HEAD to the same host and path over
// HTTPS on port, and refuses other methods: a form posted over plain HTTP
// has already leaked, redirecting it would hide that.
func redirectHandler(port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "443" {
			host = net.JoinHostPort(host, port)
		} else if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
}

// keyPair serves a certificate from files and reloads it when they change.
// Handshakes never wait for a reload: one of them checks the files while
// the others keep using the current certificate.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	cert    atomic.Pointer[tls.Certificate]
	checkMu sync.Mutex // held only while checking; TryLock'ed
	checked time.Time  // guarded by checkMu
	stamp   string     // guarded by checkMu: sizes and mtimes last loaded
}

func (k *keyPair) load() error {
	stamp, err := k.fileStamp()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("loading tls certificate: %w", err)
	}
	k.cert.Store(&c)
	k.stamp, k.checked = stamp, time.Now()
	return nil
}

func (k *keyPair) fileStamp() (string, error) {
	var s string
	for _, name := range []string{k.certFile, k.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("reading tls file: %w", err)
		}
		s += fi.ModTime().String() + "/" + strconv.FormatInt(fi.Size(), 10) + ";"
	}
	return s, nil
}

func (k *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if k.checkMu.TryLock() {
		if time.Since(k.checked) >= certCheckInterval {
			k.checked = time.Now()
			if stamp, err := k.fileStamp(); err == nil && stamp != k.stamp {
				if err := k.load(); err != nil {
					k.log.Error("tls certificate changed but cannot be loaded; keeping the old one", "err", err)
				} else {
					k.log.Info("tls certificate reloaded", "file", k.certFile)
				}
			}
		}
		k.checkMu.Unlock()
	}
	return k.cert.Load(), nil
}

// wrap puts ln behind TLS if HTTPS is configured and starts the redirect
// listener. It returns the listener to serve, its URL scheme, and a stop
// function for the redirect listener (always safe to call). On error it
// closes ln.
func (f *tlsFlags) wrap(ln net.Listener, log *slog.Logger) (net.Listener, string, func(), error) {
	cfg, redirect, err := f.setup(ln.Addr().String(), log)
	if err != nil {
		_ = ln.Close()
		return nil, "", func() {}, err
	}
	if cfg == nil {
		return ln, "http", func() {}, nil
	}
	stop := func() {}
	if redirect != nil && f.redirectAddr != "" {
		rln, err := net.Listen("tcp", f.redirectAddr)
		if err != nil {
			_ = ln.Close()
			return nil, "", func() {}, fmt.Errorf("listen for https redirect on %s: %w", f.redirectAddr, err)
		}
		rs := &http.Server{
			Handler:           redirect,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		go func() { _ = rs.Serve(rln) }()
		log.Info("redirecting http to https", "addr", rln.Addr().String())
		stop = func() { _ = rs.Close() }
	}
	return tls.NewListener(ln, cfg), "https", stop, nil
}
