package config

import (
	"reflect"
	"testing"

	"github.com/strataconf/strata/providers"
)

// These tests cover the pure logic of the core (merge, origins, diff,
// canonical keys) without etcd.

func content(tree map[string]any, keys map[string]string) *providers.Content {
	return &providers.Content{Tree: tree, Keys: keys}
}

// valuesOf returns the flat values of m, as its snapshot has them.
func valuesOf(m merged) map[string]any {
	out := map[string]any{}
	lazyFlatValues(m.tree, m.origins).each(func(p string, v any) { out[p] = v })
	return out
}

func TestMergeLaterLayerWins(t *testing.T) {
	defaults := layer{kind: LayerDefaults, content: content(
		map[string]any{"db": map[string]any{"host": "localhost", "port": 5432}, "tags": []any{"a"}},
		map[string]string{"db.host": "", "db.port": "", "tags": ""})}
	file := layer{kind: LayerFile, content: content(
		map[string]any{"db": map[string]any{"port": 6432}, "tags": map[string]any{"x": "1"}},
		map[string]string{"db.port": "app.yaml", "tags.x": "app.yaml"})}
	etcd := layer{kind: LayerEtcd, content: content(
		map[string]any{"db": "json text"},
		map[string]string{"db": "/p/data/db"})}

	m := merge([]layer{defaults, file})
	want := map[string]any{"db.host": "localhost", "db.port": 6432, "tags.x": "1"}
	if !reflect.DeepEqual(valuesOf(m), want) {
		t.Fatalf("values = %v, want %v", valuesOf(m), want)
	}
	if o := m.origins["db.port"]; o != (Origin{Layer: LayerFile, Key: "app.yaml"}) {
		t.Fatalf("origin of db.port = %v", o)
	}
	if o := m.origins["db.host"]; o != (Origin{Layer: LayerDefaults}) {
		t.Fatalf("origin of db.host = %v", o)
	}

	// A leaf replaces a subtree, and the layers' trees are left alone.
	m = merge([]layer{defaults, file, etcd})
	if !reflect.DeepEqual(valuesOf(m), map[string]any{"db": "json text", "tags.x": "1"}) {
		t.Fatalf("values = %v", valuesOf(m))
	}
	if _, ok := defaults.content.Tree["db"].(map[string]any)["port"]; !ok {
		t.Fatal("merge modified a layer's tree")
	}
}

// TestMergeLeavesWithoutKeys covers the leaves merge cannot take from the
// layers' Keys: a leaf no layer has a key for, and a key of the tree that
// holds a dot. Values and origins are still those of a walk of the tree.
func TestMergeLeavesWithoutKeys(t *testing.T) {
	low := layer{kind: LayerFile, content: content(
		map[string]any{"a": "1", "b": map[string]any{"c": "2"}},
		map[string]string{"a": "x.yaml"})}
	high := layer{kind: LayerEtcd, content: content(
		map[string]any{"d.e": "3", "b": map[string]any{"f": "4"}},
		map[string]string{"d.e": "/p/data/d.e", "b.f": "/p/data/b/f"})}
	m := merge([]layer{low, high})
	want := map[string]any{"a": "1", "b.c": "2", "b.f": "4", "d.e": "3"}
	if !reflect.DeepEqual(valuesOf(m), want) {
		t.Fatalf("values = %v, want %v", valuesOf(m), want)
	}
	wantOrigins := map[string]Origin{
		"a":   {Layer: LayerFile, Key: "x.yaml"},
		"b.f": {Layer: LayerEtcd, Key: "/p/data/b/f"},
		"d.e": {Layer: LayerEtcd, Key: "/p/data/d.e"},
	}
	if !reflect.DeepEqual(m.origins, wantOrigins) {
		t.Fatalf("origins = %v, want %v", m.origins, wantOrigins)
	}
}

func TestOriginOf(t *testing.T) {
	origins := map[string]Origin{
		"servers.1.host": {Layer: LayerEtcd, Key: "/p/data/servers/1/host"},
		"servers.0.host": {Layer: LayerEtcd, Key: "/p/data/servers/0/host"},
		"db.port":        {Layer: LayerFile, Key: "a.yaml"},
	}
	for path, want := range map[string]Origin{
		"db.port": {Layer: LayerFile, Key: "a.yaml"},
		"servers": {Layer: LayerEtcd, Key: "/p/data/servers/0/host"}, // the first leaf beneath
		"db.host": {},
		"serv":    {}, // a prefix of a segment is not beneath
	} {
		got, ok := originOf(origins, path)
		if got != want || ok != (want != Origin{}) {
			t.Errorf("originOf(%q) = %v, %v; want %v", path, got, ok, want)
		}
	}
}

func TestDiff(t *testing.T) {
	old := newFlatValues(map[string]any{"a": 1, "b": []any{"x"}, "c": "gone"})
	new := newFlatValues(map[string]any{"a": 1, "b": []any{"y"}, "d": "new"})
	if got, want := diff(old, new), []string{"b", "c", "d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("diff = %v, want %v", got, want)
	}
	if got := diff(old, old); len(got) != 0 {
		t.Fatalf("diff of equal values = %v", got)
	}
}

func TestBinderCanonicalMovesKeys(t *testing.T) {
	type limits struct {
		MaxConns int `koanf:"maxConns"`
	}
	b := newBinder[limits]()
	in := content(map[string]any{"maxconns": "5", "other": "x"},
		map[string]string{"maxconns": "APP_MAXCONNS", "other": "APP_OTHER"})
	got := b.canonical(in, nil)
	if !reflect.DeepEqual(got.Tree, map[string]any{"maxConns": "5", "other": "x"}) {
		t.Fatalf("tree = %v", got.Tree)
	}
	if !reflect.DeepEqual(got.Keys, map[string]string{"maxConns": "APP_MAXCONNS", "other": "APP_OTHER"}) {
		t.Fatalf("keys = %v", got.Keys)
	}
	if _, ok := in.Keys["maxconns"]; !ok {
		t.Fatal("canonical modified its input")
	}
}

func TestFlatValuesWith(t *testing.T) {
	base := map[string]any{}
	for i := range 100 {
		base[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	f := newFlatValues(base)
	g := f.with(map[string]overValue{"aa": {v: "x"}, "new": {v: 1}, "ba": {removed: true}})
	if v, ok := g.get("aa"); !ok || v != "x" {
		t.Fatalf("aa = %v %v", v, ok)
	}
	if _, ok := g.get("ba"); ok {
		t.Fatal("ba still there")
	}
	if g.len() != 100 || f.len() != 100 {
		t.Fatalf("len %d, old %d", g.len(), f.len())
	}
	if v, _ := f.get("aa"); v != 0 {
		t.Fatalf("the old view changed: aa = %v", v)
	}
	// Many changes rebase; the views stay what they were.
	h := g
	for i := range 40 {
		h = h.with(map[string]overValue{"new": {v: i}})
	}
	if v, _ := h.get("new"); v != 39 || h.len() != 100 {
		t.Fatalf("after 40 changes: new = %v, len %d", v, h.len())
	}
	if v, _ := g.get("new"); v != 1 {
		t.Fatalf("an older view changed: new = %v", v)
	}
	n := 0
	h.each(func(string, any) { n++ })
	if n != 100 {
		t.Fatalf("each saw %d paths", n)
	}
}

// TestLazyFlatValues covers the flat values of a merge, made from the
// merged tree at first use: they are those of a walk of the tree, leaves
// without an origin included, and once made they keep what the tree held
// then, whatever is done to it after (the reload loop patches a layer's
// tree in place once it has made them).
func TestLazyFlatValues(t *testing.T) {
	only := layer{kind: LayerEtcd, content: content(
		map[string]any{"a": "1", "b": map[string]any{"c": "2", "d": "3"}},
		map[string]string{"a": "/p/data/a", "b.c": "/p/data/b/c"})}
	m := merge([]layer{only})
	wantOrigins := map[string]Origin{
		"a":   {Layer: LayerEtcd, Key: "/p/data/a"},
		"b.c": {Layer: LayerEtcd, Key: "/p/data/b/c"},
	}
	if !reflect.DeepEqual(m.origins, wantOrigins) {
		t.Fatalf("origins = %v, want %v", m.origins, wantOrigins)
	}
	f := lazyFlatValues(m.tree, m.origins)
	want := map[string]any{"a": "1", "b.c": "2", "b.d": "3"}
	if f.len() != len(want) {
		t.Fatalf("len = %d, want %d", f.len(), len(want))
	}
	setLeaf(only.content.Tree, "b.c", "changed")
	removeLeaf(only.content.Tree, "a")
	got := map[string]any{}
	f.each(func(p string, v any) { got[p] = v })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("values = %v, want %v", got, want)
	}
}
