package codec

import (
	"errors"
	"reflect"
	"testing"
)

// Canonical copies only the maps on the way to a renamed key; a tree with
// nothing to rename comes back as it is.
func TestCanonicalSharesWhatItDoesNotRename(t *testing.T) {
	tenants := map[string]any{"Acme": map[string]any{"maxConns": 2}}
	labels := map[string]any{"Zone": "eu"}
	in := map[string]any{"tenants": tenants, "db": map[string]any{"labels": labels, "maxConns": 1}}
	out := Canonical(in, reflect.TypeFor[canonApp](), nil)
	if reflect.ValueOf(out).Pointer() != reflect.ValueOf(in).Pointer() {
		t.Fatal("a tree with nothing to rename was copied")
	}

	in = map[string]any{"tenants": tenants, "DB": map[string]any{"labels": labels, "MAXCONNS": 1}}
	out = Canonical(in, reflect.TypeFor[canonApp](), nil)
	want := map[string]any{"tenants": tenants, "db": map[string]any{"labels": labels, "maxConns": 1}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("tree = %v, want %v", out, want)
	}
	if reflect.ValueOf(out["tenants"]).Pointer() != reflect.ValueOf(tenants).Pointer() ||
		reflect.ValueOf(out["db"].(map[string]any)["labels"]).Pointer() != reflect.ValueOf(labels).Pointer() {
		t.Error("subtrees with nothing to rename were copied")
	}
	if _, ok := in["DB"].(map[string]any)["MAXCONNS"]; !ok {
		t.Fatalf("input modified: %v", in)
	}
	if got := Canonical(nil, reflect.TypeFor[canonApp](), nil); got == nil || len(got) != 0 {
		t.Fatalf("Canonical(nil) = %#v, want an empty map", got)
	}
}

// An empty map is a leaf of the flat paths wherever it lies: it is
// reported when its path changes.
func TestCanonicalReportsEmptyMaps(t *testing.T) {
	in := map[string]any{"DB": map[string]any{"Labels": map[string]any{}}, "Tenants": map[string]any{}, "Servers": map[string]any{}}
	moved := map[string]string{}
	Canonical(in, reflect.TypeFor[canonApp](), func(from, to string) { moved[from] = to })
	want := map[string]string{"DB.Labels": "db.labels", "Tenants": "tenants", "Servers": "servers"}
	if !reflect.DeepEqual(moved, want) {
		t.Fatalf("moved = %v, want %v", moved, want)
	}
}

// The maps of a tree may be shared with the layers it was merged from (and
// a layer may be patched later): a bound value shares none of them.
func TestBindSharesNoContainerWithTheTree(t *testing.T) {
	type S struct {
		Extra map[string]any `koanf:"extra"`
		List  []any          `koanf:"list"`
		Any   any            `koanf:"any"`
	}
	inner := map[string]any{"b": "1"}
	elem := map[string]any{"c": "1"}
	tree := map[string]any{
		"extra": map[string]any{"a": inner},
		"list":  []any{elem},
		"any":   map[string]any{"a": inner},
	}
	var s S
	if _, err := Bind(tree, &s); err != nil {
		t.Fatal(err)
	}
	inner["b"], elem["c"] = "2", "2"
	if s.Extra["a"].(map[string]any)["b"] != "1" || s.List[0].(map[string]any)["c"] != "1" || s.Any.(map[string]any)["a"].(map[string]any)["b"] != "1" {
		t.Fatalf("the bound value changed with the tree: %+v", s)
	}
}

// Maps with string keys are bound in no particular order; maps whose keys
// are converted bind in sorted key order, so that of two keys that convert
// to one ("1" and "01") the later wins, every time. Errors come sorted.
func TestBindMapOrder(t *testing.T) {
	type S struct {
		ByID  map[int]string `koanf:"by_id"`
		Ports map[string]int `koanf:"ports"`
	}
	for range 20 {
		var s S
		if _, err := Bind(map[string]any{"by_id": map[string]any{"1": "a", "01": "b", "2": "c"}}, &s); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.ByID, map[int]string{1: "a", 2: "c"}) {
			t.Fatalf("by_id = %v", s.ByID)
		}
		_, err := Bind(map[string]any{"ports": map[string]any{"z": "x", "a": "y", "m": "1"}}, &s)
		var be *BindError
		if !errors.As(err, &be) || len(be.Fields) != 2 || be.Fields[0].Path != "ports.a" || be.Fields[1].Path != "ports.z" {
			t.Fatalf("got %v", err)
		}
	}
}

// Fields hands out its own slice: changing it changes nothing for Bind.
func TestFieldsIsACopy(t *testing.T) {
	type S struct {
		A int `koanf:"a"`
	}
	f := Fields(reflect.TypeFor[S]())
	f[0].Key = "b"
	if Fields(reflect.TypeFor[S]())[0].Key != "a" {
		t.Fatal("Fields shares its result")
	}
	var s S
	if _, err := Bind(map[string]any{"a": 1}, &s); err != nil || s.A != 1 {
		t.Fatalf("got %+v, %v", s, err)
	}
}
