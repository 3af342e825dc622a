package codec

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

type patchDB struct {
	Host string        `koanf:"host"`
	Port int           `koanf:"port"`
	Wait time.Duration `koanf:"wait"`
}

type patchApp struct {
	Name    string                `koanf:"name"`
	DB      patchDB               `koanf:"db"`
	Replica *patchDB              `koanf:"replica"`
	Flags   map[string]bool       `koanf:"flags"`
	Limits  map[string]int        `koanf:"limits"`
	Tenants map[string]patchDB    `koanf:"tenants"`
	Ptrs    map[string]*patchDB   `koanf:"ptrs"`
	List    []string              `koanf:"list"`
	Nested  map[string][]string   `koanf:"nested"`
	Any     any                   `koanf:"any"`
	Levels  map[string]patchLevel `koanf:"levels"`

	MLimits  testMap[int]      `koanf:"mlimits"`
	MTenants testMap[patchDB]  `koanf:"mtenants"`
	MPtrs    testMap[*patchDB] `koanf:"mptrs"`
}

type patchLevel string

func TestPatchedMatchesBind(t *testing.T) {
	base := map[string]any{
		"name":    "a",
		"db":      map[string]any{"host": "h", "port": "1"},
		"replica": map[string]any{"host": "r"},
		"flags":   map[string]any{"x": "true"},
		"limits":  map[string]any{"acme": "3", "beta": "4"},
		"tenants": map[string]any{"acme": map[string]any{"port": "5"}},
		"ptrs":    map[string]any{"p": map[string]any{"port": "6"}},
		"levels":  map[string]any{"a": "warn"},

		"mlimits":  map[string]any{"acme": "3", "beta": "4"},
		"mtenants": map[string]any{"acme": map[string]any{"port": "5"}},
		"mptrs":    map[string]any{"p": map[string]any{"port": "6"}},
	}
	for _, tc := range []struct {
		path   string
		value  any
		remove bool
	}{
		{"name", "b", false},
		{"name", nil, true},
		{"db.port", "2", false},
		{"db.wait", "3s", false},
		{"replica.port", "7", false},
		{"flags.y", "false", false},
		{"flags.x", nil, true},
		{"limits.acme", "30", false},
		{"limits.beta", nil, true},
		{"tenants.acme.host", "t", false},
		{"tenants.new.port", "8", false},
		{"ptrs.p.host", "q", false},
		{"levels.b", "error", false},
		{"mlimits.acme", "30", false},
		{"mlimits.new", "7", false},
		{"mlimits.beta", nil, true},
		{"mlimits.none", nil, true},
		{"mtenants.acme.host", "t", false},
		{"mtenants.acme.port", nil, true},
		{"mtenants.new.port", "8", false},
		{"mptrs.p.host", "q", false},
		{"mptrs.p.port", nil, true},
		{"mptrs.new.port", "9", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var old patchApp
			if _, err := Bind(base, &old); err != nil {
				t.Fatal(err)
			}
			snapshot := deepCopyApp(old)
			got, ok := Patched(&old, tc.path, tc.value, tc.remove, nil)
			if !ok {
				t.Fatal("not patched")
			}
			tree := DeepCopy(base).(map[string]any)
			setPath(tree, tc.path, tc.value, tc.remove)
			var want patchApp
			if _, err := Bind(tree, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("patched %+v\nbound   %+v", *got, want)
			}
			if !reflect.DeepEqual(old, snapshot) {
				t.Fatal("Patched modified its input")
			}
		})
	}
}

func TestPatchedRefuses(t *testing.T) {
	var v patchApp
	for _, tc := range []struct {
		path  string
		value any
	}{
		{"list.0", "x"},       // a slice
		{"nested.a.0", "x"},   // a slice in a map
		{"any.x", "1"},        // an interface
		{"unknown", "1"},      // no such field
		{"db", `{"port": 1}`}, // not a scalar
		{"db.port", "not a number"},
		{"replica", "x"},
		{"mlimits.a.b", "1"},          // beneath a scalar in a Mapper
		{"mlimits", "1"},              // a Mapper given as one value
		{"mlimits.a", "not a number"}, // does not decode
		{"mtenants.a", `{"port": 1}`}, // not a scalar
	} {
		if _, ok := Patched(&v, tc.path, tc.value, false, nil); ok {
			t.Errorf("Patched(%q) = ok, want refused", tc.path)
		}
	}
	if _, ok := Patched(&v, "replica.port", nil, true, nil); ok {
		t.Error("removing beneath a nil pointer was patched")
	}
	for _, path := range []string{"mtenants.none.port", "mptrs.none.port"} {
		if _, ok := Patched(&v, path, nil, true, nil); ok {
			t.Errorf("removing beneath a missing entry (%s) was patched", path)
		}
	}
}

func deepCopyApp(a patchApp) patchApp {
	var out patchApp
	tree, err := ToMap(a)
	if err != nil {
		panic(err)
	}
	if _, err := Bind(tree, &out); err != nil {
		panic(err)
	}
	return out
}

func setPath(tree map[string]any, path string, v any, remove bool) {
	segs := splitPath(path)
	for _, s := range segs[:len(segs)-1] {
		sub, ok := tree[s].(map[string]any)
		if !ok {
			sub = map[string]any{}
			tree[s] = sub
		}
		tree = sub
	}
	if remove {
		delete(tree, segs[len(segs)-1])
	} else {
		tree[segs[len(segs)-1]] = v
	}
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := range len(p) {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// TestPatcherBatches applies batches of several leaves with one Patcher:
// each batch gives what Bind gives, copies a container once, and never
// modifies the value of an earlier batch, spares or not.
func TestPatcherBatches(t *testing.T) {
	base := map[string]any{
		"db":      map[string]any{"host": "h"},
		"replica": map[string]any{"host": "r"},
		"tenants": map[string]any{"acme": map[string]any{"port": "5"}},
		"ptrs":    map[string]any{"p": map[string]any{"port": "6"}},
		"mptrs":   map[string]any{"p": map[string]any{"port": "6"}},
	}
	limits := map[string]any{}
	for i := range SpareLen + 10 {
		limits[fmt.Sprintf("k%d", i)] = fmt.Sprint(i)
	}
	base["limits"] = limits
	type leaf struct {
		path   string
		value  any
		remove bool
	}
	batches := [][]leaf{
		{{"limits.k1", "100", false}, {"limits.k2", nil, true}, {"limits.new", "7", false}, {"db.port", "9", false},
			{"replica.port", "1", false}, {"replica.host", "r2", false}, {"ptrs.p.host", "q", false}, {"ptrs.p.port", "60", false},
			{"flags.on", "true", false}, {"flags.off", "false", false},
			{"mlimits.a", "1", false}, {"mlimits.b", "2", false}, {"mptrs.p.host", "q", false}, {"mptrs.p.port", "60", false},
			{"mtenants.acme.port", "5", false}, {"mtenants.acme.host", "t", false}},
		{{"limits.k1", "101", false}, {"limits.k3", nil, true}, {"tenants.acme.host", "t", false}, {"flags.on", nil, true},
			{"mlimits.a", nil, true}, {"mptrs.p.port", "61", false}, {"mptrs.n.host", "n", false}, {"mptrs.n.port", "1", false},
			{"mtenants.acme.port", "50", false}},
		{{"limits.k4", "104", false}, {"mptrs.p.host", "r", false}, {"mptrs.n.port", nil, true}, {"mlimits.b", nil, true}},
		nil, // filled below: more containers than a Patcher keeps in its list
	}
	for i := range 20 {
		batches[3] = append(batches[3], leaf{fmt.Sprintf("ptrs.q%d.port", i), fmt.Sprint(i), false}, leaf{fmt.Sprintf("ptrs.q%d.host", i), "h", false},
			leaf{fmt.Sprintf("mptrs.q%d.port", i), fmt.Sprint(i), false}, leaf{fmt.Sprintf("mptrs.q%d.host", i), "h", false})
	}
	var v patchApp
	if _, err := Bind(base, &v); err != nil {
		t.Fatal(err)
	}
	tree := DeepCopy(base).(map[string]any)
	var p Patcher
	var published []patchApp // each batch's value, as it was when published
	var values []*patchApp
	cur := &v
	for bi, batch := range batches {
		for li, l := range batch {
			next, ok := Patched(cur, l.path, l.value, l.remove, &p)
			if !ok {
				t.Fatalf("batch %d: %s not patched", bi, l.path)
			}
			if li > 0 && next != cur {
				t.Fatalf("batch %d: %s copied the value again within its batch", bi, l.path)
			}
			if li == 0 && next == cur {
				t.Fatalf("batch %d: %s modified the published value", bi, l.path)
			}
			cur = next
			setPath(tree, l.path, l.value, l.remove)
		}
		var want patchApp
		if _, err := Bind(tree, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*cur, want) {
			t.Fatalf("batch %d: patched %+v\nbound   %+v", bi, *cur, want)
		}
		p.Commit()
		if _, ok := p.spares[reflect.ValueOf(cur.Limits).UnsafePointer()]; !ok {
			t.Fatalf("batch %d: no spare made for a map of %d entries", bi, len(cur.Limits))
		}
		published = append(published, deepCopyApp(*cur))
		values = append(values, cur)
		for i := range values {
			if !reflect.DeepEqual(*values[i], published[i]) {
				t.Fatalf("batch %d modified the value of batch %d", bi, i)
			}
		}
	}
	// A batch that is not used: Reset, and the next starts from the last
	// published value with nothing of the dropped batch in it.
	if _, ok := Patched(cur, "limits.k5", "5000", false, &p); !ok {
		t.Fatal("not patched")
	}
	p.Reset()
	if cur.Limits["k5"] != 5 || len(p.spares) != 0 {
		t.Fatalf("Reset: published value changed (%d) or spares kept (%d)", cur.Limits["k5"], len(p.spares))
	}
	next, ok := Patched(cur, "limits.k6", "6000", false, &p)
	if !ok || next == cur || next.Limits["k5"] != 5 || next.Limits["k6"] != 6000 || cur.Limits["k6"] != 6 {
		t.Fatalf("after Reset: %v %v", next.Limits["k5"], next.Limits["k6"])
	}
}
