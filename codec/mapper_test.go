package codec

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testMap is a Mapper for the tests, as bigmap.Map is one: a Go map that
// every change copies, so that a value once made never changes. An empty
// map is the zero value.
type testMap[V any] struct{ m map[string]V }

// testMapCalls counts the calls of MapperWith and MapperWithout, and the
// entries given to MapperWith.
var testMapCalls struct{ with, without, entries int }

func tm[V any](m map[string]V) testMap[V] { return testMap[V]{m} }

func (t testMap[V]) MapperElem() reflect.Type { return reflect.TypeFor[V]() }

func (t testMap[V]) MapperLen() int { return len(t.m) }

func (t testMap[V]) MapperGet(key string) (reflect.Value, bool) {
	v, ok := t.m[key]
	if !ok {
		return reflect.Value{}, false
	}
	return reflect.ValueOf(&v).Elem(), true
}

func (t testMap[V]) MapperAll() iter.Seq2[string, reflect.Value] {
	return func(yield func(string, reflect.Value) bool) {
		for k, v := range t.m {
			if !yield(k, reflect.ValueOf(&v).Elem()) {
				return
			}
		}
	}
}

func (t testMap[V]) MapperWith(entries iter.Seq2[string, reflect.Value]) Mapper {
	testMapCalls.with++
	m := maps.Clone(t.m)
	if m == nil {
		m = map[string]V{}
	}
	for k, e := range entries {
		testMapCalls.entries++
		var v V
		reflect.ValueOf(&v).Elem().Set(e)
		m[k] = v
	}
	return testMap[V]{m}.norm()
}

func (t testMap[V]) MapperWithout(key string) Mapper {
	testMapCalls.without++
	m := maps.Clone(t.m)
	delete(m, key)
	return testMap[V]{m}.norm()
}

func (t testMap[V]) MapperPlain() any {
	m := make(map[string]V, len(t.m))
	maps.Copy(m, t.m)
	return m
}

// norm returns the zero value for an empty map, so that two empty maps are
// equal.
func (t testMap[V]) norm() testMap[V] {
	if len(t.m) == 0 {
		return testMap[V]{}
	}
	return t
}

// goMapper is a Mapper that is a Go map, nil when empty.
type goMapper map[string]int

func (g goMapper) MapperElem() reflect.Type { return reflect.TypeFor[int]() }
func (g goMapper) MapperLen() int           { return len(g) }
func (g goMapper) MapperGet(key string) (reflect.Value, bool) {
	return tm(g).MapperGet(key)
}
func (g goMapper) MapperAll() iter.Seq2[string, reflect.Value] { return tm(g).MapperAll() }
func (g goMapper) MapperWith(entries iter.Seq2[string, reflect.Value]) Mapper {
	return goMapper(tm(g).MapperWith(entries).(testMap[int]).m)
}
func (g goMapper) MapperWithout(key string) Mapper {
	return goMapper(tm(g).MapperWithout(key).(testMap[int]).m)
}
func (g goMapper) MapperPlain() any { return tm(g).MapperPlain() }

type mapperDB struct {
	Host  string `koanf:"host"`
	Port  int    `koanf:"port"`
	Token string `koanf:"token" secret:"true"`
}

// mapperApp has a Mapper of every kind of value; mapperTwin is the same
// with Go maps, which the Mappers must behave as.
type mapperApp struct {
	Items   testMap[int]             `koanf:"items"`
	Tenants testMap[mapperDB]        `koanf:"tenants"`
	Ptrs    testMap[*mapperDB]       `koanf:"ptrs"`
	Nested  testMap[map[string]int]  `koanf:"nested"`
	Deep    testMap[testMap[string]] `koanf:"deep"`
	Waits   testMap[time.Duration]   `koanf:"waits"`
	Keys    testMap[string]          `koanf:"keys" secret:"true"`
}

type mapperTwin struct {
	Items   map[string]int               `koanf:"items"`
	Tenants map[string]mapperDB          `koanf:"tenants"`
	Ptrs    map[string]*mapperDB         `koanf:"ptrs"`
	Nested  map[string]map[string]int    `koanf:"nested"`
	Deep    map[string]map[string]string `koanf:"deep"`
	Waits   map[string]time.Duration     `koanf:"waits"`
	Keys    map[string]string            `koanf:"keys" secret:"true"`
}

// twinOf returns a's entries in Go maps (nil for an empty Mapper).
func twinOf(a mapperApp) mapperTwin {
	var deep map[string]map[string]string
	for k, v := range a.Deep.m {
		if deep == nil {
			deep = map[string]map[string]string{}
		}
		deep[k] = v.m
	}
	return mapperTwin{Items: a.Items.m, Tenants: a.Tenants.m, Ptrs: a.Ptrs.m, Nested: a.Nested.m, Deep: deep, Waits: a.Waits.m, Keys: a.Keys.m}
}

// mapperOf returns t's entries in Mappers: the inverse of twinOf.
func mapperOf(t mapperTwin) mapperApp {
	var deep map[string]testMap[string]
	for k, v := range t.Deep {
		if deep == nil {
			deep = map[string]testMap[string]{}
		}
		deep[k] = tm(v)
	}
	return mapperApp{Items: tm(t.Items), Tenants: tm(t.Tenants), Ptrs: tm(t.Ptrs), Nested: tm(t.Nested), Deep: tm(deep), Waits: tm(t.Waits), Keys: tm(t.Keys)}
}

func mapperTree() map[string]any {
	return map[string]any{
		"items":   map[string]any{"a": "1", "b": 2, "c": int64(3)},
		"tenants": map[string]any{"acme": map[string]any{"port": "5"}, "beta": `{"host": "b", "token": "tb"}`},
		"ptrs":    `{"p": {"port": 7}, "q": {"host": "q"}}`,
		"nested":  map[string]any{"n": map[string]any{"x": "1"}},
		"deep":    map[string]any{"d": map[string]any{"k": "v"}, "e": `{"k": "w"}`},
		"waits":   map[string]any{"w": "3s"},
		"keys":    map[string]any{"k": "s3cr3t"},
	}
}

// A Mapper binds as a Go map: from a mapping or JSON text, its entries
// decoded over the entries it held and merged into it; Bind never changes
// the maps or pointer targets it held.
func TestBindMapper(t *testing.T) {
	twin := mapperTwin{
		Items:   map[string]int{"old": 1, "a": 9},
		Tenants: map[string]mapperDB{"acme": {Host: "h0", Port: 1}},
		Ptrs:    map[string]*mapperDB{"p": {Host: "h0"}},
		Deep:    map[string]map[string]string{"d": {"old": "o"}},
	}
	app := mapperOf(mapperTwin{
		Items:   map[string]int{"old": 1, "a": 9},
		Tenants: map[string]mapperDB{"acme": {Host: "h0", Port: 1}},
		Ptrs:    map[string]*mapperDB{"p": {Host: "h0"}},
		Deep:    map[string]map[string]string{"d": {"old": "o"}},
	})
	before := app
	oldP := app.Ptrs.m["p"]

	wantUnused, err := Bind(mapperTree(), &twin)
	if err != nil {
		t.Fatal(err)
	}
	unused, err := Bind(mapperTree(), &app)
	if err != nil {
		t.Fatal(err)
	}
	if got := twinOf(app); !reflect.DeepEqual(got, twin) {
		t.Fatalf("bound %+v\nwant  %+v", got, twin)
	}
	if app.Tenants.m["acme"] != (mapperDB{Host: "h0", Port: 5}) || app.Ptrs.m["p"].Port != 7 || app.Ptrs.m["p"].Host != "h0" {
		t.Fatalf("entries not merged over the old ones: %+v %+v", app.Tenants.m["acme"], *app.Ptrs.m["p"])
	}
	if !reflect.DeepEqual(unused, wantUnused) {
		t.Fatalf("unused = %v, want %v", unused, wantUnused)
	}
	if len(before.Items.m) != 2 || len(before.Deep.m["d"].m) != 1 || *oldP != (mapperDB{Host: "h0"}) || app.Ptrs.m["p"] == oldP {
		t.Fatal("Bind wrote through a map or pointer it held")
	}
}

// Every entry of a mapping is set with one MapperWith.
func TestBindMapperWithOnce(t *testing.T) {
	items := make(map[string]any, 10000)
	for i := range 10000 {
		items[fmt.Sprint("k", i)] = fmt.Sprint(i)
	}
	v := struct {
		Items testMap[int] `koanf:"items"`
	}{tm(map[string]int{"old": 1, "k7": 0})}
	testMapCalls.with, testMapCalls.entries = 0, 0
	if _, err := Bind(map[string]any{"items": items}, &v); err != nil {
		t.Fatal(err)
	}
	if testMapCalls.with != 1 || testMapCalls.entries != 10000 {
		t.Fatalf("MapperWith called %d times with %d entries, want once with 10000", testMapCalls.with, testMapCalls.entries)
	}
	if len(v.Items.m) != 10001 || v.Items.m["old"] != 1 || v.Items.m["k7"] != 7 || v.Items.m["k9999"] != 9999 {
		t.Fatalf("bound %d entries: old %d, k7 %d", len(v.Items.m), v.Items.m["old"], v.Items.m["k7"])
	}
}

// Errors, secrets and unused keys are as for Go maps, and Bind is all or
// nothing.
func TestBindMapperErrors(t *testing.T) {
	tree := map[string]any{
		"items":   map[string]any{"k1": "x", "k2": "2"},
		"tenants": map[string]any{"acme": map[string]any{"port": "p", "token": []any{"t0k"}, "extra": "1"}},
		"keys":    map[string]any{"k": []any{"s3cr3t"}},
		"deep":    map[string]any{"d": "not an object"},
		"waits":   `{"w": `,
	}
	app := mapperOf(mapperTwin{Items: map[string]int{"old": 1}})
	var twin mapperTwin
	wantUnused, wantErr := Bind(tree, &twin)
	unused, err := Bind(tree, &app)
	var be *BindError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BindError", err)
	}
	if wantErr == nil || err.Error() != wantErr.Error() {
		t.Fatalf("err = %v\nwant  %v", err, wantErr)
	}
	if !reflect.DeepEqual(unused, wantUnused) || !reflect.DeepEqual(unused, []string{"tenants.acme.extra"}) {
		t.Fatalf("unused = %v, want %v", unused, wantUnused)
	}
	for _, want := range []string{`items.k1: cannot parse "x" as int`, `tenants.acme.port: cannot parse "p" as int`,
		"tenants.acme.token: invalid value (hidden: secret field)", "keys.k: invalid value (hidden: secret field)",
		"deep.d: expected a mapping", "waits: cannot parse"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not hold %q", err, want)
		}
	}
	for _, f := range be.Fields {
		if strings.Contains(fmt.Sprint(f.Value, f.Err), "s3cr3t") || strings.Contains(fmt.Sprint(f.Value, f.Err), "t0k") {
			t.Errorf("secret shown: %v (value %v)", f, f.Value)
		}
	}
	if !reflect.DeepEqual(app, mapperOf(mapperTwin{Items: map[string]int{"old": 1}})) {
		t.Fatalf("a failed Bind changed the value: %+v", app)
	}
	if err := DecodeLeaf(`{"a": "x"}`, reflect.ValueOf(&app.Items).Elem()); err == nil || err.Error() != `cannot bind a: cannot parse "x" as int` {
		t.Fatalf("DecodeLeaf: %v", err)
	}
}

// A Mapper is never nil, whatever its kind; a nil value in the tree
// leaves it as it is.
func TestMapperIsNeverNil(t *testing.T) {
	for _, v := range []any{testMap[int]{}, goMapper(nil)} {
		if IsNil(v) || isNilValue(reflect.ValueOf(v)) {
			t.Errorf("%T is nil", v)
		}
	}
	if !IsNil(map[string]int(nil)) {
		t.Error("a nil Go map is not nil")
	}
	v := struct {
		Items testMap[int] `koanf:"items"`
		Go    goMapper     `koanf:"go"`
	}{Items: tm(map[string]int{"a": 1})}
	if _, err := Bind(map[string]any{"items": nil, "go": map[string]any{"a": "1"}}, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Items.m) != 1 || v.Items.m["a"] != 1 || v.Go["a"] != 1 {
		t.Fatalf("bound %+v", v)
	}
	if s, err := EncodeLeaf(goMapper(nil)); err != nil || s != "{}" {
		t.Fatalf("EncodeLeaf(nil goMapper) = %q, %v", s, err)
	}
}

// A Mapper in a tree is a mapping wherever Bind wants one.
func TestBindFromMapper(t *testing.T) {
	var v struct {
		Limits map[string]int64 `koanf:"limits"`
		DB     mapperDB         `koanf:"db"`
	}
	tree := map[string]any{"limits": tm(map[string]int{"a": 1}), "db": tm(map[string]any{"host": "h"})}
	if _, err := Bind(tree, &v); err != nil {
		t.Fatal(err)
	}
	if v.Limits["a"] != 1 || v.DB.Host != "h" {
		t.Fatalf("bound %+v", v)
	}
	_, err := Bind(map[string]any{"db": map[string]any{"port": tm(map[string]int{"a": 1})}}, &v)
	if err == nil || !strings.Contains(err.Error(), "expected int, got mapping") {
		t.Fatalf("err = %v", err)
	}
}

func fullMapperTwin() mapperTwin {
	return mapperTwin{
		Items:   map[string]int{"a": 1, "b": 2},
		Tenants: map[string]mapperDB{"acme": {Host: "h", Port: 5, Token: "tok"}},
		Ptrs:    map[string]*mapperDB{"p": {Port: 7}},
		Nested:  map[string]map[string]int{"n": {"x": 1}},
		Deep:    map[string]map[string]string{"d": {"k": "v"}},
		Waits:   map[string]time.Duration{"w": 3 * time.Second},
		Keys:    map[string]string{"k": "s"},
	}
}

// A Mapper encodes as a Go map with its entries: ToMap, Leaves and
// EncodeLeaf give the same, and Bind reads it back.
func TestEncodeMapper(t *testing.T) {
	twin := fullMapperTwin()
	app := mapperOf(twin)
	want, err := ToMap(twin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToMap(app)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ToMap = %v\nwant    %v", got, want)
	}
	var back mapperApp
	if _, err := Bind(got, &back); err != nil || !reflect.DeepEqual(back, app) {
		t.Fatalf("bound back %+v, %v", back, err)
	}
	wantLeaves, _ := Leaves(twin)
	if gotLeaves, err := Leaves(&app); err != nil || !reflect.DeepEqual(gotLeaves, wantLeaves) {
		t.Fatalf("Leaves = %v, %v\nwant     %v", gotLeaves, err, wantLeaves)
	}
	for _, pair := range [][2]any{{app, twin}, {app.Tenants, twin.Tenants}, {app.Deep, twin.Deep}, {&app.Ptrs, twin.Ptrs}} {
		g, err := EncodeLeaf(pair[0])
		w, _ := EncodeLeaf(pair[1])
		if err != nil || g != w || g == "{}" {
			t.Errorf("EncodeLeaf(%T) = %s, %v; want %s", pair[0], g, err, w)
		}
	}
	s, err := EncodeLeaf(app)
	if err != nil {
		t.Fatal(err)
	}
	var dec mapperApp
	if err := DecodeLeaf(s, reflect.ValueOf(&dec).Elem()); err != nil || !reflect.DeepEqual(dec, app) {
		t.Errorf("DecodeLeaf(%s) = %+v, %v", s, dec, err)
	}

	// The zero value is an empty map: {} as a leaf, an empty mapping in
	// ToMap (a Mapper is never nil), no leaf.
	if s, err := EncodeLeaf(testMap[int]{}); err != nil || s != "{}" {
		t.Fatalf("EncodeLeaf(zero) = %q, %v", s, err)
	}
	m, err := ToMap(mapperApp{})
	if err != nil || len(m) != 7 || !reflect.DeepEqual(m["items"], map[string]any{}) {
		t.Fatalf("ToMap(zero) = %v, %v", m, err)
	}
	if s, err := EncodeLeaf(mapperApp{}); err != nil || !strings.Contains(s, `"items":{}`) {
		t.Fatalf("EncodeLeaf(zero) = %s, %v", s, err)
	}
	if l, err := Leaves(mapperApp{}); err != nil || len(l) != 0 {
		t.Fatalf("Leaves(zero) = %v, %v", l, err)
	}
	if _, err := EncodeLeaf(tm(map[string]int{"\xff": 1})); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("EncodeLeaf of a key that is not UTF-8: %v", err)
	}
}

// Canonical follows a Mapper's values as a Go map's: its keys stay, the
// keys of its struct values are renamed, and the same moves are reported.
func TestCanonicalMapper(t *testing.T) {
	tree := map[string]any{
		"Items":   map[string]any{"K": 1},
		"TENANTS": map[string]any{"Acme": map[string]any{"PORT": 1, "Host": "h"}},
		"ptrs":    map[string]any{"P": map[string]any{"TOKEN": "t"}},
		"deep":    map[string]any{"D": map[string]any{"X": "y"}},
		"nested":  map[string]any{"N": map[string]any{"PORT": 1}},
	}
	moves := func(typ reflect.Type) (map[string]any, map[string]string) {
		moved := map[string]string{}
		out := Canonical(tree, typ, func(from, to string) { moved[from] = to })
		return out, moved
	}
	got, gotMoved := moves(reflect.TypeFor[mapperApp]())
	want, wantMoved := moves(reflect.TypeFor[mapperTwin]())
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotMoved, wantMoved) {
		t.Fatalf("Canonical = %v, moved %v\nwant        %v, moved %v", got, gotMoved, want, wantMoved)
	}
	if got["tenants"].(map[string]any)["Acme"].(map[string]any)["port"] != 1 || got["ptrs"].(map[string]any)["P"].(map[string]any)["token"] != "t" {
		t.Fatalf("struct keys under a Mapper not renamed: %v", got)
	}
	if _, ok := got["nested"].(map[string]any)["N"].(map[string]any)["PORT"]; !ok {
		t.Fatalf("keys of a map under a Mapper renamed: %v", got)
	}
	for typ, want := range map[reflect.Type]bool{
		reflect.TypeFor[testMap[int]]():               false,
		reflect.TypeFor[testMap[map[string]string]](): false,
		reflect.TypeFor[testMap[testMap[string]]]():   false,
		reflect.TypeFor[testMap[*mapperDB]]():         true,
		reflect.TypeFor[[]testMap[mapperDB]]():        true,
	} {
		if got := holdsStruct(typ); got != want {
			t.Errorf("holdsStruct(%s) = %v, want %v", typ, got, want)
		}
	}
}

// Tenants is a Mapper type with an exported name, to embed.
type Tenants = testMap[mapperDB]

// A Mapper field is a field, embedded or not: not a struct whose fields
// are inlined.
func TestFieldsMapper(t *testing.T) {
	type S struct {
		Tenants
		Items testMap[int] `koanf:"items"`
	}
	var keys []string
	for _, f := range Fields(reflect.TypeFor[S]()) {
		keys = append(keys, f.Key)
	}
	if !reflect.DeepEqual(keys, []string{"tenants", "items"}) {
		t.Fatalf("Fields = %v", keys)
	}
	var s S
	if _, err := Bind(map[string]any{"tenants": map[string]any{"a": map[string]any{"port": "1"}}}, &s); err != nil || s.Tenants.m["a"].Port != 1 {
		t.Fatalf("bound %+v, %v", s, err)
	}
}

// Patched sets or removes one entry of a Mapper with one MapperWith or
// MapperWithout, and leaves the Mapper it was given alone.
func TestPatchedMapper(t *testing.T) {
	app := mapperOf(fullMapperTwin())
	before := mapperOf(fullMapperTwin())
	for _, tc := range []struct {
		path          string
		value         any
		remove        bool
		with, without int
		check         func(a *mapperApp) bool
		refused       bool
	}{
		{path: "items.c", value: "3", with: 1, check: func(a *mapperApp) bool { return a.Items.m["c"] == 3 && len(a.Items.m) == 3 }},
		{path: "items.a", remove: true, without: 1, check: func(a *mapperApp) bool { _, ok := a.Items.m["a"]; return !ok && a.Items.m["b"] == 2 }},
		{path: "waits.w", value: "1m", with: 1, check: func(a *mapperApp) bool { return a.Waits.m["w"] == time.Minute }},
		{path: "tenants.acme.port", value: "6", with: 1, check: func(a *mapperApp) bool { return a.Tenants.m["acme"] == mapperDB{Host: "h", Port: 6, Token: "tok"} }},
		{path: "tenants.new.host", value: "n", with: 1, check: func(a *mapperApp) bool { return a.Tenants.m["new"] == mapperDB{Host: "n"} }},
		{path: "ptrs.p.host", value: "q", with: 1, check: func(a *mapperApp) bool { return *a.Ptrs.m["p"] == mapperDB{Host: "q", Port: 7} }},
		{path: "ptrs.p.port", remove: true, with: 1, check: func(a *mapperApp) bool { return *a.Ptrs.m["p"] == mapperDB{} }},
		{path: "items.a.b", value: "1", refused: true},
		{path: "items", value: "1", refused: true},
		{path: "items.c", value: "x", refused: true},
		{path: "tenants.acme", value: `{"port": 1}`, refused: true},
		{path: "tenants.none.port", remove: true, refused: true},
		{path: "ptrs.none.port", remove: true, refused: true},
		{path: "nested.n.x", value: "2", refused: true},
		{path: "deep.d.k", value: "w", refused: true},
	} {
		testMapCalls.with, testMapCalls.without = 0, 0
		got, ok := Patched(&app, tc.path, tc.value, tc.remove, nil)
		switch {
		case tc.refused && ok:
			t.Errorf("%s: patched, want refused", tc.path)
		case !tc.refused && !ok:
			t.Errorf("%s: refused", tc.path)
		case ok && !tc.check(got):
			t.Errorf("%s: patched %+v", tc.path, twinOf(*got))
		case ok && (testMapCalls.with != tc.with || testMapCalls.without != tc.without):
			t.Errorf("%s: %d MapperWith and %d MapperWithout calls, want %d and %d", tc.path, testMapCalls.with, testMapCalls.without, tc.with, tc.without)
		}
		if !reflect.DeepEqual(app, before) {
			t.Fatalf("%s: Patched modified its input", tc.path)
		}
	}
}

// wrongMap is a Mapper by its embedded testMap, whose MapperWith returns
// a testMap, not a wrongMap.
type wrongMap struct{ testMap[int] }

// A Mapper whose methods return a map of another type gives an error, not
// a panic.
func TestMapperOfAnotherType(t *testing.T) {
	var v struct {
		W wrongMap `koanf:"w"`
	}
	_, err := Bind(map[string]any{"w": map[string]any{"a": "1"}}, &v)
	if err == nil || !strings.Contains(err.Error(), "w: the Mapper methods of codec.wrongMap returned a codec.testMap[int]") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := Patched(&v, "w.a", "1", false, nil); ok {
		t.Fatal("patched")
	}
}
