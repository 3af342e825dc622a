package config_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

type Req struct {
	Host string `koanf:"host" validate:"required"`
	Pool int    `koanf:"pool"`
}

// snapshotOf reads the snapshot file's revision and etcd content.
func snapshotOf(t testing.TB, file string) (rev int64, content map[string]string) {
	t.Helper()
	var s struct {
		Revision int64             `json:"revision"`
		Content  map[string]string `json:"content"`
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, nil
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, nil
	}
	return s.Revision, s.Content
}

// Defect: etcd revision R is rejected (a required key deleted that the
// file does not provide yet); a file change then makes R valid and the
// application runs R. The snapshot file and the instance record must then
// describe R, not R-1 (whose content a later start from the snapshot would
// bring back).
func TestSnapshotFileAndRecordFollowThePublishedSnapshot(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "host", "etcd-host")
	put(t, cli, p, "pool", "1")
	dir := t.TempDir()
	yaml := filepath.Join(dir, "app.yaml")
	mustDo(t, os.WriteFile(yaml, []byte("pool: 0\n"), 0o644))
	file := filepath.Join(dir, "snap.json")
	cfg, err := config.Load[Req](context.Background(), config.WithFile(yaml), config.WithEtcd(cli, p),
		config.WithSnapshotFile(file), config.WithInstance("published", nil, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	rev := del(t, cli, p, "host")
	r.wait(t, "the rejection", func(_ []config.Change[Req], errs []error) bool { return len(errs) == 1 })
	mustDo(t, os.WriteFile(yaml, []byte("pool: 0\nhost: file-host\n"), 0o644))
	r.wait(t, "the change", func(ch []config.Change[Req], _ []error) bool { return len(ch) == 1 })
	if v, s := cfg.Get(), cfg.Snapshot(); v.Host != "file-host" || s.Revision != rev {
		t.Fatalf("running %+v at revision %d, want file-host at %d", v, s.Revision, rev)
	}
	waitFor(t, "the snapshot file and the record at the published revision", func() bool {
		got, content := snapshotOf(t, file)
		if got != rev || content["host"] != "" || content["pool"] != "1" {
			return false
		}
		ins, err := config.Instances(context.Background(), cli, p)
		return err == nil && len(ins) == 1 && ins[0].AppliedRevision == rev && ins[0].RejectedRevision != rev
	})
}

// Defect: a start from the snapshot file stayed degraded for good when the
// first content read from etcd could not be used, although later revisions
// applied.
func TestDegradedClearedByALaterRevision(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/degraded"
	file := filepath.Join(t.TempDir(), "snap.json")
	rev := put(t, cli, p, "pool", "1")
	cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p), config.WithSnapshotFile(file))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the snapshot file", func() bool { got, _ := snapshotOf(t, file); return got == rev })
	cfg.Close()
	put(t, cli, p, "extra.yaml", "a: [1\n") // malformed: etcd's content cannot be read

	c.Members[0].Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cfg, err = config.Load[Ops](ctx, config.WithEtcd(cli, p), config.WithSnapshotFile(file), config.WithStartup(config.FromSnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)
	if code, h := healthOf(t, cfg.HealthHandler()); code != http.StatusServiceUnavailable || h.Source != "snapshot" {
		t.Fatalf("health from the snapshot: %d %+v", code, h)
	}
	c.Members[0].Restart(t)
	r.wait(t, "the malformed document's rejection", func(_ []config.Change[Ops], errs []error) bool { return len(errs) == 1 })
	if code, h := healthOf(t, cfg.HealthHandler()); code != http.StatusServiceUnavailable || h.Source != "snapshot" {
		t.Fatalf("health while etcd's content is unreadable: %d %+v", code, h)
	}
	w := c.Client(t)
	if _, err := w.Delete(context.Background(), p+"/data/extra.yaml"); err != nil {
		t.Fatal(err)
	}
	last := put(t, w, p, "pool", "3")
	r.wait(t, "pool 3", func(ch []config.Change[Ops], _ []error) bool { return len(ch) > 0 && ch[len(ch)-1].New.Pool == 3 })
	waitFor(t, "health ok", func() bool {
		code, h := healthOf(t, cfg.HealthHandler())
		return code == http.StatusOK && h.Source == "etcd" && h.Revision == last
	})
}

// Defect: right after Load returned, Health was 503 "etcd watch is down"
// until the watch goroutine had started. A readiness probe must see ok
// once Load has returned with etcd reachable.
func TestHealthOKRightAfterLoad(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "pool", "1")
	for i := range 20 {
		cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p))
		if err != nil {
			t.Fatal(err)
		}
		code, h := healthOf(t, cfg.HealthHandler())
		cfg.Close()
		if code != http.StatusOK {
			t.Fatalf("load %d: health right after Load: %d %+v", i, code, h)
		}
	}
}

// Health started after changes were applied (the status goroutine starts
// with the first Health call) reports the release in force, and follows
// the releases after it.
func TestHealthVersionAfterChanges(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	w := mustRaw(t, cli, p)
	if _, err := w.Set(ctx, "pool", "1"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load[Ops](ctx, config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	for pool := 2; pool <= 3; pool++ {
		if _, err := w.Set(ctx, "pool", fmt.Sprint(pool)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "pool 3", func() bool { return cfg.Get().Pool == 3 })
	waitFor(t, "version 3 on the first Health calls", func() bool { return cfg.Health().Version == 3 })
	if _, err := w.Set(ctx, "pool", "4"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 4", func() bool { return cfg.Health().Version == 4 })
}
