package config_test

import (
	"context"
	"testing"

	"github.com/strataconf/strata/config"
)

// Limits has a field whose key is not all lower case, so that the layers
// spell it differently: the tag in defaults, lower case from the
// environment, anything in files and etcd.
type Limits struct {
	MaxConns int `koanf:"maxConns" validate:"min=1"`
	Pool     struct {
		MaxIdle int `koanf:"maxIdle"`
	} `koanf:"pool"`
	Tenants map[string]int `koanf:"tenants"`
}

// Defect: binding matched a key exactly first and fell back to another
// case only when no exact key existed, so the defaults' "maxConns" hid the
// environment's "maxconns" and the override was reported unknown. Keys that
// name the same field are one key in every layer, whatever their case; the
// layer order decides.
func TestKeyCaseDoesNotDecidePrecedence(t *testing.T) {
	cli := client(t)
	defs := Limits{MaxConns: 10}
	defs.Pool.MaxIdle = 1

	t.Run("env over defaults", func(t *testing.T) {
		cfg, err := config.Load[Limits](context.Background(), config.WithDefaults(defs),
			config.WithEnv("APP_"), config.WithEnviron(environ("APP_MAXCONNS=50", "APP_POOL__MAXIDLE=5")), config.WithWatch(false, false))
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		s := cfg.Snapshot()
		if got := cfg.Get(); got.MaxConns != 50 || got.Pool.MaxIdle != 5 {
			t.Fatalf("got %+v, want maxConns 50 and pool.maxIdle 5 from the environment", *got)
		}
		if len(s.Unknown) != 0 {
			t.Fatalf("unknown keys %v", s.Unknown)
		}
		if o := s.Origins["maxConns"]; o.Layer != config.LayerEnv || o.Key != "APP_MAXCONNS" {
			t.Fatalf("origin of maxConns = %+v", o)
		}
	})

	t.Run("file, env and etcd spelled three ways", func(t *testing.T) {
		p := prefix(t)
		put(t, cli, p, "MAXCONNS", "70")
		f := writeFile(t, "limits.yaml", "maxconns: 30\nPool:\n  MaxIdle: 3\ntenants:\n  Acme: 1\n  acme: 2\n")
		cfg, err := config.Load[Limits](context.Background(), config.WithDefaults(defs), config.WithFile(f),
			config.WithEnv("APP_"), config.WithEnviron(environ("APP_MAXCONNS=50")), config.WithEtcd(cli, p))
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		got := cfg.Get()
		if got.MaxConns != 70 || got.Pool.MaxIdle != 3 {
			t.Fatalf("got %+v, want maxConns 70 from etcd and pool.maxIdle 3 from the file", *got)
		}
		if got.Tenants["Acme"] != 1 || got.Tenants["acme"] != 2 {
			t.Fatalf("map keys are data and keep their case: %v", got.Tenants)
		}
		if o := cfg.Snapshot().Origins["maxConns"]; o.Layer != config.LayerEtcd || o.Key != p+"/data/MAXCONNS" {
			t.Fatalf("origin of maxConns = %+v", o)
		}

		// Deleting the etcd key falls back to the environment's value, not
		// the defaults'.
		r := record(cfg)
		del(t, cli, p, "MAXCONNS")
		r.wait(t, "the fallback", func(ch []config.Change[Limits], _ []error) bool { return len(ch) == 1 })
		if got := cfg.Get().MaxConns; got != 50 {
			t.Fatalf("after the delete maxConns = %d, want 50 from the environment", got)
		}
	})

	t.Run("two spellings in one layer: the field's own wins, the other is unknown", func(t *testing.T) {
		f := writeFile(t, "twice.yaml", "maxConns: 4\nmaxconns: 9\n")
		cfg, err := config.Load[Limits](context.Background(), config.WithFile(f), config.WithWatch(false, false))
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		if got := cfg.Get().MaxConns; got != 4 {
			t.Fatalf("maxConns = %d, want 4", got)
		}
		if u := cfg.Snapshot().Unknown; len(u) != 1 || u[0] != "maxconns" {
			t.Fatalf("unknown = %v, want [maxconns]", u)
		}
	})
}

// A Writer[T] merges etcd over its defaults with the same rule: the etcd
// key "maxconns" overrides the defaults' "maxConns".
func TestWriterKeyCase(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "maxconns", "50")
	w, err := config.NewWriter[Limits](cli, p, config.WithWriterDefaults(Limits{MaxConns: 10}))
	if err != nil {
		t.Fatal(err)
	}
	v, _, _, err := w.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.MaxConns != 50 {
		t.Fatalf("Get: maxConns = %d, want 50 from etcd", v.MaxConns)
	}
	if _, err := w.Update(context.Background(), func(l *Limits) error { l.Pool.MaxIdle = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	v, _, _, _ = w.Get(context.Background())
	if v.MaxConns != 50 || v.Pool.MaxIdle != 2 {
		t.Fatalf("after Update: %+v", *v)
	}
}
