package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/strataconf/strata/internal/etcdtest"
)

// TestRefusedAndUnknownHost: a refused connection and a host name that
// does not resolve fail at once (not after the dial timeout) and say so.
func TestRefusedAndUnknownHost(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	const dial = 20 * time.Second
	cases := []struct{ eps, want string }{
		{refused, refused + ": connection refused"},
	}
	const unknown = "strata-test-no-such-host.invalid"
	_, err = net.DefaultResolver.LookupHost(context.Background(), unknown)
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		cases = append(cases, struct{ eps, want string }{unknown + ":2379", unknown + ":2379: no such host"})
	} else {
		t.Logf("the resolver does not say %s does not exist (%v): not tried", unknown, err)
	}
	for _, tc := range cases {
		start := time.Now()
		code, _, errOut := runCLI(t, "", "--endpoints", tc.eps, "--prefix", "/p", "--dial-timeout", dial.String(),
			"--command-timeout", "0", "get")
		elapsed := time.Since(start)
		t.Logf("%s: %v: %s", tc.eps, elapsed, errOut)
		if code != exitError || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "no endpoint answered") {
			t.Errorf("%s: exit %d, stderr %q; want exit %d saying %q", tc.eps, code, errOut, exitError, tc.want)
		}
		if elapsed > dial/2 {
			t.Errorf("%s: failed after %v: it waited for the dial timeout (%v)", tc.eps, elapsed, dial)
		}
	}
}

// TestAuthWithoutUser: a cluster with authentication on, reached without
// --user, gets an error that says to give --user.
func TestAuthWithoutUser(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t, etcdtest.WithAuth("root-pw"))
	code, _, errOut := runCLI(t, "", "--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", "/p", "get")
	t.Logf("%s", errOut)
	if code != exitError || !strings.Contains(errOut, "give --user") || strings.Contains(errOut, "user name is empty") {
		t.Errorf("exit %d, stderr %q; want exit %d saying to give --user", code, errOut, exitError)
	}
}

// TestRequestTooLarge: a write larger than etcd accepts says the limit in
// bytes and what counts towards it, whether the client's gRPC limit (2 MiB)
// or the server's --max-request-bytes refuses it.
func TestRequestTooLarge(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t, etcdtest.WithConfig(func(cfg *embed.Config) { cfg.MaxRequestBytes = 64 << 10 }))
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", "/big"}
	r := rand.New(rand.NewPCG(1, 2)) // incompressible values
	value := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[r.IntN(36)]
		}
		return string(b)
	}
	for _, n := range []int{100 << 10, 3 << 20} {
		doc := writeFile(t, "big.yaml", "blob: "+value(n)+"\n")
		code, _, errOut := runCLI(t, "", append(flags, "push", "-f", doc)...)
		t.Logf("%d bytes: %s", n, errOut)
		if code != exitError {
			t.Errorf("%d bytes: exit %d, want %d", n, code, exitError)
		}
		for _, want := range []string{"--max-request-bytes", "1572864 bytes", "release record"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%d bytes: stderr does not say %q: %q", n, want, errOut)
			}
		}
		if strings.Contains(errOut, "rpc error") || strings.Contains(errOut, "2097152") {
			t.Errorf("%d bytes: stderr gives gRPC's limit: %q", n, errOut)
		}
	}
}
