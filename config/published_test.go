package config_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/strataconf/strata/config"
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
