package config_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/internal/etcdtest"
)

// shared is one embedded etcd member for the tests of this package that
// need no faults; each test works under its own prefix.
var shared *etcdtest.Cluster

func TestMain(m *testing.M) {
	// Rejections are logged at error level by design; keep test output
	// readable.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c, err := etcdtest.Start(ctx, 1)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	shared = c
	code := m.Run()
	c.Close()
	// Every Config, Writer and watch a test started must be gone by now:
	// Close stops everything that was started.
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// client returns a client of the shared member, closed when t ends.
func client(t testing.TB) *clientv3.Client {
	t.Helper()
	return shared.Client(t)
}

// prefixes counts the prefixes handed out, so that a test run more than
// once in a process (-count) starts from an empty prefix each time.
var prefixes atomic.Int64

// prefix returns a prefix unique to this run of t.
func prefix(t testing.TB) string {
	return fmt.Sprintf("/strata-test/%s/%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), prefixes.Add(1))
}

// put writes key=value under p/data the way `etcdctl put` would.
func put(t testing.TB, cli *clientv3.Client, p, rel, value string) int64 {
	t.Helper()
	resp, err := cli.Put(context.Background(), p+"/data/"+rel, value)
	if err != nil {
		t.Fatalf("put %s: %v", rel, err)
	}
	return resp.Header.Revision
}

func del(t testing.TB, cli *clientv3.Client, p, rel string) int64 {
	t.Helper()
	resp, err := cli.Delete(context.Background(), p+"/data/"+rel)
	if err != nil {
		t.Fatalf("delete %s: %v", rel, err)
	}
	return resp.Header.Revision
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func environ(kv ...string) func() []string {
	return func() []string { return kv }
}

// leakOptions ignores the goroutines that outlive a closed embedded etcd
// server or client by design (package-level loggers, gRPC's resolver and
// balancer background work, the HTTP transport's idle connections).
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	}
}
