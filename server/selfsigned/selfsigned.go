// Package selfsigned keeps a self-signed TLS certificate in a directory:
// made on first use, loaded on every later start, replaced only when it
// nears its end.
//
// It exists for one reason: browsers allow the camera and microphone only
// in a secure context (HTTPS, or localhost), so a plain-HTTP p2pchat on a
// LAN could chat but never talk. A self-signed certificate makes the page
// secure after one click through the browser's warning. Keeping the same
// certificate across restarts keeps that click a one-time thing: a browser
// remembers the exception for the certificate it was shown, so the key
// and certificate are not remade when the machine's addresses change (a
// name the certificate does not cover is part of the same warning).
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validity is how long a new certificate is valid. Browsers cap the
// lifetime of publicly trusted certificates, not of a self-signed one a
// user accepted by hand; two years keeps renewals (and warnings) rare.
const Validity = 2 * 365 * 24 * time.Hour

// RenewBefore is how long before its end a certificate is replaced.
const RenewBefore = 30 * 24 * time.Hour

// File names inside the directory.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Load returns the certificate kept in dir, first making one (and dir)
// if there is none, it cannot be read, or it ends within RenewBefore of
// now. hosts (names and IP addresses) go into a new certificate's subject
// alternative names. made reports whether a new certificate was written.
func Load(dir string, hosts []string, now time.Time) (cert tls.Certificate, made bool, err error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && c.Leaf != nil &&
		now.Add(RenewBefore).Before(c.Leaf.NotAfter) && !now.Before(c.Leaf.NotBefore) {
		return c, false, nil
	}
	certPEM, keyPEM, err := generate(hosts, now)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("making certificate directory: %w", err)
	}
	// The key first: a crash between the two writes leaves a pair that
	// does not load, which the next start replaces.
	if err := writeFile(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFile(certPath, certPEM); err != nil {
		return tls.Certificate{}, false, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("loading the new certificate: %w", err)
	}
	return c, true, nil
}

// Fingerprint is the SHA-256 of the certificate, as browsers show it
// (colon-separated upper-case hex), for comparing with what a browser
// warning displays.
func Fingerprint(c tls.Certificate) string {
	if len(c.Certificate) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.Certificate[0])
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// generate makes an ECDSA P-256 key and a self-signed server certificate
// for hosts, PEM-encoded.
func generate(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generating a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"p2pchat"}, CommonName: "p2pchat self-signed"},
		NotBefore:    now.Add(-time.Hour), // tolerate clocks a little behind
		NotAfter:     now.Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Not a CA: a certificate a user trusts by hand must not be able
		// to vouch for other sites.
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFile writes data to name through a temporary file and a rename, so
// a reader never sees half a file; the key's file is readable by its
// owner only.
func writeFile(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// Hosts lists the names and addresses a LAN certificate should cover:
// localhost, the loopback addresses, the host name (and its .local mDNS
// twin) and every non-link-local address of the machine's interfaces.
func Hosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
		if !strings.Contains(h, ".") {
			hosts = append(hosts, h+".local")
		}
	}
	addrs, _ := net.InterfaceAddrs() // none: the loopback names still work
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && !ipnet.IP.IsLinkLocalUnicast() {
			hosts = append(hosts, ipnet.IP.String())
		}
	}
	return hosts
}
