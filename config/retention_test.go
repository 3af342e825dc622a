package config_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// retained is what the releases of TestRetentionKeepsEveryListedRelease
// bind to.
type retained struct {
	N      int               `koanf:"n"`
	Ext    string            `koanf:"ext"`
	Labels map[string]string `koanf:"labels"`
}

// retainedOf is what content binds to.
func retainedOf(c config.Content) retained {
	var r retained
	r.N, _ = strconv.Atoi(c["n"])
	r.Ext = c["ext"]
	for k, v := range c {
		if l, ok := strings.CutPrefix(k, "labels/"); ok {
			if r.Labels == nil {
				r.Labels = map[string]string{}
			}
			r.Labels[l] = v
		}
	}
	return r
}

// Every release History lists can be read back and rolled back to, for
// any retention: a kept release whose checkpoint at or before it fell out
// of retention is rebuilt backward from a later checkpoint, also across
// changes made around the writer. Retention keeps exactly the newest n
// records.
func TestRetentionKeepsEveryListedRelease(t *testing.T) {
	for _, tc := range []struct{ retention, writes, seed int }{
		{1, 10, 0},
		{5, 23, 0},    // kept 19..23; checkpoints 16 and 21
		{40, 100, 0},  // kept 61..100; checkpoints 33, 65 and 97
		{100, 150, 0}, // kept 51..150; checkpoints 33, 65, 97 and 129
		// A large content: a checkpoint every retention releases
		// (checkpointInterval), so the window holds exactly one.
		{40, 100, 1200},  // checkpoints 1, 41 and 81
		{100, 230, 1200}, // checkpoints 1, 76, 151 and 226
	} {
		t.Run(fmt.Sprintf("retention=%d,keys=%d", tc.retention, tc.seed), func(t *testing.T) {
			testRetention(t, tc.retention, tc.writes, tc.seed)
		})
	}
}

func testRetention(t *testing.T, retention, writes, seed int) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p, config.WithRetention(retention))
	model := config.Content{}
	// The seed keys are put around the writer: release 1 finds them.
	for i := 0; i < seed; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(seed, i+100); j++ {
			k := fmt.Sprintf("labels/s%04d", j)
			ops = append(ops, clientv3.OpPut(p+"/data/"+k, "seed"))
			model[k] = "seed"
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[int64]config.Content{} // the content of each release
	for i := 1; i <= writes; i++ {
		// Changes made around the writer, recorded under Outside by
		// release i: every even release has some, so every backward
		// rebuild of more than one step undoes some.
		switch {
		case i%4 == 2:
			put(t, cli, p, "ext", "e"+strconv.Itoa(i))
			model["ext"] = "e" + strconv.Itoa(i)
			if i%8 == 6 {
				put(t, cli, p, "labels/k1", "o"+strconv.Itoa(i))
				model["labels/k1"] = "o" + strconv.Itoa(i)
			}
		case i%4 == 0:
			if _, ok := model["ext"]; ok {
				del(t, cli, p, "ext")
				delete(model, "ext")
			}
		}
		var rel *config.Release
		var err error
		label := "labels/k" + strconv.Itoa((i+2)%5)
		_, present := model[label]
		var change func(config.Content)
		switch {
		case i%3 == 1:
			label = "labels/k" + strconv.Itoa(i%5)
			rel, err = w.Set(ctx, strings.ReplaceAll(label, "/", "."), "v"+strconv.Itoa(i))
			change = func(c config.Content) { c[label] = "v" + strconv.Itoa(i) }
		case i%3 == 2 && present:
			rel, err = w.Delete(ctx, strings.ReplaceAll(label, "/", "."))
			change = func(c config.Content) { delete(c, label) }
		default:
			rel, err = w.Set(ctx, "n", strconv.Itoa(i))
			change = func(c config.Content) { c["n"] = strconv.Itoa(i) }
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		change(model)
		if rel.Version != int64(i) || rel.Hash != model.Hash() {
			t.Fatalf("write %d made release %d with content %s, want %s", i, rel.Version, rel.Hash, model.Hash())
		}
		want[rel.Version] = maps.Clone(model)
	}

	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	newest, oldest := int64(writes), int64(writes-retention+1)
	if len(hist) != retention || hist[0].Version != newest || hist[len(hist)-1].Version != oldest {
		t.Fatalf("History lists %d releases, %d..%d; want the newest %d, %d..%d",
			len(hist), hist[len(hist)-1].Version, hist[0].Version, retention, oldest, newest)
	}
	checkListed(t, w, hist, want)
	for v := int64(1); v < oldest; v++ {
		if _, _, err := w.Release(ctx, v); !errors.Is(err, config.ErrNotFound) {
			t.Fatalf("Release(%d), beyond retention: %v, want ErrNotFound", v, err)
		}
		if _, err := w.Rollback(ctx, v); !errors.Is(err, config.ErrNotFound) {
			t.Fatalf("Rollback(%d), beyond retention: %v, want ErrNotFound", v, err)
		}
	}

	// Roll back to the oldest release listed, through a typed writer; a
	// Config loaded afterwards sees it.
	tw := mustWriter[retained](t, cli, p, config.WithRetention(retention))
	rel, err := tw.Rollback(ctx, oldest)
	if err != nil {
		t.Fatalf("Rollback(%d), the oldest listed: %v", oldest, err)
	}
	after := newest + 1
	if oldest == newest { // retention 1: the content is already release oldest's
		after = newest
	} else if rel.RollbackOf != oldest {
		t.Fatalf("rollback release %+v, want a rollback of %d", rel, oldest)
	}
	if rel.Version != after || rel.Hash != want[oldest].Hash() {
		t.Fatalf("rollback release %+v, want version %d with content %s", rel, after, want[oldest].Hash())
	}
	got, _, _, err := w.Read(ctx)
	if err != nil || !maps.Equal(got, want[oldest]) {
		t.Fatalf("content after the rollback %v (%v), want %v", got, err, want[oldest])
	}
	cfg, err := config.Load[retained](ctx, config.WithEtcd(cli, p), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if v, exp := *cfg.Get(), retainedOf(want[oldest]); v.N != exp.N || v.Ext != exp.Ext || !maps.Equal(v.Labels, exp.Labels) {
		t.Fatalf("Load after the rollback: %+v, want %+v", v, exp)
	}

	// Retention still keeps exactly the newest n records.
	hist, err = w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != retention || hist[0].Version != after || hist[len(hist)-1].Version != after-int64(retention)+1 {
		t.Fatalf("after the rollback History lists %d releases, %d..%d; want %d..%d",
			len(hist), hist[len(hist)-1].Version, hist[0].Version, after-int64(retention)+1, after)
	}
	for _, h := range hist {
		if _, _, err := w.Release(ctx, h.Version); err != nil {
			t.Fatalf("after the rollback, Release(%d): %v", h.Version, err)
		}
	}
}

// checkListed checks that every release in hist reads back as want says.
func checkListed(t *testing.T, w *config.RawWriter, hist []config.Release, want map[int64]config.Content) {
	t.Helper()
	for _, h := range hist {
		if h.Unrecorded || h.Err != nil {
			t.Fatalf("History entry %+v", h)
		}
		rel, c, err := w.Release(context.Background(), h.Version)
		if err != nil {
			t.Fatalf("Release(%d), listed by History: %v", h.Version, err)
		}
		if !maps.Equal(c, want[h.Version]) || rel.Hash != h.Hash || rel.Version != h.Version {
			t.Fatalf("Release(%d) = %v (%s), want %v (%s)", h.Version, c, rel.Hash, want[h.Version], h.Hash)
		}
	}
}

// Kept releases stay readable where the chain of records cannot be undone
// (changes made around the writer too many to keep their values) and where
// the checkpoint after them is lost (a large checkpoint's late write
// failed; here deleted by hand).
func TestRetentionAcrossBrokenChain(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p, config.WithRetention(5))
	model := config.Content{}
	want := map[int64]config.Content{}
	write := func(i int) {
		t.Helper()
		rel, err := w.Set(ctx, "n", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		model["n"] = strconv.Itoa(i)
		if rel.Version != int64(i) || rel.Hash != model.Hash() {
			t.Fatalf("write %d made release %d with content %s, want %s", i, rel.Version, rel.Hash, model.Hash())
		}
		want[rel.Version] = maps.Clone(model)
	}
	listed := func(oldest, newest int64) {
		t.Helper()
		hist, err := w.History(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != int(newest-oldest+1) || hist[0].Version != newest || hist[len(hist)-1].Version != oldest {
			t.Fatalf("History lists %d releases, %d..%d; want %d..%d", len(hist), hist[len(hist)-1].Version, hist[0].Version, oldest, newest)
		}
		checkListed(t, w, hist, want)
	}

	// Checkpoints at 1 and 6; release 10 finds 300 keys changed around the
	// writer, which its record lists without values: it cannot be undone.
	for i := 1; i <= 9; i++ {
		write(i)
	}
	for b := 0; b < 300; b += 100 {
		var ops []clientv3.Op
		for k := b; k < b+100; k++ {
			key := fmt.Sprintf("bulk/k%03d", k)
			ops = append(ops, clientv3.OpPut(p+"/data/"+key, "x"))
			model[key] = "x"
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	write(10)
	hist, err := w.History(ctx, 1)
	if err != nil || len(hist) != 1 || len(hist[0].Outside) != 256 || hist[0].OutsideMore != 44 || hist[0].Outside[0].New != "" {
		t.Fatalf("release 10 lists 256 of the 300 changes around the writer, without values: %v %v", hist, err)
	}
	write(11)
	write(12)
	listed(8, 12) // 8 and 9: not forward from 6 (record 7 is gone), nor back through 10

	// Checkpoints at 10 and 15, and at 20, which is lost: the window
	// 16..20 holds no checkpoint, and the one at 15 lost its record.
	for i := 13; i <= 20; i++ {
		write(i)
	}
	if _, err := cli.Delete(ctx, fmt.Sprintf("%s/meta/checkpoints/%020d", p, 20), clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	listed(16, 20) // forward from checkpoint 15: release 16's base is its content
}
