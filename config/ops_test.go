package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

type Ops struct {
	Pool   int    `koanf:"pool" validate:"min=1,max=100"`
	Secret string `koanf:"secret" secret:"true" validate:"omitempty,len=8"`
}

func healthOf(t testing.TB, h http.Handler) (int, config.Health) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	var out config.Health
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("health body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, out
}

// waitFor polls cond until it holds or fails the test after a generous
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Acceptance: etcd down at start with a valid snapshot; etcd comes back;
// corrupt snapshots are refused.
func TestStartFromSnapshot(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/snapshot"
	file := filepath.Join(t.TempDir(), "app.snapshot.json")
	put(t, cli, p, "pool", "1")

	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithSnapshotFile(file))
	if err != nil {
		t.Fatal(err)
	}
	rev := put(t, cli, p, "pool", "2")
	waitFor(t, "the snapshot file at the new revision", func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Contains(b, []byte(`"revision": `+itoa(rev)))
	})
	if code, h := healthOf(t, cfg.HealthHandler()); code != 200 || h.Revision != rev {
		t.Fatalf("health before the outage: %d %+v", code, h)
	}
	cfg.Close()

	c.Members[0].Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cfg, err = config.Load[Ops](ctx, config.WithEtcd(cli, p), config.WithSnapshotFile(file), config.WithStartup(config.FromSnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if cfg.Get().Pool != 2 || cfg.Snapshot().Revision != rev {
		t.Fatalf("from snapshot: pool %d at revision %d", cfg.Get().Pool, cfg.Snapshot().Revision)
	}
	code, h := healthOf(t, cfg.HealthHandler())
	if code != http.StatusServiceUnavailable || h.Status != "degraded" || h.Source != "snapshot" {
		t.Fatalf("health from snapshot: %d %+v", code, h)
	}
	r := record(cfg)

	c.Members[0].Restart(t)
	put(t, c.Client(t), p, "pool", "3")
	r.wait(t, "catching up", func(ch []config.Change[Ops], _ []error) bool { return len(ch) > 0 && ch[len(ch)-1].New.Pool == 3 })
	waitFor(t, "health ok", func() bool { code, _ := healthOf(t, cfg.HealthHandler()); return code == 200 })
	r.mu.Lock()
	if len(r.changes) != 1 {
		t.Fatalf("%d changes to catch up, want 1", len(r.changes))
	}
	r.mu.Unlock()

	// A damaged snapshot is never used. The running Config writes its
	// file last with pool 3, then stops: nothing rewrites the file below.
	waitFor(t, "the snapshot file with pool 3", func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Contains(b, []byte(`"pool": "3"`))
	})
	cfg.Close()
	c.Members[0].Stop(t)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated": good[:len(good)/2],
		"tampered":  bytes.Replace(good, []byte(`"pool": "3"`), []byte(`"pool": "9"`), 1),
	} {
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: the test did not change the file", name)
		}
		mustDo(t, os.WriteFile(file, bad, 0o644))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := config.Load[Ops](ctx, config.WithEtcd(cli, p), config.WithSnapshotFile(file), config.WithStartup(config.FromSnapshot()))
		cancel()
		if !errors.Is(err, config.ErrSource) || !strings.Contains(err.Error(), "snapshot file") {
			t.Fatalf("%s snapshot: %v", name, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestWaitForStartup(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/wait"
	put(t, cli, p, "pool", "4")
	c.Members[0].Stop(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		c.Members[0].Restart(t)
	}()
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithStartup(config.WaitFor(20*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if cfg.Get().Pool != 4 {
		t.Fatalf("pool %d", cfg.Get().Pool)
	}
}

// Acceptance: instance records for running configs, their applied version,
// and expiry after the keepalive stops.
func TestInstanceRecords(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/instances"
	w := mustWriter[Ops](t, cli, p, config.WithWriterDefaults(Ops{Pool: 1}))
	if _, err := w.Set(context.Background(), "pool", "5"); err != nil {
		t.Fatal(err)
	}
	var cfgs []*config.Config[Ops]
	for _, id := range []string{"a", "b", "c"} {
		cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p),
			config.WithInstance(id, map[string]string{"zone": "z1"}, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cfg.Close() })
		cfgs = append(cfgs, cfg)
	}
	list := func() []config.Instance {
		ins, err := config.Instances(context.Background(), cli, p)
		if err != nil {
			t.Fatal(err)
		}
		return ins
	}
	waitFor(t, "three records at version 1", func() bool {
		ins := list()
		return len(ins) == 3 && ins[0].AppliedVersion == 1 && ins[1].AppliedVersion == 1 && ins[2].AppliedVersion == 1
	})
	rel, err := w.Set(context.Background(), "pool", "6")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three records at version 2", func() bool {
		ins := list()
		for _, in := range ins {
			if in.AppliedVersion != 2 || in.AppliedRevision != rel.Revision {
				return false
			}
		}
		return len(ins) == 3
	})
	in := list()[0]
	if in.ID != "a" || in.Labels["zone"] != "z1" || in.PID != os.Getpid() || in.Host == "" {
		t.Fatalf("record: %+v", in)
	}
	// A rejected candidate shows in the record.
	put(t, cli, p, "pool", "500")
	waitFor(t, "the rejection in the records", func() bool {
		ins := list()
		return len(ins) == 3 && strings.Contains(ins[0].RejectedError, "max=100") && ins[0].AppliedVersion == 2
	})

	put(t, cli, p, "pool", "7")
	// Close removes the record at once ...
	cfgs[2].Close()
	waitFor(t, "c's record removed on Close", func() bool { return len(list()) == 2 })
	// ... while a process that dies without Close leaves it to the TTL:
	// closing d's client stops its keepalives.
	bcli := c.Client(t)
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(bcli, p), config.WithInstance("d", nil, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	waitFor(t, "d's record", func() bool { return len(list()) == 3 })
	bcli.Close()
	start := time.Now()
	waitFor(t, "d's record to expire", func() bool { return len(list()) == 2 })
	if time.Since(start) < time.Second {
		t.Fatalf("d's record vanished after %v, before its TTL", time.Since(start))
	}
}

// Acceptance: the registry shows the counters move.
func TestMetrics(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.ClientFor(t, c.Members[0])
	writer := c.ClientFor(t, c.Members[1])
	p := "/strata/metrics"
	reg := prometheus.NewRegistry()
	put(t, writer, p, "pool", "1")
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				for i := 0; i < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
							found = true
						}
					}
					if !found {
						continue metrics
					}
				}
				switch {
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue()
				case m.GetHistogram() != nil:
					return float64(m.GetHistogram().GetSampleCount())
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s%v", name, labels)
		return 0
	}
	rev := put(t, writer, p, "pool", "2")
	r.wait(t, "applied", func(ch []config.Change[Ops], _ []error) bool { return len(ch) == 1 })
	put(t, writer, p, "pool", "200")
	r.wait(t, "rejected", func(_ []config.Change[Ops], errs []error) bool { return len(errs) == 1 })
	if a, rj := metric("strata_reloads_total", "result", "applied"), metric("strata_reloads_total", "result", "rejected"); a != 1 || rj != 1 {
		t.Fatalf("reloads applied %v rejected %v", a, rj)
	}
	if got := metric("strata_revision"); got != float64(rev) {
		t.Fatalf("strata_revision %v, want %d", got, rev)
	}
	if got := metric("strata_subscriber_duration_seconds"); got != 1 {
		t.Fatalf("subscriber observations: %v", got)
	}
	if got := metric("strata_watch_resyncs_total"); got != 0 {
		t.Fatalf("resyncs before compaction: %v", got)
	}

	// Cut the watcher off, write and compact past it, bring it back.
	c.Members[0].Stop(t)
	put(t, writer, p, "pool", "30")
	last := put(t, writer, p, "pool", "3")
	c.Compact(t, last)
	c.Members[0].Restart(t)
	r.wait(t, "pool 3", func(ch []config.Change[Ops], _ []error) bool { return len(ch) == 2 })
	if got := metric("strata_watch_resyncs_total"); got != 1 {
		t.Fatalf("resyncs after compaction: %v", got)
	}
	if got := metric("strata_reloads_total", "result", "applied"); got != 2 {
		t.Fatalf("applied after the resync: %v", got)
	}
}

// Acceptance: a secret value never appears in logs or health output.
func TestSecretsStayHidden(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	put(t, cli, p, "secret", "8charsOK")
	cfg, err := config.Load[Ops](context.Background(), config.WithDefaults(Ops{Pool: 1}), config.WithEtcd(cli, p), config.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	put(t, cli, p, "secret", "s3cr3t-too-long") // fails len=8
	r.wait(t, "rejection", func(_ []config.Change[Ops], errs []error) bool { return len(errs) == 1 })
	_, h := healthOf(t, cfg.HealthHandler())
	hj, _ := json.Marshal(h)
	for what, text := range map[string]string{"logs": logs.String(), "health": string(hj), "error": r.errs[0].Error(),
		"values": jsonString(cfg.Snapshot().Values())} {
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "8charsOK") {
			t.Fatalf("%s show a secret: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "secret") || h.LastError == "" {
		t.Fatalf("the rejection was not logged or reported: %s / %+v", logs.String(), h)
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// Health turns degraded while the connection to etcd is down, and back.
func TestHealthFollowsConnection(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/health"
	put(t, cli, p, "pool", "1")
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	waitFor(t, "health ok", func() bool { code, _ := healthOf(t, cfg.HealthHandler()); return code == 200 })
	c.Members[0].Stop(t)
	waitFor(t, "health degraded", func() bool {
		code, h := healthOf(t, cfg.HealthHandler())
		return code == 503 && h.Reason == "etcd watch is down"
	})
	c.Members[0].Restart(t)
	waitFor(t, "health ok again", func() bool { code, _ := healthOf(t, cfg.HealthHandler()); return code == 200 })
	r := record(cfg)
	put(t, cli, p, "pool", "2")
	r.wait(t, "a change after the outage", func(ch []config.Change[Ops], _ []error) bool { return len(ch) == 1 })
}

// A malformed document is a rejection like any other: counted, and shown
// in the instance record with its revision.
func TestMalformedDocumentIsARejection(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "pool", "1")
	reg := prometheus.NewRegistry()
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithMetrics(reg),
		config.WithInstance("doc", nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	rev := put(t, cli, p, "extra.yaml", "a: [1\n")
	r.wait(t, "the rejection", func(_ []config.Change[Ops], errs []error) bool { return len(errs) == 1 })
	if !errors.Is(r.errs[0], config.ErrSource) || !strings.Contains(r.errs[0].Error(), p+"/data/extra.yaml") {
		t.Fatalf("error: %v", r.errs[0])
	}
	waitFor(t, "the instance record", func() bool {
		ins, err := config.Instances(context.Background(), cli, p)
		return err == nil && len(ins) == 1 && ins[0].RejectedRevision == rev && strings.Contains(ins[0].RejectedError, "extra.yaml")
	})
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "strata_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "rejected" && m.GetCounter().GetValue() != 1 {
					t.Fatalf("rejected = %v", m.GetCounter().GetValue())
				}
			}
		}
	}
}
