package config_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/bigmap"
	"github.com/strataconf/strata/config"
)

// Tenants is a configuration of many keys with rules on every element.
type Tenants struct {
	Name   string         `koanf:"name" validate:"required"`
	Limits map[string]int `koanf:"limits" validate:"dive,min=0"`
}

// TenantsBig is Tenants with its map a bigmap.Map.
type TenantsBig struct {
	Name   string          `koanf:"name" validate:"required"`
	Limits bigmap.Map[int] `koanf:"limits" validate:"dive,min=0"`
}

// limitsOf reads the limits of a Tenants or a TenantsBig.
type limitsOf[T any] func(*T) (get func(key string) int, n int)

// Correctness holds at size, on the path that patches the previous
// snapshot as on the full one, with the limits a Go map and a bigmap.Map:
// with 10,000 keys in etcd over a file, every transaction is applied
// whole, a deleted key falls back to the file's value, an invalid value at
// one key is rejected and the last good snapshot kept, and the next valid
// change applies.
func TestCorrectAtTenThousandKeys(t *testing.T) {
	t.Run("map", func(t *testing.T) {
		correctAtSize(t, func(v *Tenants) (func(string) int, int) {
			return func(k string) int { return v.Limits[k] }, len(v.Limits)
		})
	})
	t.Run("bigmap", func(t *testing.T) {
		correctAtSize(t, func(v *TenantsBig) (func(string) int, int) {
			return func(k string) int { x, _ := v.Limits.Get(k); return x }, v.Limits.Len()
		})
	})
}

func correctAtSize[T any](t *testing.T, limits limitsOf[T]) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	const n = 10000
	for i := 0; i < n; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/data/limits/t%05d", p, j), strconv.Itoa(j)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	file := writeFile(t, "tenants.yaml", "name: fleet\nlimits:\n  t00005: 55\n  fromfile: 1\n")
	cfg, err := config.Load[T](ctx, config.WithFile(file), config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if l, ln := limits(cfg.Get()); ln != n+1 || l("t00005") != 5 || l("fromfile") != 1 {
		t.Fatalf("loaded %d limits, t00005=%d", ln, l("t00005"))
	}
	r := record(cfg)
	lastChange := func() config.Change[T] {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.changes[len(r.changes)-1]
	}

	// Transactions of three keys, applied whole.
	for round := 1; round <= 20; round++ {
		v := strconv.Itoa(100000 + round)
		if _, err := cli.Txn(ctx).Then(
			clientv3.OpPut(p+"/data/limits/t00001", v),
			clientv3.OpPut(p+"/data/limits/t05000", v),
			clientv3.OpPut(p+"/data/limits/t09999", v)).Commit(); err != nil {
			t.Fatal(err)
		}
		r.wait(t, "round "+v, func(ch []config.Change[T], _ []error) bool { return len(ch) == round })
		c := lastChange()
		l, ln := limits(c.New)
		if l("t00001") != 100000+round || l("t05000") != l("t00001") || l("t09999") != l("t00001") {
			t.Fatalf("round %d: half a transaction: %d %d %d", round, l("t00001"), l("t05000"), l("t09999"))
		}
		if len(c.Paths) != 3 || ln != n+1 {
			t.Fatalf("round %d: paths %v, %d limits", round, c.Paths, ln)
		}
		if old, _ := limits(c.Old); old("t00001") == l("t00001") {
			t.Fatalf("round %d: the old value was changed in place", round)
		}
	}

	// A deleted key falls back to the file.
	del(t, cli, p, "limits/t00005")
	r.wait(t, "the fallback", func(ch []config.Change[T], _ []error) bool { return len(ch) == 21 })
	if l, _ := limits(cfg.Get()); l("t00005") != 55 {
		t.Fatalf("after the delete t00005 = %d, want 55 from the file", l("t00005"))
	}
	if o := cfg.Snapshot().Origins["limits.t00005"]; o.Layer != config.LayerFile {
		t.Fatalf("origin of limits.t00005 = %+v", o)
	}

	// An invalid value at one key is rejected; the last good snapshot stays.
	good := cfg.Snapshot()
	rev := put(t, cli, p, "limits/t04242", "-1")
	r.wait(t, "the rejection", func(_ []config.Change[T], errs []error) bool {
		for _, err := range errs {
			var ie *config.InvalidError
			if errors.As(err, &ie) && ie.Revision == rev {
				if len(ie.Problems) != 1 || ie.Problems[0].Origin.Key != p+"/data/limits/t04242" || !strings.Contains(ie.Problems[0].Reason, "-1") {
					t.Errorf("the rejection does not name the key and value: %v", err)
				}
				return true
			}
		}
		return false
	})
	if l, _ := limits(cfg.Get()); cfg.Snapshot() != good || l("t04242") != 4242 {
		t.Fatalf("the rejected value replaced the last good snapshot")
	}
	// The next valid change, elsewhere, applies over etcd's content: it
	// must not carry the rejected value with it.
	put(t, cli, p, "limits/t00007", "70")
	r.wait(t, "a valid change after the rejection", func(_ []config.Change[T], errs []error) bool {
		l, _ := limits(cfg.Get())
		return len(errs) > 1 || l("t00007") == 70
	})
	if l, _ := limits(cfg.Get()); l("t00007") == 70 {
		t.Fatal("a change applied while etcd still holds the invalid t04242")
	}
	put(t, cli, p, "limits/t04242", "4243")
	r.wait(t, "the fix", func(ch []config.Change[T], _ []error) bool { l, _ := limits(cfg.Get()); return l("t04242") == 4243 })
	if l, ln := limits(cfg.Get()); l("t00007") != 70 || ln != n+1 {
		t.Fatalf("after the fix: t00007=%d, %d limits", l("t00007"), ln)
	}
}

// A Writer[T] whose T holds a bigmap.Map writes one entry as one key,
// refuses an entry that breaks the map's dive rule (naming it, nothing
// written), deletes an entry by removing it from the map, and a Config
// bound to the prefix follows every release.
func TestWriterOfBigmap(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	w := mustWriter[TenantsBig](t, cli, p)
	defer w.Close()
	if _, err := w.Replace(ctx, &TenantsBig{Name: "fleet", Limits: bigmap.Of(map[string]int{"acme": 1, "globex": 2})}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load[TenantsBig](ctx, config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	rel, err := w.Update(ctx, func(v *TenantsBig) error { v.Limits = v.Limits.With("acme", 10); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(rel.Changes) != 1 || rel.Changes[0].Key != "limits/acme" {
		t.Fatalf("changes %+v, want the one key limits/acme", rel.Changes)
	}
	r.wait(t, "the update", func([]config.Change[TenantsBig], []error) bool { v, _ := cfg.Get().Limits.Get("acme"); return v == 10 })

	before := revision(t, cli)
	_, err = w.Update(ctx, func(v *TenantsBig) error { v.Limits = v.Limits.With("initech", -5); return nil })
	var ie *config.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Path != "limits[initech]" {
		t.Fatalf("invalid entry: %v", err)
	}
	if after := revision(t, cli); after != before {
		t.Fatalf("an invalid write moved the revision %d → %d", before, after)
	}

	if _, err := w.Update(ctx, func(v *TenantsBig) error { v.Limits = v.Limits.Without("globex"); return nil }); err != nil {
		t.Fatal(err)
	}
	r.wait(t, "the removal", func([]config.Change[TenantsBig], []error) bool { return cfg.Get().Limits.Len() == 1 })
	if _, ok := cfg.Get().Limits.Get("globex"); ok {
		t.Fatal("globex is still there")
	}
	got, _, _, err := w.Get(ctx)
	if err != nil || got.Limits.Len() != 1 || got.Name != "fleet" {
		t.Fatalf("writer's Get: %+v, %v", got, err)
	}
}
