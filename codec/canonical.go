package codec

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Canonical returns tree with every key that names a field of t but for
// case spelled as that field's key (see FieldKey), so that layers merged
// key by key agree on which keys are the same: APP_MAXCONNS (read as
// "maxconns"), "MaxConns" in a file and "maxConns" in struct defaults all
// become "maxConns". It follows t into nested structs, pointers, the
// elements of slices and arrays (given as lists or as index mappings) and
// the values of maps and Mappers; the keys of a map are data and keep their
// case.
//
// When two keys at one level name the same field, the one spelled exactly
// as the field's key wins, or else the first in sorted order, as Bind
// chooses; the others keep their spelling, so Bind reports them unused.
// Keys that name no field are kept as they are.
//
// tree is not modified. The maps and lists on the way to a renamed key are
// copied; the rest of the result is shared with tree (all of it when no key
// is renamed), so the result must not be modified either. A nil tree gives
// an empty map. moved, if not nil, is called with the old and new dotted
// path of every leaf whose path changed, leaves being what a flat view of
// tree holds: values other than non-empty maps (a list is one leaf).
func Canonical(tree map[string]any, t reflect.Type, moved func(from, to string)) map[string]any {
	if tree == nil {
		return map[string]any{}
	}
	c := canonicalizer{moved: moved}
	out, _ := c.value(tree, t)
	if m, ok := out.(map[string]any); ok {
		return m
	}
	return tree
}

// canonicalizer walks a tree depth first. from and to are the segments of
// the path being visited, as found and as placed; renamed counts the
// segments that differ, so that paths are joined only to report a move.
type canonicalizer struct {
	moved    func(from, to string)
	from, to []string
	renamed  int
}

// enter descends into key k, placed as key to.
func (c *canonicalizer) enter(k, to string) {
	c.from = append(c.from, k)
	c.to = append(c.to, to)
	if k != to {
		c.renamed++
	}
}

// leave undoes the matching enter.
func (c *canonicalizer) leave() {
	n := len(c.from) - 1
	if c.from[n] != c.to[n] {
		c.renamed--
	}
	c.from, c.to = c.from[:n], c.to[:n]
}

// reporting tells whether leaves below the current path must be reported.
func (c *canonicalizer) reporting() bool { return c.moved != nil && c.renamed > 0 }

// value canonicalizes v, bound to type t, at the current path. changed is
// false when v is returned as it is.
func (c *canonicalizer) value(v any, t reflect.Type) (out any, changed bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || !holdsStruct(t) {
		// No key beneath can name a field: nothing to rename.
		return c.keep(v), false
	}
	if elem, ok := MapperOf(t); ok {
		if m, ok := v.(map[string]any); ok {
			return c.entries(m, elem)
		}
		return c.keep(v), false
	}
	switch t.Kind() {
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			return c.structMap(m, t)
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			return c.entries(m, t.Elem())
		}
	case reflect.Slice, reflect.Array:
		switch s := v.(type) {
		case []any:
			// A list is one leaf of the flat paths: it moves as a whole.
			c.keep(s)
			var inner canonicalizer
			var out []any
			for i, e := range s {
				if ne, ch := inner.value(e, t.Elem()); ch {
					if out == nil {
						out = slices.Clone(s)
					}
					out[i] = ne
				}
			}
			if out == nil {
				return s, false
			}
			return out, true
		case map[string]any: // index mapping: servers/0/host
			return c.entries(s, t.Elem())
		}
	}
	return c.keep(v), false
}

// entries canonicalizes the values of m (a map, or an index mapping of a
// slice) as elem; the keys are data and stay.
func (c *canonicalizer) entries(m map[string]any, elem reflect.Type) (map[string]any, bool) {
	if len(m) == 0 {
		return c.keep(m).(map[string]any), false // an empty map is a leaf
	}
	var out map[string]any
	for k, e := range m {
		c.enter(k, k)
		ne, ch := c.value(e, elem)
		c.leave()
		if ch {
			if out == nil {
				out = maps.Clone(m)
			}
			out[k] = ne
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// structMap renames the keys of m that name a field of struct type t.
func (c *canonicalizer) structMap(m map[string]any, t reflect.Type) (map[string]any, bool) {
	if len(m) == 0 {
		return c.keep(m).(map[string]any), false // an empty map is a leaf
	}
	sf := fieldsOf(t)
	folded := false // some key names a field but for case
	for k := range m {
		if sf.folds(k) {
			folded = true
			break
		}
	}
	if !folded {
		// Every key stays: follow the fields into their values.
		var out map[string]any
		for k, e := range m {
			c.enter(k, k)
			var ne any
			ch := false
			if f, ok := sf.field(k); ok {
				ne, ch = c.value(e, f.Struct.Type)
			} else {
				c.keep(e)
			}
			c.leave()
			if ch {
				if out == nil {
					out = maps.Clone(m)
				}
				out[k] = ne
			}
		}
		if out == nil {
			return m, false
		}
		return out, true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Which key each field takes: its exact key, or else the first key
	// equal but for case that no field claims exactly.
	taken := make(map[string]*Field, len(m))
	for i := range sf.list {
		f := &sf.list[i]
		if _, ok := m[f.Key]; ok {
			taken[f.Key] = f
			continue
		}
		for _, k := range keys {
			if _, claimed := sf.byKey[k]; taken[k] == nil && !claimed && strings.EqualFold(k, f.Key) {
				taken[k] = f
				break
			}
		}
	}
	out := make(map[string]any, len(m))
	for _, k := range keys {
		f := taken[k]
		if f == nil {
			c.enter(k, k)
			out[k] = c.keep(m[k])
			c.leave()
			continue
		}
		c.enter(k, f.Key)
		out[f.Key], _ = c.value(m[k], f.Struct.Type)
		c.leave()
	}
	return out, true
}

// keep leaves v as it is at the current path, reporting the leaves that
// moved.
func (c *canonicalizer) keep(v any) any {
	if !c.reporting() {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			c.report()
		}
		for k, e := range v {
			c.enter(k, k)
			c.keep(e)
			c.leave()
		}
	default: // a list is one leaf of the flat paths
		c.report()
	}
	return v
}

// report tells moved that the leaf at the current path moved.
func (c *canonicalizer) report() {
	c.moved(strings.Join(c.from, "."), strings.Join(c.to, "."))
}

// structHolders caches holdsStruct by type.
var structHolders sync.Map

// holdsStruct reports whether a value of type t can hold a mapping bound to
// a struct, whose keys Canonical may rename: t is such a struct, or a
// pointer, slice, array, map or Mapper leading to one. Interfaces,
// durations and TextUnmarshalers take values as they are.
func holdsStruct(t reflect.Type) bool {
	if h, ok := structHolders.Load(t); ok {
		return h.(bool)
	}
	h := holdsStructIn(t, map[reflect.Type]bool{})
	structHolders.Store(t, h)
	return h
}

func holdsStructIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t.Kind() == reflect.Interface || t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return false
	}
	if seen[t] {
		return false // a recursive type holds a struct only through another way down
	}
	seen[t] = true
	if elem, ok := MapperOf(t); ok {
		return holdsStructIn(elem, seen)
	}
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return holdsStructIn(t.Elem(), seen)
	}
	return false
}
