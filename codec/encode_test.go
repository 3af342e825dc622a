package codec_test

import (
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/codec"
)

func TestToMap(t *testing.T) {
	type Inner struct {
		Pool int
	}
	type S struct {
		Base                               // inline
		Common   `koanf:",squash"`         // inline
		Named    Base                      `koanf:"named"`
		Port     int                       `koanf:"port"`
		Timeout  time.Duration             `koanf:"timeout"`
		At       time.Time                 `koanf:"at"`
		IP       net.IP                    `koanf:"ip"`
		Lvl      Level                     `koanf:"lvl"`
		Tags     []string                  `koanf:"tags"`
		Servers  []Server                  `koanf:"servers"`
		Inner    *Inner                    `koanf:"inner"`
		NilInner *Inner                    `koanf:"nil_inner"`
		N        *int                      `koanf:"n"`
		NilN     *int                      `koanf:"nil_n"`
		Services map[string]Server         `koanf:"services"`
		Nested   map[string]map[string]int `koanf:"nested"`
		ByID     map[int]string            `koanf:"by_id"`
		NilMap   map[string]int            `koanf:"nil_map"`
		NilTags  []string                  `koanf:"nil_tags"`
		Any      any                       `koanf:"any"`
		NilAny   any                       `koanf:"nil_any"`
		Skip     string                    `koanf:"-"`
		hidden   string
	}
	ip := net.ParseIP("10.0.0.1")
	s := S{
		Base:     Base{Name: "n", Region: "r"},
		Common:   Common{Owner: "o"},
		Named:    Base{Name: "nn"},
		Port:     8080,
		Timeout:  time.Second,
		At:       t0,
		IP:       ip,
		Lvl:      1,
		Tags:     []string{"a"},
		Servers:  []Server{{Host: "h"}},
		Inner:    &Inner{Pool: 3},
		N:        ptr(4),
		Services: map[string]Server{"api": {Host: "api", Port: 1}},
		Nested:   map[string]map[string]int{"x": {"y": 1}},
		ByID:     map[int]string{1: "one"},
		Any:      Server{Host: "kept"},
		Skip:     "skip",
		hidden:   "hidden",
	}
	want := map[string]any{
		"name":     "n",
		"zone":     "r",
		"owner":    "o",
		"named":    map[string]any{"name": "nn", "zone": ""},
		"port":     8080,
		"timeout":  time.Second,
		"at":       t0,
		"ip":       ip,
		"lvl":      Level(1),
		"tags":     []string{"a"},
		"servers":  []Server{{Host: "h"}},
		"inner":    map[string]any{"pool": 3},
		"n":        4,
		"services": map[string]any{"api": map[string]any{"host": "api", "port": uint16(1)}},
		"nested":   map[string]any{"x": map[string]any{"y": 1}},
		"by_id":    map[int]string{1: "one"},
		"any":      Server{Host: "kept"},
	}
	for _, v := range []any{s, &s} {
		got, err := codec.ToMap(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ToMap(%T) =\n%#v\nwant\n%#v", v, got, want)
		}
	}
	// What ToMap gives, Bind takes back.
	m, _ := codec.ToMap(s)
	var back S
	unused, err := codec.Bind(m, &back)
	if err != nil || len(unused) != 0 {
		t.Fatalf("Bind(ToMap) = %v, %v", unused, err)
	}
	s.Skip, s.hidden = "", ""
	if !reflect.DeepEqual(back, s) {
		t.Errorf("Bind(ToMap(s)) =\n%+v\nwant\n%+v", back, s)
	}
}

func TestToMapErrors(t *testing.T) {
	var np *App
	n := 1
	for _, v := range []any{nil, np, 5, &n, []App{}} {
		if _, err := codec.ToMap(v); err == nil {
			t.Errorf("ToMap(%#v): no error", v)
		}
	}
	type Node struct {
		Name string
		Next *Node
	}
	cyc := &Node{Name: "a"}
	cyc.Next = cyc
	if _, err := codec.ToMap(cyc); err == nil || !strings.Contains(err.Error(), "too deeply") {
		t.Errorf("ToMap of a cycle: %v", err)
	}
}

func TestFieldKey(t *testing.T) {
	type embedded struct{ X int }
	type S struct {
		Plain    int
		Tagged   int  `koanf:"tagged_name"`
		Opts     int  `koanf:"opt,omitempty"`
		Dash     int  `koanf:"-"`
		EmptyTag int  `koanf:""`
		Squashed Base `koanf:",squash"`
		NamedSq  Base `koanf:"named,squash"`
		Base
		*Common
		embedded
		NamedEmb time.Duration
		unexp    int
		OnlyOpts int `koanf:",omitempty"`
	}
	want := map[string]struct {
		key        string
		inline, ok bool
	}{
		"Plain":    {"plain", false, true},
		"Tagged":   {"tagged_name", false, true},
		"Opts":     {"opt", false, true},
		"Dash":     {"", false, false},
		"EmptyTag": {"emptytag", false, true},
		"Squashed": {"", true, true},
		"NamedSq":  {"", true, true},
		"Base":     {"", true, true},
		"Common":   {"", true, true},
		"embedded": {"", true, true},
		"NamedEmb": {"namedemb", false, true},
		"unexp":    {"", false, false},
		"OnlyOpts": {"onlyopts", false, true},
	}
	st := reflect.TypeFor[S]()
	for i := range st.NumField() {
		f := st.Field(i)
		key, inline, ok := codec.FieldKey(f)
		w := want[f.Name]
		if key != w.key || inline != w.inline || ok != w.ok {
			t.Errorf("FieldKey(%s) = %q, %v, %v; want %q, %v, %v", f.Name, key, inline, ok, w.key, w.inline, w.ok)
		}
	}
}

func TestLeaves(t *testing.T) {
	type inner struct {
		Port    int           `koanf:"port"`
		Timeout time.Duration `koanf:"timeout"`
	}
	type app struct {
		Name   string            `koanf:"name"`
		DB     inner             `koanf:"db"`
		Tags   []string          `koanf:"tags"`
		Labels map[string]string `koanf:"labels"`
		Empty  map[string]string `koanf:"empty"`
		Ptr    *int              `koanf:"ptr"`
	}
	got, err := codec.Leaves(app{Name: "x", DB: inner{Port: 5432, Timeout: 15 * time.Second}, Tags: []string{"a", "b"},
		Labels: map[string]string{"team": "p"}, Empty: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "x", "db.port": "5432", "db.timeout": "15s", "tags": `["a","b"]`, "labels.team": "p"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Leaves = %v, want %v", got, want)
	}
	// What Leaves renders, Bind reads back.
	tree := map[string]any{}
	for p, v := range got {
		cur := tree
		segs := strings.Split(p, ".")
		for _, s := range segs[:len(segs)-1] {
			if _, ok := cur[s]; !ok {
				cur[s] = map[string]any{}
			}
			cur = cur[s].(map[string]any)
		}
		cur[segs[len(segs)-1]] = v
	}
	var back app
	if _, err := codec.Bind(tree, &back); err != nil {
		t.Fatal(err)
	}
	if back.DB.Timeout != 15*time.Second || back.Tags[1] != "b" || back.Labels["team"] != "p" {
		t.Fatalf("round trip: %+v", back)
	}
}
