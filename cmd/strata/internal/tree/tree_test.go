package tree

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

var layout = etcdprov.NewLayout("/app")

const testSchema = `{
  "$defs": {"port": {"type": "integer"}},
  "type": "object",
  "properties": {
    "port": {"$ref": "#/$defs/port"},
    "ratio": {"type": "number"},
    "debug": {"type": "boolean"},
    "name": {"type": "string"},
    "either": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
    "list": {"type": "array", "items": {"type": "integer"}},
    "obj": {"type": "object"},
    "servers": {"type": "array", "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
    "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
    "pass": {"type": "string", "x-secret": true}
  }
}`

func TestTyped(t *testing.T) {
	types, err := NewTypes([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := config.Content{
		"port": "8080", "ratio": "0.5", "debug": "true", "name": "42", "either": "false",
		"list": "[1,2]", "obj": `{"a":"b"}`, "servers/0/port": "1", "labels/x": "7",
		"unknown": "5",
		// Texts that would not come back the same stay text.
		"ratio2": "1.50",
	}
	c["labels/y"] = "07"
	tr, leafPaths, err := Of(layout, c)
	if err != nil {
		t.Fatal(err)
	}
	got := types.Typed(tr, leafPaths)
	want := map[string]any{
		"port": int64(8080), "ratio": 0.5, "debug": true, "name": "42", "either": false,
		"list": []any{int64(1), int64(2)}, "obj": map[string]any{"a": "b"},
		"servers": map[string]any{"0": map[string]any{"port": int64(1)}},
		"labels":  map[string]any{"x": int64(7), "y": "07"},
		"unknown": "5", "ratio2": "1.50",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Typed:\n got %#v\nwant %#v", got, want)
	}
	if tr["port"] != "8080" {
		t.Error("Typed changed its input")
	}
}

func TestTypedWithoutSchema(t *testing.T) {
	types, _ := NewTypes(nil)
	tr, leafPaths, _ := Of(layout, config.Content{"port": "8080"})
	if got := types.Typed(tr, leafPaths); got["port"] != "8080" {
		t.Errorf("without a schema a leaf stays text, got %#v", got["port"])
	}
}

func TestMaskSecrets(t *testing.T) {
	tr := map[string]any{"db": map[string]any{"pass": "x", "host": "h"}, "tokens": map[string]any{"a": "1"}}
	got := MaskSecrets(tr, []string{"db.pass", "tokens", "absent.path"})
	want := map[string]any{"db": map[string]any{"pass": Mask, "host": "h"}, "tokens": Mask}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if tr["tokens"].(map[string]any)["a"] != "1" {
		t.Error("MaskSecrets changed its input")
	}
}

func TestBuild(t *testing.T) {
	doc := map[string]any{
		"name":     "payments",
		"port":     8080,
		"ratio":    0.25,
		"features": []any{"a", "b"},
		"db":       map[string]any{"host": "h", "timeout": "15s"},
		"nothing":  nil,
		"empty":    map[string]any{},
	}
	got, err := Build(layout, doc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Content{"name": "payments", "port": "8080", "ratio": "0.25", "features": `["a","b"]`,
		"db/host": "h", "db/timeout": "15s"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestBuildKeepsSecrets(t *testing.T) {
	cur := config.Content{"db/pass": "hunter2", "tokens/a": "1", "tokens/b": "2"}
	doc := map[string]any{"db": map[string]any{"pass": Mask}, "tokens": Mask}
	got, err := Build(layout, doc, cur, []string{"db.pass", "tokens"})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, cur) {
		t.Errorf("got %v, want %v", got, cur)
	}
	_, err = Build(layout, doc, config.Content{}, []string{"db.pass"})
	if err == nil || !strings.Contains(err.Error(), "db.pass") {
		t.Errorf("a mask without a current value: err %v", err)
	}
	// A mask at a path that is not secret is a value like any other.
	got, err = Build(layout, map[string]any{"x": Mask}, nil, []string{"db.pass"})
	if err != nil || got["x"] != Mask {
		t.Errorf("got %v, %v", got, err)
	}
}

func TestBuildKeepsLayout(t *testing.T) {
	cur := config.Content{
		"db.yaml":    "host: h\nport: 1\n",
		"db/port":    "2", // overrides the document
		"labels":     `{"a":"1"}`,
		"other.json": `{"x": 1}`,
	}
	tr, _, err := Of(layout, cur)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(layout, tr, cur, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, cur) {
		t.Errorf("building from the content's own tree: got %v, want %v", got, cur)
	}

	// A change under the document rewrites that part as leaf keys; the
	// other document stays.
	tr["db"].(map[string]any)["host"] = "h2"
	tr["labels"] = map[string]any{"a": "1", "b": "2"} // as get shows an object leaf
	got, err = Build(layout, tr, cur, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Content{"db/host": "h2", "db/port": "2", "labels": `{"a":"1","b":"2"}`, "other.json": `{"x": 1}`}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestBuildRejectsBadKeys(t *testing.T) {
	for _, doc := range []map[string]any{
		{"a.b": 1},
		{"a": map[string]any{"b/c": 1}},
		{"": 1},
	} {
		if _, err := Build(layout, doc, nil, nil); err == nil {
			t.Errorf("%v: no error", doc)
		}
	}
}

func TestDiff(t *testing.T) {
	old := map[string]string{"a": "1", "b": "2", "s": "x"}
	new := map[string]string{"a": "1", "b": "3", "c": "4", "s": "y"}
	got := Diff(old, new, []string{"s"})
	want := []Change{
		{Path: "b", Kind: config.Changed, Old: "2", New: "3"},
		{Path: "c", Kind: config.Added, New: "4"},
		{Path: "s", Kind: config.Changed, Old: Mask, New: Mask},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestKeyPath(t *testing.T) {
	for key, want := range map[string]string{"db/port": "db.port", "labels.yaml": "labels.yaml", "a/b.json": "a/b.json", "x": "x"} {
		if got := KeyPath(key); got != want {
			t.Errorf("KeyPath(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestUnwrap: only get's envelope, marked by its kind, is unwrapped; a
// configuration whose keys are version, revision and config is not.
func TestUnwrap(t *testing.T) {
	cfg := map[string]any{"a": "b"}
	for _, tt := range []struct {
		name   string
		doc    map[string]any
		unwrap bool
	}{
		{"get's envelope", map[string]any{"kind": Envelope, "version": int64(3), "revision": int64(9), "config": cfg}, true},
		{"no kind", map[string]any{"version": int64(3), "revision": int64(9), "config": cfg}, false},
		{"another kind", map[string]any{"kind": "x", "version": int64(3), "revision": int64(9), "config": cfg}, false},
		{"more keys", map[string]any{"kind": Envelope, "version": int64(3), "revision": int64(9), "config": cfg, "z": 1}, false},
		{"config not an object", map[string]any{"kind": Envelope, "version": int64(3), "revision": int64(9), "config": "c"}, false},
		{"version not a number", map[string]any{"kind": Envelope, "version": "3", "revision": int64(9), "config": cfg}, false},
	} {
		got := Unwrap(tt.doc)
		if unwrapped := reflect.DeepEqual(got, cfg); unwrapped != tt.unwrap {
			t.Errorf("%s: Unwrap = %v, want unwrapped %v", tt.name, got, tt.unwrap)
		}
	}
}
