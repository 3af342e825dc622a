package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/etcdtest"
)

// shared is one embedded etcd member for the tests that need no faults;
// each test works under its own prefix.
var shared *etcdtest.Cluster

func TestMain(m *testing.M) {
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
	// Every controller a test ran must be gone by now.
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		); err != nil {
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

var prefixes atomic.Int64

// prefix returns a prefix unique to this run of t.
func prefix(t testing.TB) string {
	return fmt.Sprintf("/rollout-test/%s/%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), prefixes.Add(1))
}

// writer returns a RawWriter of p.
func writer(t testing.TB, cli *clientv3.Client, p string, opts ...config.RawWriterOption) *config.RawWriter {
	t.Helper()
	w, err := config.NewRawWriter(cli, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// seed writes the leaves of kv (config path → value) as one release each.
func seed(t testing.TB, w *config.RawWriter, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := w.Set(context.Background(), kv[i], kv[i+1]); err != nil {
			t.Fatalf("set %s: %v", kv[i], err)
		}
	}
}

// content returns the content of p and its newest version.
func content(t testing.TB, w *config.RawWriter) (config.Content, int64) {
	t.Helper()
	c, v, _, err := w.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c, v
}

// putInstance writes an instance record at p/meta/instances/<id> by hand,
// as a running Config would.
func putInstance(t testing.TB, cli *clientv3.Client, p string, in config.Instance) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(context.Background(), p+"/meta/instances/"+in.ID, string(b)); err != nil {
		t.Fatal(err)
	}
}

// get returns the rollout of p.
func get(t testing.TB, cli *clientv3.Client, p string) *rollout.Rollout {
	t.Helper()
	r, err := rollout.Get(context.Background(), cli, p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFor polls cond every 10 ms until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pick plans spec until the number of canaries among instances at each
// step satisfies ok (which instances are canaries depends on the rollout's
// random id), and returns spec with that plan's id.
func pick(t testing.TB, cli *clientv3.Client, p string, spec rollout.Spec, instances []config.Instance, ok func(counts []int) bool) rollout.Spec {
	t.Helper()
	for range 1000 {
		r, err := rollout.Plan(context.Background(), cli, p, spec)
		if err != nil {
			t.Fatal(err)
		}
		var counts []int
		for step := range r.Steps {
			counts = append(counts, len(rollout.Members(r, instances, step)))
		}
		if ok(counts) {
			spec.ID = r.ID
			return spec
		}
	}
	t.Fatal("no plan gives the canaries wanted")
	return spec
}

// runController runs a controller on p until the test ends, and checks
// that it returned nil once its context was cancelled.
func runController(t testing.TB, cli *clientv3.Client, p string, opts ...rollout.Option) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rollout.Run(ctx, cli, p, opts...) }()
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	return stop
}
