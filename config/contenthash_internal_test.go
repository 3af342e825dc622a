package config

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/etcdtest"
)

// The tree hash a hasher keeps current as keys change is the hash of the
// content it describes, and with() tells the hash of a change ahead.
func TestContentHasherFollowsChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := Content{}
	for i := range 500 {
		c[fmt.Sprintf("k%03d", i)] = fmt.Sprint(i)
	}
	h := newContentHasher(c)
	for round := range 300 {
		var changes []KeyChange
		for range 1 + r.IntN(5) {
			k := fmt.Sprintf("k%03d", r.IntN(700))
			old, had := c[k]
			switch {
			case had && r.IntN(3) == 0:
				changes = append(changes, KeyChange{Key: k, Kind: Deleted, Old: old})
			case had:
				changes = append(changes, KeyChange{Key: k, Kind: Changed, Old: old, New: fmt.Sprint(round)})
			default:
				changes = append(changes, KeyChange{Key: k, Kind: Added, New: fmt.Sprint(round)})
			}
			applyChanges(c, changes[len(changes)-1:])
			applyChanges(c, undoList(changes[len(changes)-1:]))
		}
		changes = netChanges(changes)
		ahead := h.with(c, changes)
		applyChanges(c, changes)
		if want := c.Hash(); ahead != want {
			t.Fatalf("round %d: with() says %s, the content hashes to %s", round, ahead, want)
		}
		for _, ch := range changes {
			if ch.Kind == Deleted {
				h.remove(c, ch.Key)
			} else {
				h.set(c, ch.Key)
			}
		}
		if got, want := h.sum(nil), c.Hash(); got != want || !strings.HasPrefix(got, treeHashPrefix) {
			t.Fatalf("round %d: the hasher says %s, the content hashes to %s", round, got, want)
		}
	}
	if !hashMatches(c, c.Hash()) || !hashMatches(c, flatHash(c)) || hashMatches(c, Content{}.Hash()) {
		t.Fatal("hashMatches")
	}
}

// Records written before the tree hash hold "sha256:" hashes. A writer
// goes on from them: the next record's base is in the format of the one
// before, and every release still rebuilds and rolls back.
func TestFlatHashRecordsStillRebuild(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	ctx := context.Background()
	p := "/strata/flat-hash"
	w, err := NewRawWriter(cli, p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := map[int64]Content{}
	for i := range 3 {
		if _, err := w.Set(ctx, "n", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		want[int64(i+1)] = Content{"n": fmt.Sprint(i)}
	}
	// Rewrite records 1..3 and checkpoint 1 as an older writer left them.
	for v := int64(1); v <= 3; v++ {
		rec, _, err := w.recordAt(ctx, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		rec.Hash = flatHash(want[v])
		if rec.Base != "" {
			rec.Base = flatHash(want[v-1])
		}
		b, _ := json.Marshal(rec)
		if _, err := cli.Put(ctx, w.layout.Release(v), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	ops, err := w.checkpointOps(1, want[1], flatHash(want[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if _, err := cli.Do(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	// A new writer (no cached record) and the old one both go on.
	w2, err := NewRawWriter(cli, p)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	rel, err := w2.Set(ctx, "m", "x")
	if err != nil {
		t.Fatal(err)
	}
	want[4] = Content{"n": "2", "m": "x"}
	if len(rel.Outside) != 0 {
		t.Fatalf("the format change was taken for changes around the writer: %+v", rel.Outside)
	}
	rec, _, err := w2.recordAt(ctx, 4, 0)
	if err != nil || rec.Base != flatHash(want[3]) || rec.Hash != want[4].Hash() {
		t.Fatalf("record 4: base %s hash %s (%v); want base %s, hash %s", rec.Base, rec.Hash, err, flatHash(want[3]), want[4].Hash())
	}
	if _, err := w.Set(ctx, "m", "y"); err != nil {
		t.Fatal(err)
	}
	want[5] = Content{"n": "2", "m": "y"}
	for v := int64(1); v <= 5; v++ {
		_, got, err := w2.Release(ctx, v)
		if err != nil || !maps.Equal(got, want[v]) {
			t.Fatalf("Release(%d) = %v, %v; want %v", v, got, err, want[v])
		}
	}
	if _, err := w2.Rollback(ctx, 2); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, p+"/data/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("after Rollback(2): %v %v", resp.Kvs, err)
	}
}
