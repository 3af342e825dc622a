package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// overlayWith returns overlayStart with set written over it and del removed.
func overlayWith(set map[string]string, del ...string) config.Content {
	c := maps.Clone(overlayStart)
	maps.Copy(c, set)
	for _, k := range del {
		delete(c, k)
	}
	return c
}

// A verdictCase is one change, judged through Writer[T] (no options),
// RawWriter and the strata CLI. It is one of three kinds:
//
//   - leaf: set and del, through Writer[T].Set/Delete, Writer[T].Update
//     (update), RawWriter.Modify and `strata push` of the whole document;
//   - replace: the whole etcd content becomes replace, through
//     Writer[T].Replace (the value Get returns, changed by value),
//     RawWriter.Replace and `strata push`;
//   - rollback: a release holding rollbackTo is written (unchecked) and
//     then undone; then it is rolled back to through Writer[T].Rollback,
//     RawWriter.Rollback and `strata rollback` (missing: a release that
//     does not exist).
type verdictCase struct {
	name string

	set    map[string]string
	del    []string
	update func(*overlayApp) // nil: T cannot express the change (see the case)

	replace config.Content
	value   func(*overlayApp) // nil: T cannot express the content

	rollbackTo config.Content
	missing    bool

	// want is the verdict of all three with the application's relaxed
	// schema published: "ok", "invalid <first path>" or "not found".
	want string
	// noSchema is the verdict of Writer[T], RawWriter and strata, in that
	// order, on a prefix where no schema is published.
	noSchema [3]string
}

func (tc verdictCase) kind() string {
	switch {
	case tc.replace != nil:
		return "replace"
	case tc.rollbackTo != nil || tc.missing:
		return "rollback"
	}
	return "leaf"
}

// The table holds once the application has published its relaxed schema:
// that schema is what tells every writer that nothing below etcd provides
// name (and that db.host is provided). Without a published schema the
// verdicts differ, and noSchema records how:
//
//   - RawWriter and strata validate nothing (strata warns on stderr that
//     nothing was validated), so every change is accepted;
//   - Writer[T] still binds and validates T, judging only the paths etcd
//     sets: a value etcd holds must satisfy its field's rules, but a
//     required field etcd does not set (name once deleted) is not an error;
//   - Writer[T].Replace cannot remove a plain field's leaf: a zero value at
//     a path etcd holds is written as "" or "0", so "replace without name"
//     writes name="" which fails required even without a schema.
var verdictCases = []verdictCase{
	// Leaf changes.
	{name: "raise pool", set: map[string]string{"db/pool": "20"},
		update: func(a *overlayApp) { a.DB.Pool = 20 },
		want:   "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "rename", set: map[string]string{"name": "billing"},
		update: func(a *overlayApp) { a.Name = "billing" },
		want:   "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "empty name", set: map[string]string{"name": ""},
		update: func(a *overlayApp) { a.Name = "" },
		want:   "invalid name", noSchema: [3]string{"invalid name", "ok", "ok"}},
	{name: "port zero", set: map[string]string{"port": "0"},
		update: func(a *overlayApp) { a.Port = 0 },
		want:   "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	{name: "port too big", set: map[string]string{"port": "70000"},
		update: func(a *overlayApp) { a.Port = 70000 },
		want:   "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	// Update cannot write a port that is not a number into an int field.
	{name: "port not a number", set: map[string]string{"port": "abc"},
		want: "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	{name: "pool too big", set: map[string]string{"db/pool": "500"},
		update: func(a *overlayApp) { a.DB.Pool = 500 },
		want:   "invalid db.pool", noSchema: [3]string{"invalid db.pool", "ok", "ok"}},
	// Update cannot delete a leaf of a plain field (the zero value is
	// written instead): the delete rows go through Set/Delete only.
	{name: "delete pool", del: []string{"db/pool"},
		want: "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "delete name, nothing below provides it", del: []string{"name"},
		want: "invalid name", noSchema: [3]string{"ok", "ok", "ok"}},
	// Update sees db.host as "" (the writer does not see the file), so
	// setting it to "" changes nothing: only Set can write the empty value.
	{name: "empty host overrides the file", set: map[string]string{"db/host": ""},
		want: "invalid db.host", noSchema: [3]string{"invalid db.host", "ok", "ok"}},
	{name: "host override", set: map[string]string{"db/host": "db2.internal"},
		update: func(a *overlayApp) { a.DB.Host = "db2.internal" },
		want:   "ok", noSchema: [3]string{"ok", "ok", "ok"}},

	// Replace.
	{name: "replace: rename and raise pool", replace: overlayWith(map[string]string{"name": "billing", "db/pool": "20"}),
		value: func(a *overlayApp) { a.Name = "billing"; a.DB.Pool = 20 },
		want:  "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "replace: host override", replace: overlayWith(map[string]string{"db/host": "db2.internal"}),
		value: func(a *overlayApp) { a.DB.Host = "db2.internal" },
		want:  "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "replace: port zero", replace: overlayWith(map[string]string{"port": "0"}),
		value: func(a *overlayApp) { a.Port = 0 },
		want:  "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	{name: "replace: pool too big", replace: overlayWith(map[string]string{"db/pool": "500"}),
		value: func(a *overlayApp) { a.DB.Pool = 500 },
		want:  "invalid db.pool", noSchema: [3]string{"invalid db.pool", "ok", "ok"}},
	{name: "replace: port not a number", replace: overlayWith(map[string]string{"port": "abc"}),
		want: "invalid port", noSchema: [3]string{"", "ok", "ok"}},
	// Writer[T].Replace writes name="" where the others delete name.
	{name: "replace: without name", replace: overlayWith(nil, "name"),
		value: func(a *overlayApp) { a.Name = "" },
		want:  "invalid name", noSchema: [3]string{"invalid name", "ok", "ok"}},

	// Rollback.
	{name: "rollback: to a raised pool", rollbackTo: overlayWith(map[string]string{"db/pool": "20"}),
		want: "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "rollback: to a host override", rollbackTo: overlayWith(map[string]string{"db/host": "db2.internal"}),
		want: "ok", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "rollback: to port zero", rollbackTo: overlayWith(map[string]string{"port": "0"}),
		want: "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	{name: "rollback: to port not a number", rollbackTo: overlayWith(map[string]string{"port": "abc"}),
		want: "invalid port", noSchema: [3]string{"invalid port", "ok", "ok"}},
	{name: "rollback: to an empty host", rollbackTo: overlayWith(map[string]string{"db/host": ""}),
		want: "invalid db.host", noSchema: [3]string{"invalid db.host", "ok", "ok"}},
	{name: "rollback: to a release without name", rollbackTo: overlayWith(nil, "name"),
		want: "invalid name", noSchema: [3]string{"ok", "ok", "ok"}},
	{name: "rollback: to a release that does not exist", missing: true,
		want: "not found", noSchema: [3]string{"not found", "not found", "not found"}},
}

// TestOverlayVerdicts runs one table of changes (leaf writes, Replace and
// Rollback) through Writer[T] (no options; leaf changes through Set/Delete
// and through Update), RawWriter and the strata CLI (push, rollback), on a
// prefix whose application published its relaxed schema: the three give
// the same verdict. The sub-test without a schema records what differs
// when no schema is published (see verdictCases).
func TestOverlayVerdicts(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	cli := c.Client(t)
	for _, published := range []bool{true, false} {
		t.Run(fmt.Sprintf("published=%v", published), func(t *testing.T) {
			n := 0
			setup := func(t *testing.T) string {
				t.Helper()
				n++
				p := fmt.Sprintf("/verdicts/%v/%d", published, n)
				if published {
					loadApp(t, cli, p)
				} else {
					seedOverlay(t, cli, p)
				}
				return p
			}
			for _, tc := range verdictCases {
				t.Run(tc.name, func(t *testing.T) {
					want := [3]string{tc.want, tc.want, tc.want}
					if !published {
						want = tc.noSchema
					}
					runVerdictCase(t, cli, c.Endpoints(), setup, tc, want, published)
				})
			}
		})
	}
}

// runVerdictCase runs tc through the three writers and compares each
// verdict with want (Writer[T], RawWriter, strata; "" skips Writer[T]'s).
func runVerdictCase(t *testing.T, cli *clientv3.Client, endpoints []string, setup func(*testing.T) string, tc verdictCase, want [3]string, published bool) {
	ctx := context.Background()
	// check compares a verdict, then what etcd holds under p: the
	// content after on "ok", else the content before (overlayStart).
	check := func(who, p string, after config.Content, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s, want %s", who, got, want)
		}
		if got != "ok" {
			after = overlayStart
		}
		if held := heldUnder(t, cli, p); !maps.Equal(held, after) {
			t.Errorf("%s (%s): etcd holds %v, want %v", who, got, held, after)
		}
	}
	// rollbackTarget writes a release holding tc.rollbackTo without any
	// check, then one holding overlayStart again, and returns the version
	// to roll back to.
	rollbackTarget := func(p string) int64 {
		t.Helper()
		if tc.missing {
			return 99
		}
		unchecked, err := config.NewRawWriter(cli, p, config.WithoutSchemaCheck())
		if err != nil {
			t.Fatal(err)
		}
		rel, err := unchecked.Replace(ctx, tc.rollbackTo, config.Message("the release rolled back to"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unchecked.Replace(ctx, overlayStart); err != nil {
			t.Fatal(err)
		}
		return rel.Version
	}
	cliRun := func(p string, args ...string) string {
		t.Helper()
		args = append([]string{"--endpoints", strings.Join(endpoints, ","), "--prefix", p}, args...)
		code, _, errOut := runCLI(t, "", args...)
		if warned := strings.Count(errOut, "nothing was validated"); code == 0 && warned != map[bool]int{true: 0, false: 1}[published] {
			t.Errorf("strata %s: the no-schema warning shows %d times (published=%v): %s", args[4], warned, published, errOut)
		}
		switch {
		case code == 0:
			return "ok"
		case code == exitInvalid:
			return "invalid " + firstProblemPath(errOut)
		case code == exitError && strings.Contains(errOut, "not found"):
			return "not found"
		}
		return fmt.Sprintf("exit %d: %s", code, errOut)
	}
	push := func(p string, doc config.Content) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "app.yaml")
		if err := os.WriteFile(file, []byte(yamlOf(doc)), 0o600); err != nil {
			t.Fatal(err)
		}
		return cliRun(p, "push", "-f", file)
	}
	newWriter := func(p string) *config.Writer[overlayApp] {
		t.Helper()
		w, err := config.NewWriter[overlayApp](cli, p) // as a newcomer builds it: no options
		if err != nil {
			t.Fatal(err)
		}
		return w
	}

	switch tc.kind() {
	case "leaf":
		// Writer[T] through Set and Delete.
		after := overlayWith(tc.set, tc.del...)
		p := setup(t)
		w := newWriter(p)
		check("Writer[T].Set/Delete", p, after, verdictOf(func() error {
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
		}()), want[0])

		// Writer[T] through Update.
		if tc.update != nil {
			p := setup(t)
			rel, err := newWriter(p).Update(ctx, func(a *overlayApp) error { tc.update(a); return nil })
			check("Writer[T].Update", p, after, verdictOf(err), want[0])
			if err == nil && len(rel.Changes) == 0 {
				t.Errorf("Writer[T].Update changed nothing")
			}
		}

		// RawWriter.
		p = setup(t)
		rw := mustRaw(t, cli, p)
		check("RawWriter.Modify", p, after, verdictOf(func() error {
			_, err := rw.Modify(ctx, func(c config.Content) error {
				maps.Copy(c, tc.set)
				for _, k := range tc.del {
					delete(c, k)
				}
				return nil
			})
			return err
		}()), want[1])

		// strata push of the whole document.
		p = setup(t)
		check("strata push", p, after, push(p, after), want[2])

	case "replace":
		if tc.value != nil && want[0] != "" {
			p := setup(t)
			w := newWriter(p)
			check("Writer[T].Replace", p, tc.replace, verdictOf(func() error {
				v, _, _, err := w.Get(ctx)
				if err != nil {
					return err
				}
				tc.value(v)
				_, err = w.Replace(ctx, v)
				return err
			}()), want[0])
		}
		p := setup(t)
		_, err := mustRaw(t, cli, p).Replace(ctx, tc.replace)
		check("RawWriter.Replace", p, tc.replace, verdictOf(err), want[1])
		p = setup(t)
		check("strata push", p, tc.replace, push(p, tc.replace), want[2])

	case "rollback":
		p := setup(t)
		n := rollbackTarget(p)
		_, err := newWriter(p).Rollback(ctx, n)
		check("Writer[T].Rollback", p, tc.rollbackTo, verdictOf(err), want[0])

		p = setup(t)
		n = rollbackTarget(p)
		_, err = mustRaw(t, cli, p).Rollback(ctx, n)
		check("RawWriter.Rollback", p, tc.rollbackTo, verdictOf(err), want[1])

		p = setup(t)
		n = rollbackTarget(p)
		check("strata rollback", p, tc.rollbackTo, cliRun(p, "rollback", strconv.FormatInt(n, 10)), want[2])
	}
}

// heldUnder returns what etcd holds under p/data/.
func heldUnder(t *testing.T, cli *clientv3.Client, p string) config.Content {
	t.Helper()
	resp, err := cli.Get(context.Background(), p+"/data/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	c := config.Content{}
	for _, kv := range resp.Kvs {
		c[strings.TrimPrefix(string(kv.Key), p+"/data/")] = string(kv.Value)
	}
	return c
}

// seedOverlay puts overlayStart under p, with no application run and no schema
// published.
func seedOverlay(t *testing.T, cli *clientv3.Client, p string) {
	t.Helper()
	for k, v := range overlayStart {
		if _, err := cli.Put(context.Background(), p+"/data/"+k, v); err != nil {
			t.Fatal(err)
		}
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

// verdictOf renders the outcome of a write: "ok", "invalid <first path>"
// or "not found".
func verdictOf(err error) string {
	var ie *config.InvalidError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ie) && len(ie.Problems) > 0:
		return "invalid " + ie.Problems[0].Path
	case errors.Is(err, config.ErrNotFound):
		return "not found"
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
