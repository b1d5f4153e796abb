package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a fresh self-signed certificate for 127.0.0.1 and
// localhost into dir and returns the file names and the certificate.
func selfSigned(t *testing.T, dir string, serial int64) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "p2pchat test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "PRIVATE KEY", keyDER)
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert := selfSigned(t, t.TempDir(), 1)
	base, logs := startBinary(t, "-stun=", "-tls-cert", certFile, "-tls-key", keyFile, "-redirect-addr", "127.0.0.1:0")
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("listening at %q, want https", base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   5 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)

	t.Run("page over https", func(t *testing.T) {
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
			t.Fatalf("GET / = %d, %.80q", resp.StatusCode, body)
		}
		if resp.TLS == nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1 {
			t.Errorf("not served with the test certificate: %+v", resp.TLS)
		}
	})

	t.Run("signaling over wss", func(t *testing.T) {
		c := dialWS(t, base, client) // https://… becomes wss://…/ws
		if got := string(c.read("hello")["iceServers"]); got != "[]" {
			t.Errorf("hello iceServers %s", got)
		}
		c.send(map[string]any{"type": "login", "name": "secure"})
		if got := string(c.read("login")["success"]); got != "true" {
			t.Errorf("login over wss: success=%s", got)
		}
	})

	t.Run("plain http redirects", func(t *testing.T) {
		redirectAddr := logs.wait(t, "redirecting http to https")
		plain := &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		resp, err := plain.Get("http://" + redirectAddr + "/room?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := base + "/room?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Errorf("redirect = %d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		resp, err = plain.Post("http://"+redirectAddr+"/", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST over http = %d, want 400", resp.StatusCode)
		}
	})

	t.Run("plain http on the https port fails", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http" + strings.TrimPrefix(base, "https") + "/")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("page served over plain http on the https port")
			}
		}
	})
}

func TestCertificateReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir, 1)
	kp := &keyPair{certFile: certFile, keyFile: keyFile, log: newURLCatcher().logger()}
	if err := kp.load(); err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		c, _ := kp.get(nil)
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.SerialNumber.Int64()
	}
	selfSigned(t, dir, 2) // renewed in place
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(certFile, past, past); err != nil { // a distinct mtime even on coarse clocks
		t.Fatal(err)
	}
	if got := serial(); got != 1 {
		t.Fatalf("reloaded before the check interval: serial %d", got)
	}
	kp.checkMu.Lock()
	kp.checked = time.Time{}
	kp.checkMu.Unlock()
	if got := serial(); got != 2 {
		t.Errorf("after renewal serial %d, want 2", got)
	}
	// A broken renewal keeps the working certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	kp.checkMu.Lock()
	kp.checked = time.Time{}
	kp.checkMu.Unlock()
	if got := serial(); got != 2 {
		t.Errorf("after a broken renewal serial %d, want 2 kept", got)
	}
}

// TestAutocertSetup checks the ACME wiring without reaching an ACME server:
// only the listed names get certificates, the redirect listener redirects
// to the https port, and HTTP/2 is not offered.
func TestAutocertSetup(t *testing.T) {
	t.Parallel()
	f := &tlsFlags{domains: "chat.example.org", cacheDir: t.TempDir()}
	if err := f.check(); err != nil {
		t.Fatal(err)
	}
	if f.redirectAddr != ":80" {
		t.Errorf("autocert redirect listener %q, want :80 by default", f.redirectAddr)
	}
	cfg, redirect, err := f.setup("0.0.0.0:8443", newURLCatcher().logger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.org"}); err == nil {
		t.Error("certificate offered for a name not in -autocert-domain")
	}
	for _, p := range cfg.NextProtos {
		if p == "h2" {
			t.Errorf("NextProtos %v offer h2", cfg.NextProtos)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://chat.example.org/x?y=1", nil)
	rec := httptest.NewRecorder()
	redirect.ServeHTTP(rec, req)
	if got := rec.Header().Get("Location"); rec.Code != http.StatusMovedPermanently || got != "https://chat.example.org:8443/x?y=1" {
		t.Errorf("redirect = %d %q", rec.Code, got)
	}
}
