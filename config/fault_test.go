package config_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

type Keys struct {
	A string `koanf:"a"`
	B string `koanf:"b"`
	C string `koanf:"c"`
	D string `koanf:"d"`
}

// Acceptance: compaction past the watcher's resume revision while it is cut
// off; the watcher recovers with one Change naming exactly the keys that
// changed, deletes included.
func TestCompactionWhileCutOff(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	a, b := c.Members[0], c.Members[1]
	watcherCli := c.ClientFor(t, a)
	writerCli := c.ClientFor(t, b)
	p := "/strata/compaction"
	put(t, writerCli, p, "a", "1")
	put(t, writerCli, p, "b", "1")
	put(t, writerCli, p, "d", "same")

	cfg, err := config.Load[Keys](context.Background(), config.WithEtcd(watcherCli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	a.Stop(t)
	put(t, writerCli, p, "a", "2")
	put(t, writerCli, p, "a", "3") // several revisions, one key
	del(t, writerCli, p, "b")
	put(t, writerCli, p, "c", "new")
	put(t, writerCli, p, "d", "other")
	last := put(t, writerCli, p, "d", "same") // changed and changed back
	c.Compact(t, last)
	a.Restart(t)

	r.wait(t, "the resync", func(ch []config.Change[Keys], _ []error) bool { return len(ch) >= 1 })
	time.Sleep(200 * time.Millisecond) // a second change would arrive now
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) != 1 {
		t.Fatalf("%d changes, want exactly 1: %+v", len(r.changes), r.changes)
	}
	ch := r.changes[0]
	if got := strings.Join(ch.Paths, ","); got != "a,b,c" || !ch.Resync || ch.Revision < last {
		t.Fatalf("change paths %q resync %v revision %d (last write %d)", got, ch.Resync, ch.Revision, last)
	}
	if v := cfg.Get(); v.A != "3" || v.B != "" || v.C != "new" || v.D != "same" {
		t.Fatalf("after resync: %+v", v)
	}
}

// Acceptance: stopping the leader during a stream of writes loses no
// committed write and delivers no revision twice.
func TestLeaderLossDuringWrites(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client(t)
	writer := c.Client(t)
	p := "/strata/leader"
	put(t, writer, p, "a", "0")
	cfg, err := config.Load[Keys](context.Background(), config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	const n = 300
	var acked []int64 // revisions of acknowledged writes
	lastAcked := ""
	var stopped *etcdtest.Member
	for i := 1; i <= n; i++ {
		if i == n/3 {
			stopped = c.Leader(t)
			stopped.Stop(t)
		}
		if i == 2*n/3 {
			stopped.Restart(t)
		}
		v := strconv.Itoa(i)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := writer.Put(ctx, p+"/data/a", v)
		cancel()
		if err != nil {
			continue // unknown outcome: it may or may not have committed
		}
		acked = append(acked, resp.Header.Revision)
		lastAcked = v
	}
	final := put(t, writer, p, "a", "final")
	r.wait(t, "the final write", func(ch []config.Change[Keys], _ []error) bool {
		return len(ch) > 0 && ch[len(ch)-1].New.A == "final"
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	var seen []int64
	for i, ch := range r.changes {
		if i > 0 && ch.Revision <= r.changes[i-1].Revision {
			t.Fatalf("revision %d delivered after %d", ch.Revision, r.changes[i-1].Revision)
		}
		seen = append(seen, ch.Revision)
	}
	for _, rev := range acked {
		if _, found := slices.BinarySearch(seen, rev); !found {
			t.Fatalf("acknowledged write at revision %d never delivered", rev)
		}
	}
	if seen[len(seen)-1] != final || len(acked) < n/2 {
		t.Fatalf("last delivered revision %d, final write %d; %d of %d writes acknowledged (last %s)", seen[len(seen)-1], final, len(acked), n, lastAcked)
	}
}
