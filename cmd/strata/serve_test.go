package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strataconf/strata/internal/etcdtest"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServeUsage(t *testing.T) {
	c := etcdtest.New(t)
	ep := strings.Join(c.Endpoints(), ",")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--prefix", "/app", "--insecure-no-auth", "--listen", "0.0.0.0:7070"}, "only on a loopback"},
		{[]string{"serve", "--prefix", "/app", "--insecure-no-auth", "--listen", "10.1.2.3:7070"}, "only on a loopback"},
		{[]string{"serve", "--prefix", "/app"}, "--token-file"},
		{[]string{"serve"}, "no prefix"},
		{[]string{"serve", "--prefix", "/app", "--tls-cert", "x.pem"}, "--tls-key"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"--endpoints", ep}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("strata %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr.String(), exitUsage, tc.want)
		}
	}
}

// TestServe runs strata serve with a token file on a root with two
// prefixes, and reads a page with a bearer token.
func TestServe(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	for _, p := range []string{"/apps/a", "/apps/b"} {
		if _, err := cli.Put(context.Background(), p+"/data/db/pool", "10"); err != nil {
			t.Fatal(err)
		}
	}
	tokFile := filepath.Join(t.TempDir(), "tokens")
	tok := "serve-test-token-0123456789"
	if err := os.WriteFile(tokFile, []byte("# operators\n"+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--endpoints", strings.Join(c.Endpoints(), ","), "serve", "--root", "/apps",
			"--listen", "127.0.0.1:0", "--token-file", tokFile}, strings.NewReader(""), &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`http://(127\.0\.0\.1:[0-9]+)`)
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; time.Sleep(20 * time.Millisecond) {
		if m = addr.FindStringSubmatch(stdout.String()); m == nil && time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start: stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "/apps/a, /apps/b") {
		t.Errorf("prefixes not discovered: %q", stdout.String())
	}
	req, _ := http.NewRequest("GET", "http://"+m[1]+"/api/config?p=/apps/b", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"db.pool": "10"`) {
		t.Errorf("GET /api/config: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + m[1] + "/config")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Token") {
		t.Errorf("GET /config without a session is not the login form: %s", body)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
