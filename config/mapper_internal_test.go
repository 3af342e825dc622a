package config

import (
	"iter"
	"maps"
	"reflect"
	"testing"

	"github.com/strataconf/strata/codec"
)

// testMap is a codec.Mapper for the tests: a Go map that every change
// copies.
type testMap[V any] struct{ m map[string]V }

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

func (t testMap[V]) MapperWith(entries iter.Seq2[string, reflect.Value]) codec.Mapper {
	m := maps.Clone(t.m)
	if m == nil {
		m = map[string]V{}
	}
	for k, e := range entries {
		var v V
		reflect.ValueOf(&v).Elem().Set(e)
		m[k] = v
	}
	return testMap[V]{m}
}

func (t testMap[V]) MapperWithout(key string) codec.Mapper {
	m := maps.Clone(t.m)
	delete(m, key)
	return testMap[V]{m}
}

func (t testMap[V]) MapperPlain() any {
	m := make(map[string]V, len(t.m))
	maps.Copy(m, t.m)
	return m
}

type mapperRate struct {
	Rate int `koanf:"rate"`
}

// mapperConf holds Mappers; mapperTwin is the same with Go maps.
type mapperConf struct {
	Tenants testMap[mapperRate]  `koanf:"tenants"`
	Ptrs    testMap[*mapperRate] `koanf:"ptrs"`
	Limits  testMap[int]         `koanf:"limits"`
}

type mapperTwin struct {
	Tenants map[string]mapperRate  `koanf:"tenants"`
	Ptrs    map[string]*mapperRate `koanf:"ptrs"`
	Limits  map[string]int         `koanf:"limits"`
}

// patchablePath follows a Mapper to its values as it follows a map: the
// keys of the map are data, the keys of its struct values must be spelled
// as their fields.
func TestPatchablePathMapper(t *testing.T) {
	tree := map[string]any{
		"tenants": map[string]any{"Acme": map[string]any{"rate": "1"}, "beta": map[string]any{"rate": "1", "Rate": "2"}},
		"ptrs":    map[string]any{"P": map[string]any{"rate": "1"}},
		"limits":  map[string]any{"K": "1"},
	}
	for path, want := range map[string]bool{
		"tenants.Acme.rate": true,
		"tenants.Acme.RATE": false, // a field's key in another case
		"tenants.beta.rate": false, // beside a key naming the same field
		"tenants.new.rate":  true,
		"ptrs.P.rate":       true,
		"ptrs.P.Rate":       false,
		"limits.K":          true,
		"limits.k":          true,
	} {
		if got := patchablePath(reflect.TypeFor[mapperConf](), tree, path); got != want {
			t.Errorf("patchablePath(%s) = %v, want %v", path, got, want)
		}
		if got := patchablePath(reflect.TypeFor[mapperTwin](), tree, path); got != want {
			t.Errorf("Go maps: patchablePath(%s) = %v, want %v", path, got, want)
		}
	}
}
