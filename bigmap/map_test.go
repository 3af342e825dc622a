package bigmap

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// check fails t unless m holds exactly want, through every way of reading it.
func check[V comparable](t *testing.T, m Map[V], want map[string]V) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len %d, want %d", m.Len(), len(want))
	}
	got := m.ToMap()
	if !maps.Equal(got, want) {
		t.Fatalf("entries differ: %d got, %d want", len(got), len(want))
	}
	seen := 0
	for k, v := range m.All() {
		seen++
		if w, ok := want[k]; !ok || w != v {
			t.Fatalf("All yields %s=%v, want %v (present %v)", k, v, w, ok)
		}
	}
	if seen != len(want) {
		t.Fatalf("All yields %d entries, want %d", seen, len(want))
	}
	for k, w := range want {
		if v, ok := m.Get(k); !ok || v != w {
			t.Fatalf("Get(%s) = %v, %v; want %v", k, v, ok, w)
		}
	}
	if _, ok := m.Get("absent key"); ok {
		t.Fatal("Get of an absent key found one")
	}
}

// TestMapFollowsGoMap applies random sets and deletes to a Map and a Go map
// side by side: every version holds what the Go map held then, the versions
// before it are unchanged, and a Map built at once from the entries has
// the very shape of the one the changes made.
func TestMapFollowsGoMap(t *testing.T) {
	for _, weak := range []bool{false, true} {
		t.Run(fmt.Sprintf("weak-hash=%v", weak), func(t *testing.T) {
			if weak {
				// Hashes of 6 values: long lists of equal hashes, every
				// depth of the trie, and the lists past it.
				old := hashOf
				hashOf = func(k string) uint64 { return uint64(len(k)%6) * 0x9E3779B97F4A7C15 }
				t.Cleanup(func() { hashOf = old })
			}
			r := rand.New(rand.NewPCG(1, 2))
			var m Map[int]
			want := map[string]int{}
			type version struct {
				m    Map[int]
				want map[string]int
			}
			var versions []version
			for i := range 3000 {
				k := fmt.Sprintf("k%d", r.IntN(400))
				if r.IntN(3) == 0 {
					m = m.Without(k)
					delete(want, k)
				} else {
					m = m.With(k, i)
					want[k] = i
				}
				if i%100 == 0 {
					versions = append(versions, version{m, maps.Clone(want)})
				}
			}
			check(t, m, want)
			for _, v := range versions {
				check(t, v.m, v.want)
			}
			built := Of(want)
			check(t, built, want)
			if !weak && !reflect.DeepEqual(built, m) {
				t.Fatal("a Map built at once has another shape than the one changes made")
			}
			if !built.Equal(m) {
				t.Fatal("Equal: false for maps of the same entries")
			}
			for k := range want {
				m = m.Without(k)
			}
			if m.Len() != 0 || m.root != nil || !reflect.DeepEqual(m, Map[int]{}) {
				t.Fatalf("emptied map: Len %d, root %v", m.Len(), m.root)
			}
		})
	}
}

// TestMapperWithMerges checks the bulk path (more entries than are set
// one by one): later entries win, the receiver's other entries are kept.
func TestMapperWithMerges(t *testing.T) {
	base := map[string]int{}
	for i := range 100 {
		base[fmt.Sprint("b", i)] = i
	}
	m := Of(base)
	add := func(yield func(string, reflect.Value) bool) {
		for i := range 50 {
			if !yield(fmt.Sprint("b", i), reflect.ValueOf(-i)) || !yield(fmt.Sprint("n", i), reflect.ValueOf(i)) {
				return
			}
		}
		yield("n0", reflect.ValueOf(1000))
	}
	got := m.MapperWith(add).(Map[int])
	want := maps.Clone(base)
	for i := range 50 {
		want[fmt.Sprint("b", i)] = -i
		want[fmt.Sprint("n", i)] = i
	}
	want["n0"] = 1000
	check(t, got, want)
	check(t, m, base)
	if got.Without("n0").MapperWithout("n1").MapperLen() != len(want)-2 {
		t.Fatal("MapperWithout")
	}
	if v, ok := got.MapperGet("b3"); !ok || v.Interface() != -3 {
		t.Fatalf("MapperGet: %v %v", v, ok)
	}
	if p := got.MapperPlain().(map[string]int); !maps.Equal(p, want) {
		t.Fatal("MapperPlain")
	}
}

func TestMapJSONAndString(t *testing.T) {
	m := Of(map[string]int{"b": 2, "a": 1})
	b, err := json.Marshal(struct{ M Map[int] }{m})
	if err != nil || string(b) != `{"M":{"a":1,"b":2}}` {
		t.Fatalf("Marshal: %s %v", b, err)
	}
	var back struct{ M Map[int] }
	if err := json.Unmarshal(b, &back); err != nil || !back.M.Equal(m) {
		t.Fatalf("Unmarshal: %v %v", back.M, err)
	}
	if err := json.Unmarshal([]byte(`{"M":{"a":"x"}}`), &back); err == nil {
		t.Fatal("Unmarshal of a string into Map[int]: no error")
	}
	if s := fmt.Sprint(m); s != "map[a:1 b:2]" {
		t.Fatalf("String: %s", s)
	}
	if s := fmt.Sprint(Map[string]{}); s != "map[]" {
		t.Fatalf("String of the zero Map: %s", s)
	}
	if !slices.Equal(slices.Sorted(m.Keys()), []string{"a", "b"}) {
		t.Fatal("Keys")
	}
}

// BenchmarkWith10k is one change of a map of 10,000 entries: a Map's With
// against a copy of a Go map.
func BenchmarkWith10k(b *testing.B) {
	plain := map[string]int{}
	for i := range 10000 {
		plain[fmt.Sprintf("k%05d", i)] = i
	}
	b.Run("bigmap.With", func(b *testing.B) {
		m := Of(plain)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m = m.With("k00042", i)
		}
	})
	b.Run("maps.Clone", func(b *testing.B) {
		m := plain
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m = maps.Clone(m)
			m["k00042"] = i
		}
	})
	b.Run("Of", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Of(plain)
		}
	})
}
