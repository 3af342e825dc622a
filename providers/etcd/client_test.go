package etcd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strataconf/strata/internal/etcdtest"
	"github.com/strataconf/strata/providers/etcd"
)

// clientTestNoLeaks checks, once the test and its cleanups (clusters,
// clients) are done, that the test left no goroutine behind. The tests of
// this file do not run in parallel, so no other test's goroutines show.
func clientTestNoLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // runs last
}

func clientTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestClient(t *testing.T, cfg etcd.ClientConfig) *clientv3.Client {
	t.Helper()
	cli, err := etcd.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// hostPorts strips the schemes of endpoints.
func hostPorts(eps []string) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		_, out[i], _ = strings.Cut(ep, "://")
	}
	return out
}

func TestNewClientConfigErrors(t *testing.T) {
	clientTestNoLeaks(t)
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	ep := []string{"127.0.0.1:2379"}
	for _, tc := range []struct {
		name string
		cfg  etcd.ClientConfig
		want []string // substrings of the error
	}{
		{"no endpoints", etcd.ClientConfig{}, []string{"no endpoints"}},
		{"empty endpoint", etcd.ClientConfig{Endpoints: []string{"a:1", " "}}, []string{"empty endpoint"}},
		{"bad scheme", etcd.ClientConfig{Endpoints: []string{"ftp://a:1"}}, []string{"ftp://a:1", "unsupported scheme"}},
		{"no host", etcd.ClientConfig{Endpoints: []string{"https://"}}, []string{"no host"}},
		{"missing CA", etcd.ClientConfig{Endpoints: ep, CACert: missing},
			[]string{"etcd [127.0.0.1:2379]", "CA certificate", missing, "no such file"}},
		{"CA not PEM", etcd.ClientConfig{Endpoints: ep, CACert: notPEM}, []string{notPEM, "no PEM certificate"}},
		{"missing cert", etcd.ClientConfig{Endpoints: ep, CACert: certs.CACert, Cert: missing, Key: certs.ClientKey},
			[]string{"etcd [127.0.0.1:2379]", "client certificate", missing}},
		{"key does not match", etcd.ClientConfig{Endpoints: ep, Cert: certs.ClientCert, Key: certs.ServerKey},
			[]string{"client certificate", certs.ClientCert}},
		{"cert without key", etcd.ClientConfig{Endpoints: ep, Cert: certs.ClientCert}, []string{"without its key"}},
		{"key without cert", etcd.ClientConfig{Endpoints: ep, Key: certs.ClientKey}, []string{"without its certificate"}},
		{"TLS and files", etcd.ClientConfig{Endpoints: ep, TLS: &tls.Config{}, CACert: certs.CACert}, []string{"TLS is set"}},
		{"user without password", etcd.ClientConfig{Endpoints: ep, Username: "bob"}, []string{`"bob"`, "without a password"}},
		{"password without user", etcd.ClientConfig{Endpoints: ep, Password: "x"}, []string{"without a user"}},
		{"http with TLS", etcd.ClientConfig{Endpoints: []string{"http://127.0.0.1:1"}, CACert: certs.CACert},
			[]string{"http://127.0.0.1:1", "TLS is configured"}},
		{"http mixed with https", etcd.ClientConfig{Endpoints: []string{"https://127.0.0.1:1", "http://127.0.0.1:2"}},
			[]string{"http://127.0.0.1:2", "TLS is configured"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := etcd.NewClient(tc.cfg)
			if err == nil {
				cli.Close()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewClientEndpoints(t *testing.T) {
	clientTestNoLeaks(t)
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  etcd.ClientConfig
		want []string
	}{
		{"plain", etcd.ClientConfig{Endpoints: []string{"127.0.0.1:1", " localhost:2 "}},
			[]string{"http://127.0.0.1:1", "http://localhost:2"}},
		{"CA file", etcd.ClientConfig{Endpoints: []string{"127.0.0.1:1"}, CACert: certs.CACert},
			[]string{"https://127.0.0.1:1"}},
		{"TLS", etcd.ClientConfig{Endpoints: []string{"127.0.0.1:1"}, TLS: &tls.Config{}},
			[]string{"https://127.0.0.1:1"}},
		{"one https", etcd.ClientConfig{Endpoints: []string{"https://127.0.0.1:1", "127.0.0.1:2"}},
			[]string{"https://127.0.0.1:1", "https://127.0.0.1:2"}},
		{"schemes kept", etcd.ClientConfig{Endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}},
			[]string{"http://127.0.0.1:1", "http://127.0.0.1:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newTestClient(t, tc.cfg) // connects lazily: nothing listens
			if got := cli.Endpoints(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("endpoints %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewClientPlain(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	ctx := clientTestCtx(t)
	cli := newTestClient(t, etcd.ClientConfig{Endpoints: hostPorts(c.Endpoints())})
	if _, err := cli.Put(ctx, "/p/data/k", "v"); err != nil {
		t.Fatal(err)
	}
	d, err := etcd.New(cli, "/p").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.KVs["/p/data/k"]); got != "v" {
		t.Fatalf("read %q", got)
	}
}

func TestNewClientTLS(t *testing.T) {
	clientTestNoLeaks(t)
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.New(t, etcdtest.WithTLS(certs))
	ctx := clientTestCtx(t)

	for name, eps := range map[string][]string{"https": c.Endpoints(), "host:port": hostPorts(c.Endpoints())} {
		cli := newTestClient(t, etcd.ClientConfig{Endpoints: eps, CACert: certs.CACert, Cert: certs.ClientCert, Key: certs.ClientKey})
		if _, err := cli.Put(ctx, "/tls/k", name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp, err := cli.Get(ctx, "/tls/k")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != name {
			t.Fatalf("%s: get = %v, %v", name, resp, err)
		}
	}

	tlsCfg, err := certs.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	cli := newTestClient(t, etcd.ClientConfig{Endpoints: hostPorts(c.Endpoints()), TLS: tlsCfg})
	if _, err := cli.Get(ctx, "/tls/k"); err != nil {
		t.Fatalf("with TLS: %v", err)
	}

	other, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  etcd.ClientConfig
	}{
		{"no client certificate", etcd.ClientConfig{CACert: certs.CACert}},
		{"client certificate of another CA", etcd.ClientConfig{CACert: certs.CACert, Cert: other.ClientCert, Key: other.ClientKey}},
		{"server of another CA", etcd.ClientConfig{CACert: other.CACert, Cert: certs.ClientCert, Key: certs.ClientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Endpoints = c.Endpoints()
			cfg.DialTimeout = 300 * time.Millisecond
			cli := newTestClient(t, cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			_, err := cli.Put(ctx, "/tls/denied", "x")
			if err == nil {
				t.Fatal("put succeeded")
			}
			if !etcd.ErrorIsUnavailable(err) || etcd.ErrorIsAuth(err) {
				t.Fatalf("error %v: unavailable %v, auth %v", err, etcd.ErrorIsUnavailable(err), etcd.ErrorIsAuth(err))
			}
		})
	}
}

func TestNewClientAuth(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t, etcdtest.WithAuth("rootpw"))
	ctx := clientTestCtx(t)
	eps := c.Endpoints()

	root := newTestClient(t, etcd.ClientConfig{Endpoints: eps, Username: "root", Password: "rootpw"})
	if _, err := root.Put(ctx, "/app/data/port", "5432"); err != nil {
		t.Fatal(err)
	}

	c.AddUser(t, "reader", "readpw", "/app/", "")
	reader := newTestClient(t, etcd.ClientConfig{Endpoints: eps, Username: "reader", Password: "readpw"})
	d, err := etcd.New(reader, "/app").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.KVs["/app/data/port"]); got != "5432" {
		t.Fatalf("reader read %q", got)
	}
	_, err = reader.Put(ctx, "/app/data/port", "1")
	if !errors.Is(err, rpctypes.ErrPermissionDenied) || !etcd.ErrorIsAuth(err) || etcd.ErrorIsUnavailable(err) {
		t.Fatalf("reader put: %v (auth %v)", err, etcd.ErrorIsAuth(err))
	}

	// Wrong credentials fail in NewClient, clearly.
	for _, user := range []string{"root", "reader", "nobody"} {
		_, err = etcd.NewClient(etcd.ClientConfig{Endpoints: eps, Username: user, Password: "wrong"})
		if err == nil {
			t.Fatalf("%s with a wrong password: no error", user)
		}
		want := fmt.Sprintf("etcd [%s]: authentication failed for user %q", eps[0], user)
		if !strings.HasPrefix(err.Error(), want) || !etcd.ErrorIsAuth(err) || !errors.Is(err, rpctypes.ErrAuthFailed) {
			t.Fatalf("error %q: want prefix %q and ErrorIsAuth", err, want)
		}
	}

	// No credentials: every call fails as an auth error.
	anon := newTestClient(t, etcd.ClientConfig{Endpoints: eps})
	if _, err := anon.Get(ctx, "/app/data/port"); !etcd.ErrorIsAuth(err) {
		t.Fatalf("get without credentials: %v", err)
	}
}

func TestNewClientTLSAndAuth(t *testing.T) {
	clientTestNoLeaks(t)
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.New(t, etcdtest.WithTLS(certs), etcdtest.WithAuth("rootpw"))
	ctx := clientTestCtx(t)
	tlsFiles := func(user, password string) etcd.ClientConfig {
		return etcd.ClientConfig{Endpoints: hostPorts(c.Endpoints()), Username: user, Password: password,
			CACert: certs.CACert, Cert: certs.ClientCert, Key: certs.ClientKey}
	}
	root := newTestClient(t, tlsFiles("root", "rootpw"))
	if _, err := root.Put(ctx, "/app/k", "v"); err != nil {
		t.Fatal(err)
	}
	c.AddUser(t, "reader", "readpw", "/app/", "")
	reader := newTestClient(t, tlsFiles("reader", "readpw"))
	if _, err := reader.Get(ctx, "/app/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Put(ctx, "/app/k", "x"); !etcd.ErrorIsAuth(err) {
		t.Fatalf("reader put: %v", err)
	}
	_, err = etcd.NewClient(tlsFiles("root", "wrong"))
	if err == nil || !strings.Contains(err.Error(), "https://") || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestNewClientUnreachable(t *testing.T) {
	clientTestNoLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = etcd.NewClient(etcd.ClientConfig{Endpoints: []string{addr}, Username: "root", Password: "x", DialTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if !etcd.ErrorIsUnavailable(err) || etcd.ErrorIsAuth(err) || !strings.Contains(err.Error(), "http://"+addr) {
		t.Fatalf("error %q: want unavailable, naming the endpoint", err)
	}
}

func TestErrorIs(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("op: %w", err) }
	for _, tc := range []struct {
		err               error
		auth, unavailable bool
	}{
		{nil, false, false},
		{errors.New("boom"), false, false},
		{rpctypes.ErrPermissionDenied, true, false},
		{wrap(rpctypes.ErrAuthFailed), true, false},
		{wrap(rpctypes.ErrInvalidAuthToken), true, false},
		{wrap(rpctypes.ErrUserEmpty), true, false},
		{rpctypes.ErrGRPCPermissionDenied, true, false},
		{status.Error(codes.Unauthenticated, "x"), true, false},
		{wrap(context.DeadlineExceeded), false, true},
		{wrap(rpctypes.ErrNoLeader), false, true},
		{wrap(rpctypes.ErrTimeout), false, true},
		{status.Error(codes.Unavailable, "connection refused"), false, true},
		{wrap(clientv3.ErrNoAvailableEndpoints), false, true},
		{rpctypes.ErrCompacted, false, false},
		{context.Canceled, false, false},
	} {
		if got := etcd.ErrorIsAuth(tc.err); got != tc.auth {
			t.Errorf("ErrorIsAuth(%v) = %v", tc.err, got)
		}
		if got := etcd.ErrorIsUnavailable(tc.err); got != tc.unavailable {
			t.Errorf("ErrorIsUnavailable(%v) = %v", tc.err, got)
		}
	}
}
