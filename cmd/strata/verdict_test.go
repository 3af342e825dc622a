package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
)

// overlayApp is an application whose required db.host comes from its file:
// etcd holds only overrides.
type overlayApp struct {
	Name string `koanf:"name" validate:"required"`
	Port int    `koanf:"port" validate:"required,min=1,max=65535"`
	DB   struct {
		Host string `koanf:"host" validate:"required"`
		Pool int    `koanf:"pool" validate:"omitempty,min=1,max=100"`
	} `koanf:"db"`
}

// overlayStart is what etcd holds before each case.
var overlayStart = config.Content{"name": "payments", "port": "8080", "db/pool": "10"}

// TestOverlayVerdicts runs one table of changes through Writer[T] (no
// options), RawWriter and `strata push`, on a prefix whose application
// published its relaxed schema: the three give the same verdict.
func TestOverlayVerdicts(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	cli := c.Client(t)
	ctx := context.Background()
	cases := []struct {
		name    string
		set     map[string]string
		del     []string
		invalid string // the path the verdict names; empty: accepted
	}{
		{name: "raise pool", set: map[string]string{"db/pool": "20"}},
		{name: "rename", set: map[string]string{"name": "billing"}},
		{name: "port zero", set: map[string]string{"port": "0"}, invalid: "port"},
		{name: "port too big", set: map[string]string{"port": "70000"}, invalid: "port"},
		{name: "port not a number", set: map[string]string{"port": "abc"}, invalid: "port"},
		{name: "pool too big", set: map[string]string{"db/pool": "500"}, invalid: "db.pool"},
		{name: "delete pool", del: []string{"db/pool"}},
		{name: "delete name, nothing below provides it", del: []string{"name"}, invalid: "name"},
		{name: "empty host overrides the file", set: map[string]string{"db/host": ""}, invalid: "db.host"},
		{name: "host override", set: map[string]string{"db/host": "db2.internal"}},
	}
	n := 0
	setup := func(t *testing.T) string {
		n++
		p := fmt.Sprintf("/verdicts/%d", n)
		loadApp(t, cli, p)
		return p
	}
	for _, tc := range cases {
		want := "ok"
		if tc.invalid != "" {
			want = "invalid " + tc.invalid
		}
		t.Run(tc.name, func(t *testing.T) {
			// Writer[T], as a newcomer builds it: no options.
			p := setup(t)
			w, err := config.NewWriter[overlayApp](cli, p)
			if err != nil {
				t.Fatal(err)
			}
			got := verdictOf(func() error {
				for _, k := range slices.Sorted(maps.Keys(tc.set)) {
					if _, err := w.Set(ctx, strings.ReplaceAll(k, "/", "."), tc.set[k]); err != nil {
						return err
					}
				}
				for _, k := range tc.del {
					if _, err := w.Delete(ctx, strings.ReplaceAll(k, "/", ".")); err != nil {
						return err
					}
				}
				return nil
			}())
			if got != want {
				t.Errorf("Writer[T]: %s, want %s", got, want)
			}

			// RawWriter against the published schema.
			p = setup(t)
			rw := mustRaw(t, cli, p)
			got = verdictOf(func() error {
				_, err := rw.Modify(ctx, func(c config.Content) error {
					maps.Copy(c, tc.set)
					for _, k := range tc.del {
						delete(c, k)
					}
					return nil
				})
				return err
			}())
			if got != want {
				t.Errorf("RawWriter: %s, want %s", got, want)
			}

			// strata push of the whole document.
			p = setup(t)
			doc := maps.Clone(overlayStart)
			maps.Copy(doc, tc.set)
			for _, k := range tc.del {
				delete(doc, k)
			}
			file := filepath.Join(t.TempDir(), "app.yaml")
			if err := os.WriteFile(file, []byte(yamlOf(doc)), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, "", "--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", p, "push", "-f", file)
			switch {
			case code == 0:
				got = "ok"
			case code == 4:
				got = "invalid " + firstProblemPath(errOut)
			default:
				got = fmt.Sprintf("exit %d: %s", code, errOut)
			}
			if got != want {
				t.Errorf("strata push: %s, want %s", got, want)
			}
		})
	}
}

// loadApp seeds p with overlayStart and runs the application once: it loads
// overlayApp from its file (db.host) and etcd, and publishes its schema,
// relaxed by what the file provides.
func loadApp(t *testing.T, cli *clientv3.Client, p string) {
	t.Helper()
	ctx := context.Background()
	for k, v := range overlayStart {
		if _, err := cli.Put(ctx, p+"/data/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, []byte("db:\n  host: db.internal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := config.Load[overlayApp](lctx, config.WithFile(file), config.WithEtcd(cli, p),
		config.WithPublishSchema(), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Close()
}

// verdictOf renders the outcome of a write: "ok" or "invalid <first path>".
func verdictOf(err error) string {
	var ie *config.InvalidError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ie) && len(ie.Problems) > 0:
		return "invalid " + ie.Problems[0].Path
	default:
		return "error: " + err.Error()
	}
}

// firstProblemPath finds the first failing path in strata's one-line
// error: "strata: invalid configuration: port (etcd key ...): failed ...".
func firstProblemPath(out string) string {
	const lead = "strata: invalid configuration: "
	i := strings.Index(out, lead)
	if i < 0 {
		return "?" + out
	}
	rest := out[i+len(lead):]
	return rest[:strings.IndexAny(rest, " :")]
}

// yamlOf renders flat content as a YAML document of nested maps.
func yamlOf(c config.Content) string {
	tree := map[string]any{}
	for k, v := range c {
		segs := strings.Split(k, "/")
		m := tree
		for _, s := range segs[:len(segs)-1] {
			if m[s] == nil {
				m[s] = map[string]any{}
			}
			m = m[s].(map[string]any)
		}
		m[segs[len(segs)-1]] = v
	}
	var b strings.Builder
	var walk func(m map[string]any, indent string)
	walk = func(m map[string]any, indent string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if sub, ok := m[k].(map[string]any); ok {
				fmt.Fprintf(&b, "%s%s:\n", indent, k)
				walk(sub, indent+"  ")
				continue
			}
			fmt.Fprintf(&b, "%s%s: %q\n", indent, k, m[k])
		}
	}
	walk(tree, "")
	return b.String()
}

func mustRaw(t testing.TB, cli *clientv3.Client, p string) *config.RawWriter {
	t.Helper()
	w, err := config.NewRawWriter(cli, p)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
