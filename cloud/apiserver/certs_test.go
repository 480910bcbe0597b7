package apiserver

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureCertsCreatesOnceAndReissuesForNewAddresses(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"localhost", "box"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	first, err := EnsureCerts(dir, hosts, ips)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode: %v %v", st.Mode(), err)
	}
	again, err := EnsureCerts(dir, hosts, ips)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.ServerCert, again.ServerCert) || !bytes.Equal(first.CACert, again.CACert) {
		t.Fatal("certificates were regenerated although nothing changed")
	}
	more := append(ips, net.ParseIP("192.0.2.7"))
	third, err := EnsureCerts(dir, hosts, more)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.CACert, third.CACert) {
		t.Fatal("the CA changed: every client would lose trust")
	}
	b, _ := pem.Decode(third.ServerCert)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(third.CACert)
	for _, name := range []string{"localhost", "box", "192.0.2.7", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate does not verify for %s: %v", name, err)
		}
	}
}
