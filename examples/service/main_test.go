package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/internal/etcdtest"
)

// TestMain also checks that nothing is left running once every test, its
// service and its etcd are done.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testPrefix = "/strata/service/test"
	// Passwords the logs, /healthz and /metrics must never show.
	envSecret     = "env-s3cret-Hx71"
	etcdSecret    = "etcd-s3cret-Qp93"
	invalidSecret = "Zq9Kp2" // shorter than min=8: rejected
)

// logBuffer collects the service's log lines; the service writes from
// several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds or 10 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running is one service started by start.
type running struct {
	t      *testing.T
	s      *service
	logs   *logBuffer
	http   *http.Client
	cancel context.CancelFunc
	done   chan error
}

// start runs the service with o (its log, environment and file filled in)
// and waits until it serves.
func start(t *testing.T, o options) *running {
	t.Helper()
	r := &running{t: t, logs: &logBuffer{}, http: &http.Client{Timeout: 5 * time.Second}, done: make(chan error, 1)}
	o.log = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.file = "service.yaml"
	o.environ = func() []string {
		return []string{"SERVICE_LISTEN=127.0.0.1:0", "SERVICE_DB__PASSWORD=" + envSecret, "SERVICE_FEATURES__SHOUT=true"}
	}
	ready := make(chan *service, 1)
	o.ready = func(s *service) { ready <- s }
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.done <- run(ctx, o) }()
	select {
	case r.s = <-ready:
	case err := <-r.done:
		t.Fatalf("run returned before serving: %v\n%s", err, r.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("not serving after 30 s\n%s", r.logs)
	}
	t.Cleanup(func() {
		r.cancel()
		if t.Failed() {
			t.Logf("service log:\n%s", r.logs)
		}
	})
	return r
}

// get returns the status and body of GET path.
func (r *running) get(path string) (int, string) {
	r.t.Helper()
	resp, err := r.http.Get("http://" + r.s.addr + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// greet calls /v1/greeting and decodes the answer.
func (r *running) greet() greetingResponse {
	r.t.Helper()
	code, body := r.get("/v1/greeting?name=Ada")
	if code != http.StatusOK {
		r.t.Fatalf("/v1/greeting: %d %s", code, body)
	}
	var g greetingResponse
	if err := json.Unmarshal([]byte(body), &g); err != nil {
		r.t.Fatalf("/v1/greeting: %v: %s", err, body)
	}
	return g
}

// stop cancels the service's context and checks that run returns nil.
func (r *running) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		r.t.Fatal("run did not return 20 s after its context was cancelled")
	}
	r.http.CloseIdleConnections()
}

func put(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	if _, err := cli.Put(context.Background(), testPrefix+"/data/"+key, value); err != nil {
		t.Fatal(err)
	}
}

// The service end to end against a real etcd: health, metrics, the
// application endpoint, a pool rebuilt by a change in etcd, invalid
// changes rejected and logged without secrets, and a clean shutdown.
func TestService(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	put(t, cli, "db/host", "db-a.internal") // connects the client
	before := goleak.IgnoreCurrent()        // etcd and the test's client

	r := start(t, options{endpoints: c.Endpoints(), prefix: testPrefix})

	if code, body := r.get("/healthz"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	code, metrics := r.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, m := range []string{"strata_reloads_total{", "strata_revision{", "strata_degraded{", "service_db_pool_rebuilds_total 0", "go_goroutines"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// All four layers: a default timeout, the file's pool size, the
	// environment's flag, etcd's host.
	g := r.greet()
	if g.Message != "HELLO FROM THE SERVICE EXAMPLE, ADA!" {
		t.Errorf("message %q", g.Message)
	}
	if g.Pool.Generation != 1 || g.Pool.Size != 10 || g.Pool.Addr != "db-a.internal:5432" {
		t.Errorf("first pool: %+v", g.Pool)
	}
	if o := r.s.cfg.Snapshot().Origins; o["http.shutdown_timeout"].Layer != "defaults" || o["db.pool_size"].Layer != "file" ||
		o["features.shout"].Layer != "env" || o["db.host"].Layer != "etcd" {
		t.Errorf("origins: %v", o)
	}

	// A change of the db section in etcd rebuilds the pool; a request that
	// holds a connection of the old pool finishes on it.
	first := r.s.pool.Load()
	held, err := first.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, cli, "db/pool_size", "20")
	eventually(t, "the pool rebuilt with 20 connections", func() bool { return r.s.pool.Load().Stats().Size == 20 })
	if st := first.Stats(); !st.Closed || st.Open != 1 {
		t.Errorf("old pool after the change: %+v, want closed with the held connection open", st)
	}
	held.Release()
	if st := first.Stats(); st.Open != 0 {
		t.Errorf("old pool after the last release: %+v, want no connection open", st)
	}
	g = r.greet()
	if g.Pool.Generation != 2 || g.Pool.Size != 20 {
		t.Errorf("pool after the change: %+v", g.Pool)
	}
	if !strings.Contains(r.logs.String(), `msg="db pool rebuilt" generation=2`) {
		t.Errorf("the rebuild is not logged")
	}

	// A new password, from etcd, over the environment's: a new pool.
	put(t, cli, "db/password", etcdSecret)
	eventually(t, "the pool rebuilt for the new password", func() bool { return r.s.pool.Load().Stats().Generation == 3 })

	// Invalid values are rejected and logged; the running configuration
	// and its pool stay.
	put(t, cli, "db/pool_size", "500")
	eventually(t, "the pool size rejected", func() bool {
		return strings.Contains(r.logs.String(), "configuration change rejected") &&
			strings.Contains(r.logs.String(), "db.pool_size (etcd key "+testPrefix+"/data/db/pool_size): failed max=100")
	})
	put(t, cli, "db/password", invalidSecret)
	eventually(t, "the password rejected", func() bool {
		return strings.Contains(r.logs.String(), "db.password (etcd key "+testPrefix+"/data/db/password): failed min=8")
	})
	if c := r.s.cfg.Get(); c.DB.PoolSize != 20 || c.DB.Password != etcdSecret {
		t.Errorf("after the rejections: pool_size %d, password changed %v", c.DB.PoolSize, c.DB.Password != etcdSecret)
	}
	if g := r.greet(); g.Pool.Generation != 3 || g.Pool.Size != 20 {
		t.Errorf("pool after the rejections: %+v", g.Pool)
	}
	_, health := r.get("/healthz")
	if !strings.Contains(health, `"status":"ok"`) || !strings.Contains(health, "db.password") {
		t.Errorf("/healthz after the rejections: %s", health)
	}
	_, metrics = r.get("/metrics")
	if !regexp.MustCompile(`strata_reloads_total{[^}]*result="rejected"[^}]*} 2\n`).MatchString(metrics) ||
		!strings.Contains(metrics, "service_db_pool_rebuilds_total 2\n") {
		t.Errorf("/metrics after the rejections lacks 2 rejected reloads and 2 rebuilds")
	}

	// While etcd holds an invalid value, every candidate is rejected, so
	// the operator repairs both keys in one transaction: the pool is
	// rebuilt once, with the password of the layer below etcd.
	if _, err := cli.Txn(context.Background()).Then(
		clientv3.OpPut(testPrefix+"/data/db/pool_size", "30"),
		clientv3.OpDelete(testPrefix+"/data/db/password"),
	).Commit(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool rebuilt after the repair", func() bool { return r.s.pool.Load().Stats().Generation == 4 })
	if c := r.s.cfg.Get(); c.DB.PoolSize != 30 || c.DB.Password != envSecret {
		t.Errorf("after the repair: pool_size %d, password from the environment %v", c.DB.PoolSize, c.DB.Password == envSecret)
	}
	// Feature flags are read on every request.
	put(t, cli, "features/maintenance", "true")
	eventually(t, "maintenance on", func() bool { code, _ := r.get("/v1/greeting"); return code == http.StatusServiceUnavailable })
	if g := r.s.generation.Load(); g != 4 {
		t.Errorf("a flag change built pool %d", g)
	}

	r.stop()
	for _, p := range []*Pool{first, r.s.pool.Load()} {
		if st := p.Stats(); !st.Closed || st.Open != 0 {
			t.Errorf("pool after shutdown: %+v", st)
		}
	}
	if _, err := r.http.Get("http://" + r.s.addr + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
	goleak.VerifyNone(t, before)

	logs := r.logs.String()
	for _, secret := range []string{envSecret, etcdSecret, invalidSecret} {
		for what, text := range map[string]string{"the log": logs, "/healthz": health, "/metrics": metrics} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the password %q", what, secret)
			}
		}
	}
	t.Logf("service log:\n%s", logs)
}

// Without endpoints, run starts an embedded etcd itself (go run
// ./examples/service), and stops it on the way out.
func TestEmbeddedEtcd(t *testing.T) {
	r := start(t, options{prefix: "/strata/service/embedded"})
	if code, body := r.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if g := r.greet(); g.Pool.Addr != "db.internal:5432" {
		t.Errorf("pool %+v", g.Pool)
	}
	if !strings.Contains(r.logs.String(), "go run ./cmd/strata --endpoints ") {
		t.Error("the log does not say how to change a value")
	}
	r.stop()
}

// A value that fails validation at start-up stops run with the path, where
// the value came from and the rule.
func TestInvalidAtStart(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	put(t, cli, "db/pool_size", "0")
	var logs logBuffer
	err := run(context.Background(), options{endpoints: c.Endpoints(), prefix: testPrefix, file: "service.yaml",
		environ: func() []string { return []string{"SERVICE_DB__PASSWORD=" + envSecret} },
		log:     slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil || !strings.Contains(err.Error(), "db.pool_size (etcd key "+testPrefix+"/data/db/pool_size): failed min=1") {
		t.Fatalf("run: %v", err)
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("STRATA_ENDPOINTS", "")
	t.Setenv("STRATA_PREFIX", "")
	o, err := parseFlags([]string{"-etcd", "127.0.0.1:2379, 127.0.0.2:2379", "-prefix", "/p/q"}, io.Discard)
	if err != nil || strings.Join(o.endpoints, " ") != "127.0.0.1:2379 127.0.0.2:2379" || o.prefix != "/p/q" {
		t.Errorf("parseFlags: %+v, %v", o, err)
	}
	if o, _ := parseFlags(nil, io.Discard); o.endpoints != nil || o.prefix != "/strata/service/dev" || o.file != "service.yaml" {
		t.Errorf("defaults: %+v", o)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("an extra argument is accepted")
	}
}
