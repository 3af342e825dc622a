// Package bigmap is an immutable map of string keys for configuration maps
// of thousands of entries: feature flags, per-tenant limits, routing
// tables.
//
// A Go map in a configuration struct is copied whole whenever one of its
// entries changes, because the snapshot that held it must not change: with
// 10,000 entries that copy (and its garbage) costs more than the change
// itself. A Map field costs what the change costs: a new Map shares all but
// a few small nodes with the one it came from.
//
//	type Config struct {
//		Limits bigmap.Map[int] `koanf:"limits" validate:"dive,min=0"`
//	}
//
// Strata binds, patches, validates, encodes and describes a Map exactly as a
// map[string]V: keys P/data/limits/<tenant> fill it, `dive` rules apply to
// its values, and a change of one key sets one entry. Programs read it with
// Get, Len and All, and make new ones with Of, With and Without.
package bigmap

import (
	"encoding/json"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"

	"github.com/strataconf/strata/codec"
)

// Map is an immutable map from string keys to V values. The zero value is
// an empty map; a Map is a small value, cheap to copy, and safe for
// concurrent use. With and Without return new maps that share most of
// their memory with the receiver: each costs O(log n).
type Map[V any] struct {
	root *node[V]
	n    int
}

// Of returns a Map holding the entries of m.
func Of[V any](m map[string]V) Map[V] {
	es := make([]entry[V], 0, len(m))
	for k, v := range m {
		es = append(es, entry[V]{key: k, hash: hashOf(k), val: v})
	}
	return Map[V]{}.withEntries(es)
}

// Len returns the number of entries.
func (m Map[V]) Len() int { return m.n }

// Get returns the value at key, and whether there is one.
func (m Map[V]) Get(key string) (V, bool) {
	return m.root.get(key, hashOf(key))
}

// With returns a map holding m's entries and v at key.
func (m Map[V]) With(key string, v V) Map[V] {
	e := entry[V]{key: key, hash: hashOf(key), val: v}
	if m.root == nil {
		return Map[V]{root: &node[V]{dataMap: slotOf(e.hash, 0), data: []entry[V]{e}}, n: 1}
	}
	root, added := m.root.set(e, 0)
	if added {
		return Map[V]{root: root, n: m.n + 1}
	}
	return Map[V]{root: root, n: m.n}
}

// Without returns a map holding m's entries but the one at key.
func (m Map[V]) Without(key string) Map[V] {
	if m.root == nil {
		return m
	}
	root, removed := m.root.remove(key, hashOf(key), 0)
	switch {
	case !removed:
		return m
	case m.n == 1:
		return Map[V]{}
	}
	return Map[V]{root: root, n: m.n - 1}
}

// All yields every entry once, in no set order (the same order for maps
// holding the same keys).
func (m Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) { m.root.all(yield) }
}

// Keys yields every key once, in the order of All.
func (m Map[V]) Keys() iter.Seq[string] {
	return func(yield func(string) bool) {
		m.root.all(func(k string, _ V) bool { return yield(k) })
	}
}

// ToMap returns the entries as a new Go map.
func (m Map[V]) ToMap() map[string]V {
	out := make(map[string]V, m.n)
	for k, v := range m.All() {
		out[k] = v
	}
	return out
}

// String formats m as fmt formats a Go map: map[a:1 b:2], keys sorted.
func (m Map[V]) String() string {
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range slices.Sorted(m.Keys()) {
		if i > 0 {
			b.WriteByte(' ')
		}
		v, _ := m.Get(k)
		fmt.Fprintf(&b, "%s:%v", k, v)
	}
	b.WriteByte(']')
	return b.String()
}

// MarshalJSON encodes m as a JSON object, keys sorted.
func (m Map[V]) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.ToMap())
}

// UnmarshalJSON sets m to the entries of a JSON object (null: empty).
func (m *Map[V]) UnmarshalJSON(b []byte) error {
	var plain map[string]V
	if err := json.Unmarshal(b, &plain); err != nil {
		return err
	}
	*m = Of(plain)
	return nil
}

// withEntries returns m with es set, later entries of a key winning. Few
// entries are set one by one; many are built into a new trie with m's.
func (m Map[V]) withEntries(es []entry[V]) Map[V] {
	if len(es) <= max(8, m.n/8) {
		for _, e := range es {
			m = m.With(e.key, e.val)
		}
		return m
	}
	all := append(m.root.entries(make([]entry[V], 0, m.n+len(es))), es...)
	root := build(all, make([]entry[V], len(all)), 0)
	n := 0
	root.all(func(string, V) bool { n++; return true })
	return Map[V]{root: root, n: n}
}

// The codec.Mapper methods, through which Strata binds, patches, encodes
// and validates a Map.

var _ codec.Mapper = Map[int]{}

// MapperElem returns the type V. For codec.
func (m Map[V]) MapperElem() reflect.Type { return reflect.TypeFor[V]() }

// MapperLen returns Len. For codec.
func (m Map[V]) MapperLen() int { return m.n }

// MapperGet returns the value at key as a reflect.Value. For codec.
func (m Map[V]) MapperGet(key string) (reflect.Value, bool) {
	v, ok := m.Get(key)
	if !ok {
		return reflect.Value{}, false
	}
	return reflect.ValueOf(&v).Elem(), true
}

// MapperAll yields the entries as reflect.Values. For codec.
func (m Map[V]) MapperAll() iter.Seq2[string, reflect.Value] {
	return func(yield func(string, reflect.Value) bool) {
		m.root.all(func(k string, v V) bool { return yield(k, reflect.ValueOf(&v).Elem()) })
	}
}

// MapperWith returns m with the given entries, values of type V. For
// codec.
func (m Map[V]) MapperWith(entries iter.Seq2[string, reflect.Value]) codec.Mapper {
	var es []entry[V]
	for k, rv := range entries {
		var v V
		if rv.IsValid() {
			reflect.ValueOf(&v).Elem().Set(rv)
		}
		es = append(es, entry[V]{key: k, hash: hashOf(k), val: v})
	}
	return m.withEntries(es)
}

// MapperWithout returns Without(key). For codec.
func (m Map[V]) MapperWithout(key string) codec.Mapper { return m.Without(key) }

// MapperPlain returns ToMap. For codec.
func (m Map[V]) MapperPlain() any { return m.ToMap() }

// Equal reports whether m and o hold the same keys with values that
// reflect.DeepEqual finds equal.
func (m Map[V]) Equal(o Map[V]) bool {
	if m.n != o.n {
		return false
	}
	for k, v := range m.All() {
		w, ok := o.Get(k)
		if !ok || !reflect.DeepEqual(v, w) {
			return false
		}
	}
	return true
}
