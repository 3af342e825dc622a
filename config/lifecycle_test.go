package config_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// Close revokes the instance record's lease every time: the record is gone
// when Close returns, not left to its TTL. The race it guards against (the
// keepalive channel closing before the status goroutine sees the
// cancellation) happened in about 1 of 15 runs, so the test closes many
// Configs.
func TestCloseAlwaysRevokesInstanceRecord(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "pool", "1")
	file := filepath.Join(t.TempDir(), "snap.json")
	for i := range 40 {
		cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p),
			config.WithInstance("close", nil, 0), config.WithSnapshotFile(file))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the instance record", func() bool {
			resp, err := cli.Get(context.Background(), p+"/meta/instances/close", clientv3.WithCountOnly())
			return err == nil && resp.Count == 1
		})
		// Close while the status goroutine is busy with a change (it has
		// just written the snapshot file and now updates the record), so
		// that both the cancellation and the closed keepalive channel are
		// ready when it looks again.
		rev := put(t, cli, p, "pool", strconv.Itoa(i+2))
		waitFor(t, "the snapshot file", func() bool {
			b, _ := os.ReadFile(file)
			return bytes.Contains(b, []byte(`"revision": `+itoa(rev)))
		})
		cfg.Close()
		resp, err := cli.Get(context.Background(), p+"/meta/instances/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 0 {
			t.Fatalf("run %d: Close returned with the instance record still in etcd: %s", i, resp.Kvs[0].Value)
		}
	}
}
