package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchat/p2pchat/server/selfsigned"
)

// TestLANHTTPS: a bare start serves plain HTTP and, on a second port,
// HTTPS with a self-signed certificate made on first start and kept in
// its directory; hello on the plain side names the HTTPS port, and the
// signaling works over that listener too.
func TestLANHTTPS(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "selfsigned")
	base, logs := startBinary(t, "-stun=", "-https-addr", "127.0.0.1:0", "-self-signed-dir", dir)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("main listener %q, want plain http", base)
	}
	secure := logs.wait(t, "https for voice and video")
	if !strings.HasPrefix(secure, "https://127.0.0.1:") {
		t.Fatalf("https listener %q", secure)
	}

	// The certificate on disk is the one served.
	kp, err := tls.LoadX509KeyPair(filepath.Join(dir, selfsigned.CertFile), filepath.Join(dir, selfsigned.KeyFile))
	if err != nil {
		t.Fatalf("certificate not kept in %s: %v", dir, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(kp.Leaf)
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   5 * time.Second,
	}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(secure + "/")
	if err != nil {
		t.Fatalf("GET over the self-signed https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET %s/ = %d, CSP %q", secure, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	plain := dialWS(t, base, nil)
	port := string(plain.read("hello")["httpsPort"])
	if want := secure[strings.LastIndex(secure, ":")+1:]; port != want {
		t.Errorf("hello httpsPort %s, want %s", port, want)
	}
	c := dialWS(t, secure, client)
	c.read("hello")
	c.send(map[string]any{"type": "login", "name": "lan"})
	if got := string(c.read("login")["success"]); got != "true" {
		t.Errorf("login over the self-signed wss: success=%s", got)
	}
}

// TestLANHTTPSKeepsCertificate: a second start reuses the certificate of the
// first, so a browser's exception for it keeps working.
func TestLANHTTPSKeepsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, _, err := selfsigned.Load(dir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, logs := startBinary(t, "-stun=", "-https-addr", "127.0.0.1:0", "-self-signed-dir", dir)
	secure := logs.wait(t, "https for voice and video")
	conn, err := tls.Dial("tcp", strings.TrimPrefix(secure, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := conn.ConnectionState().PeerCertificates[0].Raw
	if string(got) != string(first.Certificate[0]) {
		t.Error("the second start serves a new certificate")
	}
}

// TestLANHTTPSOffWithTLS: with a real certificate the main listener is
// HTTPS, there is no second one and hello names no port.
func TestLANHTTPSOffWithTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert := selfSigned(t, t.TempDir(), 7)
	dir := filepath.Join(t.TempDir(), "unused")
	base, logs := startBinary(t, "-stun=", "-tls-cert", certFile, "-tls-key", keyFile, "-https-addr", "127.0.0.1:0", "-self-signed-dir", dir)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	c := dialWS(t, base, client)
	if p, ok := c.read("hello")["httpsPort"]; ok {
		t.Errorf("hello httpsPort %s with -tls-cert", p)
	}
	logs.mu.Lock()
	_, second := logs.seen["https for voice and video"]
	logs.mu.Unlock()
	if second {
		t.Error("a self-signed listener started next to -tls-cert")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a self-signed certificate was made with -tls-cert")
	}
}
