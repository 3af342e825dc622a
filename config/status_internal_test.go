package config

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	etcdprov "github.com/strataconf/strata/providers/etcd"

	"github.com/strataconf/strata/internal/etcdtest"
)

// Defect: the snapshot file was not written when the release version could
// not be read at the applied revision because etcd had compacted it, which
// the 100 ms throttle of the status goroutine makes easy to hit. Here the
// status goroutine's round runs directly, at a revision compacted before
// it, against a real etcd.
func TestSnapshotFileWrittenAtACompactedRevision(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	ctx := context.Background()
	p := "/strata/compacted-file"
	if _, err := cli.Put(ctx, p+"/data/pool", "1"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "snap.json")
	type Cfg struct {
		Pool int `koanf:"pool"`
	}
	cfg, err := Load[Cfg](ctx, WithEtcd(cli, p), WithSnapshotFile(file), WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	revisionOf := func() (int64, string) {
		var s snapshotFile
		b, _ := os.ReadFile(file)
		if json.Unmarshal(b, &s) != nil {
			return 0, ""
		}
		return s.Revision, s.Content["pool"]
	}
	first := cfg.Snapshot().Revision
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if rev, _ := revisionOf(); rev == first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot file after Load")
		}
	}

	put, err := cli.Put(ctx, p+"/data/pool", "2")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	other, err := cli.Put(ctx, p+"/elsewhere", "x")
	if err != nil {
		t.Fatal(err)
	}
	c.Compact(t, other.Header.Revision)
	cfg.follow(ctx, status{data: &etcdprov.Data{Revision: rev, KVs: map[string][]byte{p + "/data/pool": []byte("2")}}})
	if got, pool := revisionOf(); got != rev || pool != "2" {
		t.Fatalf("snapshot file at revision %d (pool %q), want %d (pool 2)", got, pool, rev)
	}
}
