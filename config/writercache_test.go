package config_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// contentAt reads the data keys of prefix p as etcd held them at revision
// rev.
func contentAt(t *testing.T, cli *clientv3.Client, p string, rev int64) config.Content {
	t.Helper()
	resp, err := cli.Get(context.Background(), p+"/data/", clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		t.Fatal(err)
	}
	c := config.Content{}
	for _, kv := range resp.Kvs {
		c[strings.TrimPrefix(string(kv.Key), p+"/data/")] = string(kv.Value)
	}
	return c
}

// A write from the writer's cache commits without reading, guarded by the
// keys it changes; a key changed around the writer the instant before,
// which the cache may not have seen yet, must still end up in the release
// the way etcd held it: the release's hash and its rebuilt content are the
// content at its revision, and the change is listed under Outside.
func TestReleasesSayWhatEtcdHeld(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p)
	defer w.Close()
	outside := 0
	for i := range 120 {
		if i%3 != 0 {
			put(t, cli, p, "ext/k"+strconv.Itoa(i%7), strconv.Itoa(i)) // no wait: the write races the cache
			if i%9 == 2 {
				del(t, cli, p, "ext/k"+strconv.Itoa((i+3)%7))
			}
		}
		rel, err := w.Set(ctx, "n", strconv.Itoa(i))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		held := contentAt(t, cli, p, rel.Revision)
		if rel.Hash != held.Hash() {
			t.Fatalf("release %d says %s, etcd held %s: %v", rel.Version, rel.Hash, held.Hash(), held)
		}
		outside += len(rel.Outside)
	}
	if outside == 0 {
		t.Fatal("no release listed a change made around the writer")
	}
	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		_, c, err := w.Release(ctx, h.Version)
		if err != nil {
			t.Fatalf("Release(%d): %v", h.Version, err)
		}
		if held := contentAt(t, cli, p, h.Revision); !maps.Equal(c, held) {
			t.Fatalf("Release(%d) rebuilds %v, etcd held %v at revision %d", h.Version, c, held, h.Revision)
		}
	}
}

// Writers of one prefix, each with its own cache, lose races to each
// other: a lost commit is re-run on fresh state, versions stay contiguous
// and every release rebuilds to what etcd held.
func TestWritersOfOnePrefix(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	const writers, writes = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for g := range writers {
		w := mustRaw(t, cli, p)
		defer w.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				if _, err := w.Set(ctx, fmt.Sprintf("w%d.n", g), strconv.Itoa(i)); err != nil {
					errs <- err
					return
				}
				if _, err := w.Modify(ctx, func(c config.Content) error {
					n, _ := strconv.Atoi(c["count"])
					c["count"] = strconv.Itoa(n + 1)
					return nil
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r := mustRaw(t, cli, p, config.WithRetention(1000))
	defer r.Close()
	got, version, _, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got["count"] != strconv.Itoa(writers*writes) || version != writers*writes*2 {
		t.Fatalf("count %s at version %d, want %d at %d", got["count"], version, writers*writes, writers*writes*2)
	}
	hist, err := r.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != config.DefaultRetention {
		t.Fatalf("History lists %d releases, want %d", len(hist), config.DefaultRetention)
	}
	for i, h := range hist {
		if h.Version != version-int64(i) {
			t.Fatalf("release %d at position %d, want %d", h.Version, i, version-int64(i))
		}
		_, c, err := r.Release(ctx, h.Version)
		if err != nil {
			t.Fatalf("Release(%d): %v", h.Version, err)
		}
		if held := contentAt(t, cli, p, h.Revision); !maps.Equal(c, held) {
			t.Fatalf("Release(%d) rebuilds %v, etcd held %v", h.Version, c, held)
		}
	}
}

// A closed writer still writes (reading first), and keeps no watch.
func TestClosedWriterStillWrites(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p)
	for _, v := range []string{"1", "2", "3"} { // from the second write on, from the cache
		if _, err := w.Set(ctx, "a", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	put(t, cli, p, "b", "2") // around the writer: the next write reads it
	rel, err := w.Set(ctx, "a", "4")
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Content{"a": "4", "b": "2"}); rel.Hash != want.Hash() || len(rel.Outside) != 1 {
		t.Fatalf("release after Close: %+v", rel)
	}
}

// A bulk of keys put around the writer (here 5,000) is listed by the next
// release as its first 256 keys and a count, so that the record stays
// small; the releases before and after it still rebuild.
func TestOutsideBulkKeepsRecordsSmall(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p)
	defer w.Close()
	before, err := w.Set(ctx, "n", "1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i += 100 {
		var ops []clientv3.Op
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/data/bulk/k%05d", p, j), "x"))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := w.Set(ctx, "n", "2")
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Outside) != 256 || rel.OutsideMore != 5000-256 || rel.Outside[0].Key != "bulk/k00000" {
		t.Fatalf("release lists %d outside keys and %d more", len(rel.Outside), rel.OutsideMore)
	}
	resp, err := cli.Get(ctx, fmt.Sprintf("%s/meta/releases/%020d", p, rel.Version))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(err)
	}
	if n := len(resp.Kvs[0].Value); n >= 16<<10 {
		t.Fatalf("release record is %d bytes", n)
	}
	for _, v := range []int64{before.Version, rel.Version} {
		r, c, err := w.Release(ctx, v)
		if err != nil || c.Hash() != r.Hash {
			t.Fatalf("Release(%d): %v", v, err)
		}
	}
}
