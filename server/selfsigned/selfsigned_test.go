package selfsigned

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadMakesThenKeeps(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sub", "selfsigned")
	now := time.Now()
	c1, made, err := Load(dir, []string{"localhost", "127.0.0.1", "192.168.1.23", "box.local"}, now)
	if err != nil || !made {
		t.Fatalf("first Load: made %v, err %v", made, err)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "192.168.1.23", "box.local"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if leaf.IsCA {
		t.Error("a self-signed LAN certificate must not be a CA")
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	// A second start, later, with other addresses: the same certificate.
	c2, made, err := Load(dir, []string{"10.0.0.9"}, now.Add(24*time.Hour))
	if err != nil || made {
		t.Fatalf("second Load: made %v, err %v", made, err)
	}
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) || Fingerprint(c1) != Fingerprint(c2) {
		t.Error("second Load made a different certificate")
	}
	// Near its end it is replaced.
	c3, made, err := Load(dir, nil, leaf.NotAfter.Add(-RenewBefore/2))
	if err != nil || !made || bytes.Equal(c1.Certificate[0], c3.Certificate[0]) {
		t.Fatalf("Load near expiry: made %v, err %v", made, err)
	}
	if f := Fingerprint(c3); len(f) != 95 {
		t.Errorf("fingerprint %q", f)
	}
}

func TestLoadReplacesBrokenFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, made, err := Load(dir, []string{"localhost"}, time.Now())
	if err != nil || !made {
		t.Fatalf("Load over junk: made %v, err %v", made, err)
	}
	// The files on disk are the pair Load returned.
	onDisk, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil || !bytes.Equal(onDisk.Certificate[0], c.Certificate[0]) {
		t.Fatalf("files on disk: %v", err)
	}
}

func TestLoadUnwritableDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(filepath.Join(file, "dir"), nil, time.Now()); err == nil {
		t.Error("Load under a file: no error")
	}
}

func TestHosts(t *testing.T) {
	t.Parallel()
	h := Hosts()
	if len(h) < 3 || h[0] != "localhost" {
		t.Errorf("Hosts() = %v", h)
	}
}
