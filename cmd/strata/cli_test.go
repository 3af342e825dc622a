package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/internal/etcdtest"
)

// runCLI runs the program in-process with args (no environment fallbacks
// are relied on: tests pass every flag) and returns its exit code and
// output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSAuth runs strata against a cluster that serves TLS, requires
// client certificates and has authentication on: a read-only user can read
// but its push fails with a permission error (exit 1, nothing written); a
// read-write user's push succeeds; so does a user known by the common name
// of its certificate.
func TestTLSAuth(t *testing.T) {
	t.Parallel()
	certs, err := etcdtest.NewCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := etcdtest.New(t, etcdtest.WithTLS(certs), etcdtest.WithAuth("root-pw"))
	const prefix = "/strata/secure"
	c.AddUser(t, "reader", "reader-pw", prefix+"/", "")
	c.AddUser(t, "writer", "writer-pw", "", prefix+"/")
	c.AddUser(t, "deployer", "", "", prefix+"/") // by certificate only
	deployCert, deployKey, err := certs.ClientFor("deployer")
	if err != nil {
		t.Fatal(err)
	}
	// host:port endpoints: strata gives them https:// because TLS is set.
	var eps []string
	for _, ep := range c.Endpoints() {
		eps = append(eps, strings.TrimPrefix(ep, "https://"))
	}
	doc := writeFile(t, "app.yaml", "name: payments\nport: 8080\n")
	tlsFlags := []string{"--endpoints", strings.Join(eps, ","), "--prefix", prefix, "--dial-timeout", "5s",
		"--cacert", certs.CACert, "--cert", certs.ClientCert, "--key", certs.ClientKey}
	as := func(user string, args ...string) []string {
		return append(append(append([]string{}, tlsFlags...), "--user", user), args...)
	}

	code, out, errOut := runCLI(t, "", as("writer:writer-pw", "push", "-f", doc, "--author", "w")...)
	if code != 0 || !strings.Contains(out, "wrote version 1") {
		t.Fatalf("writer push: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	code, out, errOut = runCLI(t, "", as("reader", "--password", "reader-pw", "get", "port")...)
	if code != 0 || !strings.Contains(out, `"8080"`) {
		t.Fatalf("reader get: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	doc2 := writeFile(t, "app2.yaml", "name: payments\nport: 9090\n")
	code, out, errOut = runCLI(t, "", as("reader:reader-pw", "push", "-f", doc2)...)
	if code != exitError {
		t.Fatalf("reader push: exit %d, want %d\nstdout: %s\nstderr: %s", code, exitError, out, errOut)
	}
	if !strings.HasPrefix(errOut, "strata: ") || !strings.Contains(errOut, "permission denied") ||
		!strings.Contains(errOut, eps[0]) || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("reader push: want one line naming the endpoint and the permission error, got %q", errOut)
	}
	t.Logf("reader push: %s", errOut)
	if !strings.Contains(errOut, `etcd user "reader"`) {
		t.Errorf("reader push: the error does not name the user: %q", errOut)
	}

	code, _, errOut = runCLI(t, "", as("reader:wrong", "get")...)
	if code != exitError || !strings.Contains(errOut, "authentication failed") {
		t.Fatalf("wrong password: exit %d, stderr %q", code, errOut)
	}

	// The user named by the certificate, without a password.
	certFlags := []string{"--endpoints", strings.Join(eps, ","), "--prefix", prefix, "--dial-timeout", "5s",
		"--cacert", certs.CACert, "--cert", deployCert, "--key", deployKey}
	code, out, errOut = runCLI(t, "", append(certFlags, "push", "-f", doc2, "--author", "d")...)
	if code != 0 || !strings.Contains(out, "~ port: 8080 → 9090") {
		t.Fatalf("certificate user push: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", as("reader:reader-pw", "history")...)
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("history: exit %d\n%s", code, out)
	}

	// Without a client certificate the server refuses the handshake: the
	// command fails within the dial timeout, naming the endpoints.
	start := time.Now()
	code, _, errOut = runCLI(t, "", "--endpoints", strings.Join(eps, ","), "--prefix", prefix,
		"--cacert", certs.CACert, "--dial-timeout", "1s", "get")
	if code != exitError || !strings.Contains(errOut, eps[0]) {
		t.Fatalf("no client certificate: exit %d, stderr %q", code, errOut)
	}
	t.Logf("no cert: %s", errOut)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("no client certificate: failed after %v, want about the 1s dial timeout", d)
	}
}

// TestUnreachableWithinDialTimeout checks that endpoints that refuse
// connections, or accept them and never answer, make a command fail
// within --dial-timeout (plus slack), naming them.
func TestUnreachableWithinDialTimeout(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()

	for _, eps := range []string{refused, silent.Addr().String(), refused + "," + silent.Addr().String()} {
		const dial = 700 * time.Millisecond
		start := time.Now()
		code, _, errOut := runCLI(t, "", "--endpoints", eps, "--prefix", "/p", "--dial-timeout", dial.String(), "history")
		elapsed := time.Since(start)
		t.Logf("%s: %v: %s", eps, elapsed, errOut)
		if code != exitError {
			t.Errorf("%s: exit %d, want %d (stderr %q)", eps, code, exitError, errOut)
		}
		for _, ep := range strings.Split(eps, ",") {
			if !strings.Contains(errOut, ep) {
				t.Errorf("%s: stderr %q does not name %s", eps, errOut, ep)
			}
		}
		if elapsed > dial+2*time.Second { // slack for two busy cores under -race
			t.Errorf("%s: failed after %v, want within %v (+ slack)", eps, elapsed, dial)
		}
	}
}

// TestUsageExitCodes covers the exit code mapping in-process.
func TestUsageExitCodes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"nope"},
		{"get", "--nope"},
		{"get", "a", "b"},
		{"set", "a"},
		{"rollback"},
		{"schema", "nope"},
		{"--dial-timeout", "x", "version"},
	} {
		code, out, errOut := runCLI(t, "", args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
		if out != "" || !strings.HasPrefix(errOut, "strata: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: want one line on stderr only, got stdout %q stderr %q", args, out, errOut)
		}
	}
	if code, out, _ := runCLI(t, "", "--help"); code != 0 || !strings.Contains(out, exitCodesHelp) {
		t.Errorf("--help: exit %d, exit codes not documented:\n%s", code, out)
	}
}

func TestPrintDiffColour(t *testing.T) {
	var b bytes.Buffer
	printDiff(&b, []diffLine{{kind: "added", path: "a", new: "1"}, {kind: "deleted", path: "b", old: "2"}}, true)
	want := green + "+ a: 1" + reset + "\n" + red + "- b: 2" + reset + "\n"
	if b.String() != want {
		t.Errorf("coloured diff %q, want %q", b.String(), want)
	}
	b.Reset()
	printDiff(&b, []diffLine{{kind: "added", path: "a", new: "1"}}, false)
	if b.String() != "+ a: 1\n" {
		t.Errorf("plain diff %q", b.String())
	}
	if colour(&b) {
		t.Error("a buffer is not a terminal")
	}
}
