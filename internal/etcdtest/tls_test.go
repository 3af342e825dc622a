package etcdtest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/etcdtest"
)

func newCerts(t *testing.T) *etcdtest.Certs {
	t.Helper()
	c, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestNewCerts(t *testing.T) {
	c := newCerts(t)
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, c.CACert))

	server := readCert(t, c.ServerCert)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := server.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("server certificate valid for example.com")
	}
	if _, err := tls.LoadX509KeyPair(c.ServerCert, c.ServerKey); err != nil {
		t.Error(err)
	}

	checkClient := func(certFile, keyFile, wantCN string) {
		t.Helper()
		cert := readCert(t, certFile)
		if cert.Subject.CommonName != wantCN {
			t.Errorf("%s: CN %q, want %q", certFile, cert.Subject.CommonName, wantCN)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", certFile, err)
		}
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			t.Error(err)
		}
	}
	checkClient(c.ClientCert, c.ClientKey, "root")

	cert1, key1, err := c.ClientFor("alice")
	if err != nil {
		t.Fatal(err)
	}
	checkClient(cert1, key1, "alice")
	cert2, _, err := c.ClientFor("alice")
	if err != nil {
		t.Fatal(err)
	}
	if cert1 == cert2 {
		t.Errorf("ClientFor reused the file %s", cert1)
	}

	// A Certs value rebuilt from the paths can still mint certificates.
	c2 := &etcdtest.Certs{Dir: c.Dir, CACert: c.CACert}
	cert3, key3, err := c2.ClientFor("bob/../x")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(cert3) != c.Dir {
		t.Errorf("ClientFor wrote %s outside %s", cert3, c.Dir)
	}
	checkClient(cert3, key3, "bob/../x")

	// Another CA does not verify them.
	other := newCerts(t)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(readCert(t, other.CACert))
	if _, err := server.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: otherRoots}); err == nil {
		t.Error("server certificate verified by another CA")
	}
}

// expectPutFails checks that a client of c's endpoints with tlsCfg and no
// credentials fails to Put, quickly, and returns the error.
func expectPutFails(t *testing.T, c *etcdtest.Cluster, tlsCfg *tls.Config) error {
	t.Helper()
	cfg := c.ClientConfig()
	cfg.TLS = tlsCfg
	cfg.Username, cfg.Password = "", ""
	cfg.DialTimeout = 500 * time.Millisecond
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = cli.Put(ctx, "/tls/denied", "x")
	if err == nil {
		t.Fatal("Put succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Put failed only after %v", d)
	}
	return err
}

func TestWithTLS(t *testing.T) {
	certs := newCerts(t)
	c := etcdtest.New(t, etcdtest.WithTLS(certs))
	m := c.Members[0]
	if !strings.HasPrefix(m.ClientURL(), "https://") || !strings.HasPrefix(m.HTTPURL(), "https://") {
		t.Fatalf("client URLs %s %s, want https", m.ClientURL(), m.HTTPURL())
	}
	if !strings.HasPrefix(m.PeerURL(), "http://") {
		t.Fatalf("peer URL %s, want http", m.PeerURL())
	}
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Fatalf("endpoint %s, want https", ep)
		}
	}
	if c.ClientConfig().TLS == nil {
		t.Fatal("ClientConfig has no TLS")
	}

	ctx := ctxT(t)
	cli := c.Client(t)
	if _, err := cli.Put(ctx, "/tls/k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.ClientFor(t, m).Get(ctx, "/tls/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get = %v, %v", resp, err)
	}
	c.Compact(t, 0)

	// The HTTP endpoints also need a client certificate.
	clientTLS, err := certs.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	hresp, err := hc.Get(m.HTTPURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		t.Fatalf("/health: %s", hresp.Status)
	}
	hc.CloseIdleConnections()

	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, certs.CACert))
	t.Run("no client certificate", func(t *testing.T) {
		expectPutFails(t, c, &tls.Config{RootCAs: roots})
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		other := newCerts(t)
		pair, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		expectPutFails(t, c, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}})
	})
	t.Run("server not trusted", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		expectPutFails(t, c, &tls.Config{Certificates: []tls.Certificate{pair}})
	})
	t.Run("plain TCP", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(m.ClientURL(), "https://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		if strings.Contains(string(buf[:n]), "200 OK") {
			t.Fatal("plain HTTP served")
		}
	})

	// TLS survives a restart.
	m.Stop(t)
	m.Restart(t)
	if _, err := cli.Put(ctx, "/tls/k", "after-restart"); err != nil {
		t.Fatal(err)
	}
}

func TestWithTLSBadCerts(t *testing.T) {
	dir := t.TempDir()
	bad := &etcdtest.Certs{
		Dir:        dir,
		CACert:     filepath.Join(dir, "missing-ca.pem"),
		ServerCert: filepath.Join(dir, "missing-server.pem"),
		ServerKey:  filepath.Join(dir, "missing-server-key.pem"),
		ClientCert: filepath.Join(dir, "missing-client.pem"),
		ClientKey:  filepath.Join(dir, "missing-client-key.pem"),
	}
	_, err := etcdtest.Start(context.Background(), 1, etcdtest.WithTLS(bad), etcdtest.WithDir(filepath.Join(dir, "data")))
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "WithTLS") || !strings.Contains(err.Error(), "missing-client.pem") {
		t.Fatalf("error %q does not name WithTLS and the file", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %q: want os.ErrNotExist in its chain", err)
	}
}
