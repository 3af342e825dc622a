package config_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/bigmap"
	"github.com/strataconf/strata/config"
)

// Fleet is a configuration whose changes mostly take the fast path: plain
// leaves under structs, pointers, maps and bigmap.Maps, with rules on fields, maps and
// their elements, and a cross-field rule.
type Fleet struct {
	Name    string            `koanf:"name" validate:"required"`
	Mode    string            `koanf:"mode" validate:"oneof=a b"`
	Backup  string            `koanf:"backup" validate:"required_if=Mode b"`
	DB      FleetDB           `koanf:"db"`
	Replica *FleetDB          `koanf:"replica"`
	Flags   map[string]bool   `koanf:"flags"`
	Limits  map[string]int    `koanf:"limits" validate:"max=400,dive,min=0"`
	Tenants map[string]Tenant `koanf:"tenants" validate:"dive"`
	// The same as bigmap.Maps.
	Quotas bigmap.Map[int]    `koanf:"quotas" validate:"max=400,dive,min=0"`
	Zones  bigmap.Map[Tenant] `koanf:"zones" validate:"dive"`
}

type FleetDB struct {
	Host string `koanf:"host"`
	Min  int    `koanf:"min" validate:"min=0"`
	Max  int    `koanf:"max" validate:"gtefield=Min"`
}

type Tenant struct {
	Rate  int    `koanf:"rate" validate:"min=1"`
	Token string `koanf:"token" secret:"true"`
}

// The snapshot after every change, whether built from the previous one
// (the fast path) or from every layer, equals what a fresh Load of the
// same layers gives: value, origins, flat values, unknown keys. Invalid
// changes are rejected and the last good snapshot stays.
func TestChangesMatchAFreshLoad(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { changesMatchAFreshLoad(t, seed) })
	}
}

func changesMatchAFreshLoad(t *testing.T, seed uint64) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	file := writeFile(t, "fleet.yaml", "name: fleet\nmode: a\ndb:\n  host: file-host\n  max: 5\nlimits:\n  base: 1\nquotas:\n  base: 1\nflags:\n  fromfile: true\n")
	defs := Fleet{DB: FleetDB{Min: 1, Max: 2}}
	opts := func() []config.Option {
		return []config.Option{config.WithDefaults(defs), config.WithFile(file), config.WithEtcd(cli, p)}
	}
	// More limits than codec.SpareLen: changes to them take the copies made
	// ahead (codec.Patcher).
	for i := range 300 {
		put(t, cli, p, fmt.Sprintf("limits/k%02d", i), fmt.Sprint(i))
		put(t, cli, p, fmt.Sprintf("quotas/k%02d", i), fmt.Sprint(i))
	}
	put(t, cli, p, "tenants/acme/rate", "3")
	put(t, cli, p, "tenants/acme/token", "tok-acme")
	put(t, cli, p, "zones/acme/rate", "3")
	put(t, cli, p, "zones/acme/token", "tok-acme")
	cfg, err := config.Load[Fleet](ctx, append(opts(), config.WithWatch(true, false))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	r := record(cfg)

	rng := rand.New(rand.NewPCG(seed, 2))
	// Mostly valid values per key, and now and then one that is not.
	valid := map[string][]string{
		"name": {"x", "y"}, "mode": {"a", "b"}, "backup": {"bk", ""}, "db/host": {"h1", "h2"},
		"db/min": {"0", "1", "2"}, "db/max": {"3", "9"}, "replica/host": {"r"}, "replica/min": {"0", "1"},
		"flags/a": {"true", "false"}, "flags/fromfile": {"false", "true"}, "limits/base": {"2", "5"},
		"limits/k03": {"0", "8"}, "limits/new": {"4"}, "tenants/acme/rate": {"1", "6"},
		"tenants/beta/rate": {"2"}, "tenants/acme/token": {"tok-1", "tok-2"}, "unknownkey": {"u"},
		"quotas/base": {"2", "5"}, "quotas/k03": {"0", "8"}, "quotas/new": {"4"}, "zones/acme/rate": {"1", "6"},
		"zones/beta/rate": {"2"}, "zones/acme/token": {"tok-1", "tok-2"},
		// Keys that change the shape of the tree: a leaf above others
		// (JSON text) and a document.
		"replica": {`{"host":"rj","min":1}`}, "flags.yaml": {"a: true\n", "z: false\nfromfile: false\n"},
	}
	keys := slices.Sorted(maps.Keys(valid))
	invalid := []string{"-1", "x", "", "oops"}
	value := func(key string) string {
		if rng.IntN(10) == 0 && key != "flags.yaml" { // a document that does not parse is a source error, not a rejection
			return invalid[rng.IntN(len(invalid))]
		}
		return valid[key][rng.IntN(len(valid[key]))]
	}
	for step := range 300 {
		key := keys[rng.IntN(len(keys))]
		var rev int64
		if rng.IntN(4) == 0 {
			resp, err := cli.Delete(ctx, p+"/data/"+key)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Deleted == 0 {
				continue
			}
			rev = resp.Header.Revision
		} else if rng.IntN(8) == 0 {
			// Two keys in one transaction.
			resp, err := cli.Txn(ctx).Then(
				clientv3.OpPut(p+"/data/limits/k01", value("limits/k03")),
				clientv3.OpPut(p+"/data/quotas/k01", value("quotas/k03")),
				clientv3.OpPut(p+"/data/quotas/k02", value("quotas/k03")),
				clientv3.OpPut(p+"/data/db/max", value("db/max"))).Commit()
			if err != nil {
				t.Fatal(err)
			}
			rev = resp.Header.Revision
		} else {
			rev = put(t, cli, p, key, value(key))
		}
		r.wait(t, fmt.Sprintf("step %d (revision %d)", step, rev), func(_ []config.Change[Fleet], errs []error) bool {
			if cfg.Snapshot().Revision >= rev {
				return true
			}
			for _, err := range errs {
				var ie *config.InvalidError
				if errors.As(err, &ie) && ie.Revision >= rev {
					return true
				}
			}
			return false
		})
		fresh, err := config.Load[Fleet](ctx, append(opts(), config.WithWatch(false, false))...)
		got := cfg.Snapshot()
		if err != nil {
			// Rejected: the running Config kept a snapshot older than rev.
			if got.Revision >= rev {
				t.Fatalf("step %d: a fresh Load rejects revision %d (%v), the Config runs it (revision %d): %+v", step, rev, err, got.Revision, *got.Value)
			}
			continue
		}
		want := fresh.Snapshot()
		fresh.Close()
		if got.Revision != rev {
			t.Fatalf("step %d: the Config runs revision %d, a fresh Load accepts %d", step, got.Revision, rev)
		}
		if !reflect.DeepEqual(got.Value, want.Value) {
			t.Fatalf("step %d: value\n got %+v\nwant %+v", step, *got.Value, *want.Value)
		}
		if !reflect.DeepEqual(got.Origins, want.Origins) {
			t.Fatalf("step %d: origins differ\n got %v\nwant %v", step, got.Origins, want.Origins)
		}
		if !reflect.DeepEqual(got.Values(), want.Values()) {
			t.Fatalf("step %d: values differ\n got %v\nwant %v", step, got.Values(), want.Values())
		}
		if !slices.Equal(got.Unknown, want.Unknown) {
			t.Fatalf("step %d: unknown %v, want %v", step, got.Unknown, want.Unknown)
		}
	}
}
