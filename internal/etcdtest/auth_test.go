package etcdtest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/etcdtest"
)

// rawClient returns a client of c with c's TLS settings and the given
// credentials (none if user is empty).
func rawClient(t *testing.T, c *etcdtest.Cluster, user, password string, tlsCfg *tls.Config) (*clientv3.Client, error) {
	t.Helper()
	cfg := c.ClientConfig()
	cfg.Username, cfg.Password = user, password
	cfg.DialTimeout = 2 * time.Second
	if tlsCfg != nil {
		cfg.TLS = tlsCfg
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { cli.Close() })
	return cli, nil
}

func expectAuthErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestWithAuth(t *testing.T) {
	c := etcdtest.New(t, etcdtest.WithAuth("s3cret"))
	ctx := ctxT(t)

	// No request has been served yet: the first one enables auth first.
	anon, err := rawClient(t, c, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Put(ctx, "/app/k", "x")
	expectAuthErr(t, "put without credentials", err, rpctypes.ErrUserEmpty)

	root := c.Client(t)
	st, err := root.AuthStatus(ctx)
	if err != nil || !st.Enabled {
		t.Fatalf("auth status = %v, %v; want enabled", st, err)
	}
	if _, err := root.Put(ctx, "/app/k", "v"); err != nil {
		t.Fatal(err)
	}

	_, err = rawClient(t, c, etcdtest.RootUser, "wrong", nil)
	expectAuthErr(t, "wrong password", err, rpctypes.ErrAuthFailed)

	c.AddUser(t, "reader", "rpw", "/app/", "")
	c.AddUser(t, "writer", "wpw", "", "/app/")
	reader := c.ClientAs(t, "reader", "rpw")
	resp, err := reader.Get(ctx, "/app/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("reader get = %v, %v", resp, err)
	}
	_, err = reader.Put(ctx, "/app/k", "w")
	expectAuthErr(t, "reader put", err, rpctypes.ErrPermissionDenied)
	_, err = reader.Get(ctx, "/other")
	expectAuthErr(t, "reader get outside its prefix", err, rpctypes.ErrPermissionDenied)
	_, err = reader.Get(ctx, "/ap")
	expectAuthErr(t, "reader get of a shorter key", err, rpctypes.ErrPermissionDenied)

	writer := c.ClientAs(t, "writer", "wpw")
	if _, err := writer.Put(ctx, "/app/k", "w"); err != nil {
		t.Fatal(err)
	}
	_, err = writer.Put(ctx, "/appx", "w")
	expectAuthErr(t, "writer put outside its prefix", err, rpctypes.ErrPermissionDenied)

	if err := c.AddUserErr(ctx, "reader", "x", "/", ""); err == nil {
		t.Fatal("adding an existing user: no error")
	}

	// Auth lives in the data: it survives a restart.
	m := c.Members[0]
	m.Stop(t)
	m.Restart(t)
	if _, err := root.Put(ctx, "/app/k", "after-restart"); err != nil {
		t.Fatal(err)
	}
	_, err = anon.Put(ctx, "/app/k", "x")
	expectAuthErr(t, "put without credentials after restart", err, rpctypes.ErrUserEmpty)
	if _, err := c.ClientAs(t, "reader", "rpw").Get(ctx, "/app/k"); err != nil {
		t.Fatal(err)
	}
	if c.Revision(t) < 2 {
		t.Fatal("revision")
	}
	c.Compact(t, 0)
}

// TestWithAuthCluster checks that auth is on across members from the first
// request, whichever member serves it.
func TestWithAuthCluster(t *testing.T) {
	c := etcdtest.NewCluster(t, 3, etcdtest.WithAuth("pw"))
	ctx := ctxT(t)
	last := c.Members[2]
	cfg := c.ClientConfig(last.ClientURL())
	cfg.Username, cfg.Password = "", ""
	anon, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	_, err = anon.Put(ctx, "/k", "x")
	expectAuthErr(t, "put without credentials", err, rpctypes.ErrUserEmpty)
	for _, m := range c.Members {
		if _, err := c.ClientFor(t, m).Put(ctx, "/k", m.Name); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	lead := c.Leader(t)
	lead.Kill(t)
	lead.Restart(t)
	if _, err := c.ClientFor(t, lead).Put(ctx, "/k", "after-kill"); err != nil {
		t.Fatal(err)
	}
	_, err = anon.Put(ctx, "/k", "x")
	expectAuthErr(t, "put without credentials after kill", err, rpctypes.ErrUserEmpty)
}

func TestWithAuthEmptyPassword(t *testing.T) {
	_, err := etcdtest.Start(context.Background(), 1, etcdtest.WithAuth(""), etcdtest.WithDir(filepath.Join(t.TempDir(), "data")))
	if err == nil || !strings.Contains(err.Error(), "empty root password") {
		t.Fatalf("error %v, want one about the empty password", err)
	}
}

func TestTLSAndAuth(t *testing.T) {
	certs := newCerts(t)
	c := etcdtest.New(t, etcdtest.WithTLS(certs), etcdtest.WithAuth("pw"))
	ctx := ctxT(t)
	if _, err := c.Client(t).Put(ctx, "/app/k", "v"); err != nil {
		t.Fatal(err)
	}

	// A password login takes precedence over the certificate's CN (root).
	c.AddUser(t, "reader", "rpw", "/app/", "")
	reader := c.ClientAs(t, "reader", "rpw")
	if _, err := reader.Get(ctx, "/app/k"); err != nil {
		t.Fatal(err)
	}
	_, err := reader.Put(ctx, "/app/k", "w")
	expectAuthErr(t, "reader put", err, rpctypes.ErrPermissionDenied)

	// Without a password, the certificate's common name is the user.
	rootByCert := c.ClientAs(t, "", "")
	if _, err := rootByCert.Put(ctx, "/app/k", "by-cert"); err != nil {
		t.Fatal(err)
	}
	c.AddUser(t, "certreader", "", "/app/", "")
	certFile, keyFile, err := certs.ClientFor("certreader")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: certs.CACert}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	certReader, err := rawClient(t, c, "", "", tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := certReader.Get(ctx, "/app/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "by-cert" {
		t.Fatalf("cert reader get = %v, %v", resp, err)
	}
	_, err = certReader.Put(ctx, "/app/k", "w")
	expectAuthErr(t, "cert reader put", err, rpctypes.ErrPermissionDenied)

	_, err = rawClient(t, c, etcdtest.RootUser, "wrong", nil)
	expectAuthErr(t, "wrong password", err, rpctypes.ErrAuthFailed)
}
