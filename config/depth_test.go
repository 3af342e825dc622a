package config_test

import (
	"context"
	"testing"

	"github.com/strataconf/strata/config"
)

type Deep struct {
	A struct {
		B struct {
			X int `koanf:"x"`
			Y int `koanf:"y"`
		} `koanf:"b"`
		C int `koanf:"c"`
	} `koanf:"a"`
}

// Within the etcd layer a deeper key wins over a shallower one, whether
// each is a leaf or a document (README, "Keys in etcd").
func TestDeeperKeyWinsLeafOrDocument(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "a", `{"b":{"x":1,"y":1},"c":1}`) // a leaf at a
	put(t, cli, p, "a/b.yaml", "x: 2\n")             // a deeper document at a.b
	cfg, err := config.Load[Deep](context.Background(), config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	v, s := cfg.Get(), cfg.Snapshot()
	if v.A.B.X != 2 || s.Origins["a.b.x"].Key != p+"/data/a/b.yaml" {
		t.Fatalf("leaf a over document a/b.yaml: a.b.x = %d from %v, want 2 from the document", v.A.B.X, s.Origins["a.b.x"])
	}
	// The leaf's JSON text is one value: the deeper key replaced it whole.
	if v.A.C != 0 || v.A.B.Y != 0 {
		t.Fatalf("leaf a over document a/b.yaml: %+v", *v)
	}

	// A leaf deeper than a document wins over it too.
	r := record(cfg)
	del(t, cli, p, "a")
	put(t, cli, p, "a.yaml", "b: {x: 3, y: 3}\nc: 3\n")
	put(t, cli, p, "a/b/y", "4")
	r.wait(t, "a/b/y", func(ch []config.Change[Deep], _ []error) bool { return len(ch) > 0 && ch[len(ch)-1].New.A.B.Y == 4 })
	v, s = cfg.Get(), cfg.Snapshot()
	if v.A.C != 3 || v.A.B.Y != 4 || v.A.B.X != 2 || s.Origins["a.b.y"].Key != p+"/data/a/b/y" || s.Origins["a.b.x"].Key != p+"/data/a/b.yaml" {
		t.Fatalf("document a.yaml, document a/b.yaml, leaf a/b/y: %+v, origins %v", *v, s.Origins)
	}
}
