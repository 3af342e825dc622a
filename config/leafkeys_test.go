package config_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strataconf/strata/config"
)

// Keyed is a configuration of plain leaves: Load reads its etcd layer
// without a Keys map (the leaves of the read stand for it).
type Keyed struct {
	Name     string         `koanf:"name"`
	MaxConns int            `koanf:"maxConns"`
	DB       FleetDB        `koanf:"db"`
	Limits   map[string]int `koanf:"limits"`
	Token    string         `koanf:"token" secret:"true"`
}

// TestChangesWithoutKeysMap: a Config whose etcd layer Load read without
// its Keys map applies each kind of change as its first one (a key on the
// fast path, a delete that falls back to a lower layer, a key whose case
// is renamed to its field's, which rebuilds the layer) and gets what a
// fresh Load gets: value, origins, flat values, unknown keys. A key whose
// case Load renames builds the map from the leaves, with the key read.
func TestChangesWithoutKeysMap(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	file := writeFile(t, "keyed.yaml", "name: file\nmaxConns: 1\ndb:\n  host: file-host\n")
	setup := func(t *testing.T) (p string, opts func() []config.Option) {
		p = prefix(t)
		put(t, cli, p, "name", "etcd")
		put(t, cli, p, "db/host", "etcd-host")
		put(t, cli, p, "db/max", "5")
		put(t, cli, p, "token", "tok-value")
		for i := range 20 {
			put(t, cli, p, fmt.Sprintf("limits/k%02d", i), fmt.Sprint(i))
		}
		return p, func() []config.Option { return []config.Option{config.WithFile(file), config.WithEtcd(cli, p)} }
	}
	// matchFresh waits for cfg to run revision rev and compares it with a
	// fresh Load.
	matchFresh := func(t *testing.T, cfg *config.Config[Keyed], r *recorder[Keyed], opts []config.Option, rev int64) *config.Snapshot[Keyed] {
		t.Helper()
		r.wait(t, fmt.Sprint("revision ", rev), func([]config.Change[Keyed], []error) bool { return cfg.Snapshot().Revision >= rev })
		fresh, err := config.Load[Keyed](ctx, append(opts, config.WithWatch(false, false))...)
		if err != nil {
			t.Fatal(err)
		}
		want := fresh.Snapshot()
		fresh.Close()
		got := cfg.Snapshot()
		switch {
		case got.Revision != want.Revision:
			t.Fatalf("revision %d, a fresh Load's %d", got.Revision, want.Revision)
		case !reflect.DeepEqual(got.Value, want.Value):
			t.Fatalf("value\n got %+v\nwant %+v", *got.Value, *want.Value)
		case !reflect.DeepEqual(got.Origins, want.Origins):
			t.Fatalf("origins\n got %v\nwant %v", got.Origins, want.Origins)
		case !reflect.DeepEqual(got.Values(), want.Values()):
			t.Fatalf("values\n got %v\nwant %v", got.Values(), want.Values())
		case !slices.Equal(got.Unknown, want.Unknown):
			t.Fatalf("unknown %v, want %v", got.Unknown, want.Unknown)
		}
		return got
	}
	for _, tc := range []struct {
		name   string
		change func(p string) int64
		check  func(t *testing.T, p string, s *config.Snapshot[Keyed])
	}{
		{"one key", func(p string) int64 { return put(t, cli, p, "limits/k03", "42") },
			func(t *testing.T, p string, s *config.Snapshot[Keyed]) {
				if s.Value.Limits["k03"] != 42 || s.Origins["limits.k03"] != (config.Origin{Layer: config.LayerEtcd, Key: p + "/data/limits/k03"}) {
					t.Fatalf("limits.k03 = %d from %v", s.Value.Limits["k03"], s.Origins["limits.k03"])
				}
			}},
		{"a delete falls back to the file", func(p string) int64 { return del(t, cli, p, "db/host") },
			func(t *testing.T, p string, s *config.Snapshot[Keyed]) {
				if s.Value.DB.Host != "file-host" || s.Origins["db.host"] != (config.Origin{Layer: config.LayerFile, Key: file}) {
					t.Fatalf("db.host = %q from %v", s.Value.DB.Host, s.Origins["db.host"])
				}
			}},
		{"a key renamed to its field's case", func(p string) int64 { return put(t, cli, p, "MaxConns", "7") },
			func(t *testing.T, p string, s *config.Snapshot[Keyed]) {
				if s.Value.MaxConns != 7 || s.Origins["maxConns"] != (config.Origin{Layer: config.LayerEtcd, Key: p + "/data/MaxConns"}) {
					t.Fatalf("maxConns = %d from %v", s.Value.MaxConns, s.Origins["maxConns"])
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, opts := setup(t)
			cfg, err := config.Load[Keyed](ctx, append(opts(), config.WithWatch(true, false))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cfg.Close()
			if config.EtcdKeysBuilt(cfg) {
				t.Fatal("Load of plain leaves built the etcd layer's Keys map")
			}
			r := record(cfg)
			tc.check(t, p, matchFresh(t, cfg, r, opts(), tc.change(p)))
			// The Keys map the first change built (or the rebuilt layer's)
			// serves the next changes: one on the fast path, and one that
			// rebuilds the layer from its keys.
			matchFresh(t, cfg, r, opts(), put(t, cli, p, "limits/k07", "70"))
			matchFresh(t, cfg, r, opts(), put(t, cli, p, "Name", "renamed"))
		})
	}

	t.Run("renamed by Load", func(t *testing.T) {
		p, opts := setup(t)
		put(t, cli, p, "DB/Max", "9") // beside db/max: the exact spelling wins
		put(t, cli, p, "MaxConns", "8")
		cfg, err := config.Load[Keyed](ctx, append(opts(), config.WithWatch(true, false))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		if !config.EtcdKeysBuilt(cfg) {
			t.Fatal("a key renamed by Load left the leaves standing for the Keys")
		}
		s := cfg.Snapshot()
		if s.Value.MaxConns != 8 || s.Origins["maxConns"] != (config.Origin{Layer: config.LayerEtcd, Key: p + "/data/MaxConns"}) ||
			s.Value.DB.Max != 5 || s.Origins["db.max"] != (config.Origin{Layer: config.LayerEtcd, Key: p + "/data/db/max"}) {
			t.Fatalf("maxConns = %d from %v, db.max = %d from %v", s.Value.MaxConns, s.Origins["maxConns"], s.Value.DB.Max, s.Origins["db.max"])
		}
		r := record(cfg)
		matchFresh(t, cfg, r, opts(), put(t, cli, p, "limits/k03", "42"))
		matchFresh(t, cfg, r, opts(), del(t, cli, p, "db/max"))
	})

	// WithRequireEncryption reads every key even without a keyring: the
	// refusal names the path and its key, never the value.
	t.Run("require encryption", func(t *testing.T) {
		p, opts := setup(t)
		_, err := config.Load[Keyed](ctx, append(opts(), config.WithRequireEncryption())...)
		if err == nil || !strings.Contains(err.Error(), "token (etcd key "+p+"/data/token)") || strings.Contains(err.Error(), "tok-value") {
			t.Fatalf("Load with WithRequireEncryption over plain text: %v", err)
		}
	})
}
