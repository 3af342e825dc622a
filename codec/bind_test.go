package codec_test

import (
	"errors"
	"math"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/codec"
)

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// full is an App with every field set; the documents and text below all
// describe it.
func full() App {
	return App{
		Base:   Base{Name: "pay", Region: "eu"},
		Common: Common{Owner: "ops"},
		Str:    "hello", I: -42, I8: -128, I16: 300, I32: 70000, I64: -1 << 53,
		U: 7, U8: 255, U16: 65535, U32: 4294967295, U64: 1 << 53,
		F32: 1.5, F64: 2.25, B: true,
		D: 15 * time.Second, T: t0, IP: net.ParseIP("10.0.0.1"), Lvl: 2,
		P:        ptr(5),
		PS:       &Server{Host: "ps", Port: 1},
		DB:       DB{Host: "db.internal", Port: 5432, Timeout: 2 * time.Second},
		Servers:  []Server{{Host: "a", Port: 1}, {Host: "b", Port: 2}},
		Tags:     []string{"x", "y"},
		Ports:    [3]int{80, 443, 0},
		Labels:   map[string]string{"team": "core"},
		Limits:   map[string]int{"rps": 100},
		Services: map[string]Server{"api": {Host: "api", Port: 8080}},
		ByID:     map[int]string{1: "one"},
		Any:      map[string]any{"k": "v"},
	}
}

// fullText is full as etcd leaf text: every leaf a string.
func fullText() map[string]any {
	return map[string]any{
		"name": "pay", "zone": "eu", "owner": "ops",
		"str": "hello", "i": "-42", "i8": "-128", "i16": "300", "i32": "70000", "i64": "-9007199254740992",
		"u": "7", "u8": "255", "u16": "65535", "u32": "4294967295", "u64": "9007199254740992",
		"f32": "1.5", "f64": "2.25", "b": "true",
		"d": "15s", "t": "2024-01-02T03:04:05Z", "ip": "10.0.0.1", "lvl": "warn",
		"p":  "5",
		"ps": map[string]any{"host": "ps", "port": "1"},
		"db": map[string]any{"host": "db.internal", "port": "5432", "timeout": "2s"},
		"servers": map[string]any{
			"0": map[string]any{"host": "a", "port": "1"},
			"1": map[string]any{"host": "b", "port": "2"},
		},
		"tags":     `["x", "y"]`,
		"ports":    map[string]any{"0": "80", "1": "443"},
		"labels":   map[string]any{"team": "core"},
		"limits":   map[string]any{"rps": "100"},
		"services": map[string]any{"api": map[string]any{"host": "api", "port": "8080"}},
		"by_id":    map[string]any{"1": "one"},
		"any":      map[string]any{"k": "v"},
	}
}

const fullYAML = `
name: pay
zone: eu
owner: ops
str: hello
i: -42
i8: -128
i16: 300
i32: 70000
i64: -9007199254740992
u: 7
u8: 255
u16: 65535
u32: 4294967295
u64: 9007199254740992
f32: 1.5
f64: 2.25
b: true
d: 15s
t: 2024-01-02T03:04:05Z
ip: 10.0.0.1
lvl: warn
p: 5
ps: {host: ps, port: 1}
db:
  host: db.internal
  port: 5432
  timeout: 2s
servers:
  - {host: a, port: 1}
  - {host: b, port: 2}
tags: [x, y]
ports: [80, 443]
labels: {team: core}
limits: {rps: 100}
services:
  api: {host: api, port: 8080}
by_id: {1: one}
any: {k: v}
`

const fullJSON = `{
  "name": "pay", "zone": "eu", "owner": "ops",
  "str": "hello", "i": -42, "i8": -128, "i16": 300, "i32": 70000, "i64": -9007199254740992,
  "u": 7, "u8": 255, "u16": 65535, "u32": 4294967295, "u64": 9007199254740992,
  "f32": 1.5, "f64": 2.25, "b": true,
  "d": "15s", "t": "2024-01-02T03:04:05Z", "ip": "10.0.0.1", "lvl": "warn",
  "p": 5,
  "ps": {"host": "ps", "port": 1},
  "db": {"host": "db.internal", "port": 5432, "timeout": "2s"},
  "servers": [{"host": "a", "port": 1}, {"host": "b", "port": 2}],
  "tags": ["x", "y"],
  "ports": [80, 443],
  "labels": {"team": "core"},
  "limits": {"rps": 100},
  "services": {"api": {"host": "api", "port": 8080}},
  "by_id": {"1": "one"},
  "any": {"k": "v"}
}`

const fullTOML = `
name = "pay"
zone = "eu"
owner = "ops"
str = "hello"
i = -42
i8 = -128
i16 = 300
i32 = 70000
i64 = -9007199254740992
u = 7
u8 = 255
u16 = 65535
u32 = 4294967295
u64 = 9007199254740992
f32 = 1.5
f64 = 2.25
b = true
d = "15s"
t = 2024-01-02T03:04:05Z
ip = "10.0.0.1"
lvl = "warn"
p = 5
ps = {host = "ps", port = 1}
tags = ["x", "y"]
ports = [80, 443]
labels = {team = "core"}
limits = {rps = 100}
by_id = {1 = "one"}
any = {k = "v"}

[db]
host = "db.internal"
port = 5432
timeout = "2s"

[[servers]]
host = "a"
port = 1

[[servers]]
host = "b"
port = 2

[services.api]
host = "api"
port = 8080
`

func mustUnmarshal(t *testing.T, c codec.Codec, doc string) map[string]any {
	t.Helper()
	m, err := c.Unmarshal([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBindAllKinds(t *testing.T) {
	defaults, err := codec.ToMap(full())
	if err != nil {
		t.Fatal(err)
	}
	trees := map[string]map[string]any{
		"text":     fullText(),
		"yaml":     mustUnmarshal(t, codec.YAML, fullYAML),
		"json":     mustUnmarshal(t, codec.JSON, fullJSON),
		"toml":     mustUnmarshal(t, codec.TOML, fullTOML),
		"go value": defaults,
	}
	for name, tree := range trees {
		t.Run(name, func(t *testing.T) {
			var got App
			unused, err := codec.Bind(tree, &got)
			if err != nil {
				t.Fatal(err)
			}
			if len(unused) != 0 {
				t.Errorf("unused = %v", unused)
			}
			if want := full(); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// bindOne binds tree onto a fresh App and returns it, failing on any error.
func bindOne(t *testing.T, tree map[string]any) App {
	t.Helper()
	var a App
	if _, err := codec.Bind(tree, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestBindCases(t *testing.T) {
	tests := []struct {
		name string
		tree map[string]any
		want func(a *App)
	}{
		{"string from number and bool", map[string]any{"str": 8080.0}, func(a *App) { a.Str = "8080" }},
		{"string from bool", map[string]any{"str": true}, func(a *App) { a.Str = "true" }},
		{"string from float", map[string]any{"str": 1.5}, func(a *App) { a.Str = "1.5" }},
		{"string from time", map[string]any{"str": t0}, func(a *App) { a.Str = "2024-01-02T03:04:05Z" }},
		{"int trims text", map[string]any{"i": " 12\n"}, func(a *App) { a.I = 12 }},
		{"int from integral float", map[string]any{"i": 3.0}, func(a *App) { a.I = 3 }},
		{"int from uint64", map[string]any{"i64": uint64(9)}, func(a *App) { a.I64 = 9 }},
		{"uint64 max from text", map[string]any{"u64": "18446744073709551615"}, func(a *App) { a.U64 = math.MaxUint64 }},
		{"uint64 max typed", map[string]any{"u64": uint64(math.MaxUint64)}, func(a *App) { a.U64 = math.MaxUint64 }},
		{"int64 min text", map[string]any{"i64": "-9223372036854775808"}, func(a *App) { a.I64 = math.MinInt64 }},
		{"float from int", map[string]any{"f64": 3}, func(a *App) { a.F64 = 3 }},
		{"float from text exp", map[string]any{"f32": "1e3"}, func(a *App) { a.F32 = 1000 }},
		{"bool forms", map[string]any{"b": "1"}, func(a *App) { a.B = true }},
		{"duration typed int is nanoseconds", map[string]any{"d": 1500}, func(a *App) { a.D = 1500 }},
		{"duration typed int64", map[string]any{"d": int64(time.Second)}, func(a *App) { a.D = time.Second }},
		{"duration text", map[string]any{"d": "1h30m"}, func(a *App) { a.D = 90 * time.Minute }},
		{"duration go value", map[string]any{"d": time.Minute}, func(a *App) { a.D = time.Minute }},
		{"time typed from toml", map[string]any{"t": t0}, func(a *App) { a.T = t0 }},
		{"ipv6", map[string]any{"ip": "::1"}, func(a *App) { a.IP = net.ParseIP("::1") }},
		{"custom text unmarshaler", map[string]any{"lvl": "error"}, func(a *App) { a.Lvl = 3 }},
		{"pointer to int", map[string]any{"p": 7}, func(a *App) { a.P = ptr(7) }},
		{"pointer to struct from JSON text", map[string]any{"ps": `{"host":"h","port":9}`}, func(a *App) { a.PS = &Server{Host: "h", Port: 9} }},
		{"nested struct from JSON text", map[string]any{"db": `{"host": "h", "timeout": "1s"}`},
			func(a *App) { a.DB = DB{Host: "h", Timeout: time.Second} }},
		{"embedded and squash", map[string]any{"name": "n", "zone": "z", "owner": "o"},
			func(a *App) { a.Name, a.Region, a.Owner = "n", "z", "o" }},
		{"slice from []any", map[string]any{"servers": []any{map[string]any{"host": "a"}}},
			func(a *App) { a.Servers = []Server{{Host: "a"}} }},
		{"slice from JSON text", map[string]any{"servers": ` [{"host":"a","port":1}] `},
			func(a *App) { a.Servers = []Server{{Host: "a", Port: 1}} }},
		{"slice from index map", map[string]any{"tags": map[string]any{"1": "b", "0": "a", "2": "c"}},
			func(a *App) { a.Tags = []string{"a", "b", "c"} }},
		{"slice elements typed", map[string]any{"servers": []any{map[string]any{"port": 3}}},
			func(a *App) { a.Servers = []Server{{Port: 3}} }},
		{"empty slice", map[string]any{"tags": []any{}}, func(a *App) { a.Tags = []string{} }},
		{"slice of go values", map[string]any{"tags": []string{"g"}}, func(a *App) { a.Tags = []string{"g"} }},
		{"array short", map[string]any{"ports": "[1]"}, func(a *App) { a.Ports = [3]int{1} }},
		{"map from JSON text", map[string]any{"labels": `{"a":"x","b":"y"}`},
			func(a *App) { a.Labels = map[string]string{"a": "x", "b": "y"} }},
		{"map of ints from text", map[string]any{"limits": map[string]any{"a": "1", "b": 2}},
			func(a *App) { a.Limits = map[string]int{"a": 1, "b": 2} }},
		{"map with int keys", map[string]any{"by_id": map[string]any{"7": "seven"}},
			func(a *App) { a.ByID = map[int]string{7: "seven"} }},
		{"map nil entry is zero", map[string]any{"labels": map[string]any{"a": nil}},
			func(a *App) { a.Labels = map[string]string{"a": ""} }},
		{"any keeps value", map[string]any{"any": []any{1, "x"}}, func(a *App) { a.Any = []any{1, "x"} }},
		{"any keeps text", map[string]any{"any": "[1]"}, func(a *App) { a.Any = "[1]" }},
		{"case-insensitive key", map[string]any{"STR": "x", "Db": map[string]any{"HOST": "h"}},
			func(a *App) { a.Str = "x"; a.DB.Host = "h" }},
		{"nil leaves field", map[string]any{"str": nil, "db": nil, "tags": []any(nil)}, func(a *App) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want App
			tt.want(&want)
			if got := bindOne(t, tt.tree); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestBindExactKeyWins(t *testing.T) {
	var a App
	unused, err := codec.Bind(map[string]any{"STR": "upper", "str": "exact", "Str": "title"}, &a)
	if err != nil {
		t.Fatal(err)
	}
	if a.Str != "exact" || !slices.Equal(unused, []string{"STR", "Str"}) {
		t.Errorf("Str = %q, unused = %v", a.Str, unused)
	}
}

func TestBindShadowing(t *testing.T) {
	type Inner struct{ Name, Inner string }
	type Outer struct {
		Inner
		Name string
	}
	var o Outer
	if _, err := codec.Bind(map[string]any{"name": "outer", "inner": "i"}, &o); err != nil {
		t.Fatal(err)
	}
	if o.Name != "outer" || o.Inner.Name != "" || o.Inner.Inner != "i" {
		t.Errorf("got %+v", o)
	}
}

func TestBindEmbeddedPointer(t *testing.T) {
	type Outer struct {
		*Base
		Port int
	}
	var o Outer
	if _, err := codec.Bind(map[string]any{"zone": "z", "port": "1"}, &o); err != nil {
		t.Fatal(err)
	}
	if o.Base == nil || o.Region != "z" || o.Port != 1 {
		t.Errorf("got %+v", o)
	}
	// An embedded pointer with no keys stays nil.
	var p Outer
	if _, err := codec.Bind(map[string]any{"port": "1"}, &p); err != nil || p.Base != nil {
		t.Errorf("got %+v, %v", p, err)
	}
}

func TestBindUnused(t *testing.T) {
	tree := map[string]any{
		"nope": 1,
		"skip": "tagged -",
		"db": map[string]any{
			"host": "h", "extra": 1,
			"deep": map[string]any{"x": 1},
		},
		"servers":  []any{map[string]any{"host": "a", "zzz": 1}},
		"services": map[string]any{"api": map[string]any{"bogus": true}},
		"ps":       `{"host": "h", "typo": 1}`,
		"labels":   map[string]any{"anything": "goes"},
	}
	var a App
	unused, err := codec.Bind(tree, &a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"db.deep", "db.extra", "nope", "ps.typo", "servers.0.zzz", "services.api.bogus", "skip"}
	if !slices.Equal(unused, want) {
		t.Errorf("unused = %q\nwant %q", unused, want)
	}
}

func TestBindErrors(t *testing.T) {
	tree := map[string]any{
		"str":     "fine",
		"i":       "abc",
		"u8":      "300",
		"u16":     -1,
		"i8":      1.5,
		"b":       "maybe",
		"f32":     "1e39",
		"d":       "15",
		"ip":      "not-an-ip",
		"lvl":     "loud",
		"ps":      "x",
		"tags":    5,
		"ports":   []any{1, 2, 3, 4},
		"db":      map[string]any{"port": "x", "timeout": []any{}},
		"servers": []any{map[string]any{"port": "70000"}, "oops"},
		"limits":  map[string]any{"a": "many"},
		"by_id":   map[string]any{"one": "1"},
		"p":       map[string]any{},
	}
	orig := App{Str: "keep"}
	a := orig
	_, err := codec.Bind(tree, &a)
	var be *codec.BindError
	if !errors.As(err, &be) {
		t.Fatalf("error %v is not a *BindError", err)
	}
	want := []struct{ path, msg string }{
		{"b", `cannot parse "maybe" as bool`},
		{"by_id.one", `cannot parse "one" as int`},
		{"d", `cannot parse "15" as duration: time: missing unit in duration "15"`},
		{"db.port", `cannot parse "x" as int`},
		{"db.timeout", `expected duration, got sequence`},
		{"f32", `value 1e39 overflows float32`},
		{"i", `cannot parse "abc" as int`},
		{"i8", `cannot convert 1.5 to int8: not an integer`},
		{"ip", `cannot parse "not-an-ip" as net.IP: invalid IP address: not-an-ip`},
		{"limits.a", `cannot parse "many" as int`},
		{"lvl", `cannot parse "loud" as codec_test.Level: unknown level "loud"`},
		{"p", `expected int, got mapping`},
		{"ports", `expected at most 3 elements, got 4`},
		{"ps", `expected a mapping, got string "x"`},
		{"servers.0.port", `value 70000 overflows uint16`},
		{"servers.1", `expected a mapping, got string "oops"`},
		{"tags", `expected a sequence, got int 5`},
		{"u16", `value -1 overflows uint16`},
		{"u8", `value 300 overflows uint8`},
	}
	var got []string
	for _, f := range be.Fields {
		got = append(got, f.Path+": "+f.Err.Error())
	}
	var wantS []string
	for _, w := range want {
		wantS = append(wantS, w.path+": "+w.msg)
	}
	if !slices.Equal(got, wantS) {
		t.Errorf("fields:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantS, "\n"))
	}
	if !reflect.DeepEqual(a, orig) {
		t.Errorf("dst changed on error: %+v", a)
	}
	if be.Fields[0].Value != "maybe" {
		t.Errorf("Value = %#v, want \"maybe\"", be.Fields[0].Value)
	}
	var fe *codec.FieldError
	if !errors.As(err, &fe) || fe.Path != "b" {
		t.Errorf("errors.As FieldError = %v", fe)
	}
}

func TestBindErrorStrings(t *testing.T) {
	var a App
	_, err := codec.Bind(map[string]any{"i": "abc", "db": map[string]any{"timeout": "15"}}, &a)
	want := `cannot bind db.timeout: cannot parse "15" as duration: time: missing unit in duration "15"; i: cannot parse "abc" as int`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	fe := &codec.FieldError{Path: "port", Value: "abc", Err: errors.New(`cannot parse "abc" as int`)}
	if got := fe.Error(); got != `port: cannot parse "abc" as int` {
		t.Errorf("FieldError.Error() = %q", got)
	}
	if !errors.Is(fe, fe.Err) {
		t.Error("FieldError does not unwrap to Err")
	}
}

func TestBindSecret(t *testing.T) {
	type Creds struct {
		User string
		PIN  int `koanf:"pin" secret:"true"`
	}
	type S struct {
		Creds Creds `koanf:"creds"`
		Key   struct {
			N int
		} `koanf:"key" secret:"true"`
	}
	var s S
	_, err := codec.Bind(map[string]any{
		"creds": map[string]any{"pin": "hunter2"},
		"key":   map[string]any{"n": "s3cr3t"},
	}, &s)
	var be *codec.BindError
	if !errors.As(err, &be) || len(be.Fields) != 2 {
		t.Fatalf("got %v", err)
	}
	for _, f := range be.Fields {
		if f.Value != nil || strings.Contains(f.Error(), "hunter2") || strings.Contains(f.Error(), "s3cr3t") {
			t.Errorf("secret shown: %v (value %v)", f, f.Value)
		}
	}
	if be.Fields[0].Path != "creds.pin" || be.Fields[1].Path != "key.n" {
		t.Errorf("paths %q %q", be.Fields[0].Path, be.Fields[1].Path)
	}
}

func TestBindDst(t *testing.T) {
	var a App
	var nilApp *App
	n := 1
	for _, dst := range []any{nil, a, nilApp, &n, map[string]any{}} {
		_, err := codec.Bind(map[string]any{"str": "x"}, dst)
		var be *codec.BindError
		if err == nil || errors.As(err, &be) {
			t.Errorf("Bind onto %T: err = %v, want a plain error", dst, err)
		}
	}
	if _, err := codec.Bind(nil, &a); err != nil {
		t.Errorf("Bind(nil tree) = %v", err)
	}
}

func TestBindCopiesOnWrite(t *testing.T) {
	labels := map[string]string{"a": "1"}
	ps := &Server{Host: "h", Port: 1}
	tags := []string{"x"}
	a := App{Labels: labels, PS: ps, Tags: tags}
	tree := map[string]any{"labels": map[string]any{"b": "2"}, "ps": map[string]any{"port": 2}}
	if _, err := codec.Bind(tree, &a); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Labels, map[string]string{"a": "1", "b": "2"}) || *a.PS != (Server{Host: "h", Port: 2}) {
		t.Errorf("got labels %v, ps %+v", a.Labels, *a.PS)
	}
	if len(labels) != 1 || ps.Port != 1 {
		t.Errorf("Bind wrote through the old map or pointer: %v %+v", labels, *ps)
	}
	// A slice of the exact type from the tree is copied.
	src := []string{"s"}
	if _, err := codec.Bind(map[string]any{"tags": src}, &a); err != nil {
		t.Fatal(err)
	}
	a.Tags[0] = "changed"
	if src[0] != "s" {
		t.Error("bound slice shares the tree's backing array")
	}
}

func TestBindUnsupported(t *testing.T) {
	type S struct {
		C  complex128
		Ch chan int
		F  func()
	}
	var s S
	_, err := codec.Bind(map[string]any{"c": "1", "ch": "x", "f": "y"}, &s)
	var be *codec.BindError
	if !errors.As(err, &be) || len(be.Fields) != 3 {
		t.Fatalf("got %v", err)
	}
	if got := be.Fields[0].Err.Error(); got != "unsupported type complex128" {
		t.Errorf("got %q", got)
	}
	// With no value for them, such fields are no error.
	if _, err := codec.Bind(map[string]any{}, &s); err != nil {
		t.Error(err)
	}
}

func TestBindUnexportedEmbedded(t *testing.T) {
	type inner struct{ Name string }
	type S struct {
		inner
		*Server
	}
	var s S
	if _, err := codec.Bind(map[string]any{"name": "n", "host": "h"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "n" || s.Server == nil || s.Host != "h" {
		t.Errorf("got %+v", s)
	}
	type innerP struct{ X int }
	type T struct{ *innerP }
	var tv T
	_, err := codec.Bind(map[string]any{"x": 1}, &tv)
	var be *codec.BindError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "unexported") {
		t.Errorf("got %v", err)
	}
}
