package codec

import (
	"reflect"
	"sort"
	"strings"
)

// Canonical returns tree with every key that names a field of t but for
// case spelled as that field's key (see FieldKey), so that layers merged
// key by key agree on which keys are the same: APP_MAXCONNS (read as
// "maxconns"), "MaxConns" in a file and "maxConns" in struct defaults all
// become "maxConns". It follows t into nested structs, pointers, the
// elements of slices and arrays (given as lists or as index mappings) and
// the values of maps; the keys of a map are data and keep their case.
//
// When two keys at one level name the same field, the one spelled exactly
// as the field's key wins, or else the first in sorted order, as Bind
// chooses; the others keep their spelling, so Bind reports them unused.
// Keys that name no field are kept as they are.
//
// tree is not modified; the maps and lists on the way are copied. moved, if
// not nil, is called with the old and new dotted path of every leaf whose
// path changed, leaves being what a flat view of tree holds: values other
// than non-empty maps (a list is one leaf).
func Canonical(tree map[string]any, t reflect.Type, moved func(from, to string)) map[string]any {
	c := canonicalizer{moved: moved}
	out, _ := c.value(tree, t, "", "").(map[string]any)
	if out == nil {
		return tree
	}
	return out
}

type canonicalizer struct {
	moved func(from, to string)
}

// value canonicalizes v, bound to type t, found at dotted path from and
// placed at path to.
func (c canonicalizer) value(v any, t reflect.Type, from, to string) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(textUnmarshalerType) || t == durationType {
		return c.keep(v, from, to)
	}
	switch t.Kind() {
	case reflect.Struct:
		if m, ok := v.(map[string]any); ok {
			return c.structMap(m, t, from, to)
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = c.value(e, t.Elem(), join(from, k), join(to, k))
			}
			return out
		}
	case reflect.Slice, reflect.Array:
		switch s := v.(type) {
		case []any:
			// A list is one leaf of the flat paths: it moves as a whole.
			c.keep(s, from, to)
			inner := canonicalizer{}
			out := make([]any, len(s))
			for i, e := range s {
				out[i] = inner.value(e, t.Elem(), "", "")
			}
			return out
		case map[string]any: // index mapping: servers/0/host
			out := make(map[string]any, len(s))
			for k, e := range s {
				out[k] = c.value(e, t.Elem(), join(from, k), join(to, k))
			}
			return out
		}
	}
	return c.keep(v, from, to)
}

// structMap renames the keys of m that name a field of struct type t.
func (c canonicalizer) structMap(m map[string]any, t reflect.Type, from, to string) map[string]any {
	fields := Fields(t)
	byKey := make(map[string]*Field, len(fields))
	for i := range fields {
		byKey[fields[i].Key] = &fields[i]
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Which key each field takes: its exact key, or else the first key
	// equal but for case that no field claims exactly.
	taken := make(map[string]*Field, len(m))
	for i := range fields {
		f := &fields[i]
		if _, ok := m[f.Key]; ok {
			taken[f.Key] = f
			continue
		}
		for _, k := range keys {
			if taken[k] == nil && byKey[k] == nil && strings.EqualFold(k, f.Key) {
				taken[k] = f
				break
			}
		}
	}
	out := make(map[string]any, len(m))
	for _, k := range keys {
		f := taken[k]
		if f == nil {
			out[k] = c.keep(m[k], join(from, k), join(to, k))
			continue
		}
		out[f.Key] = c.value(m[k], f.Struct.Type, join(from, k), join(to, f.Key))
	}
	return out
}

// keep places v unchanged at path to, reporting the leaves that moved.
func (c canonicalizer) keep(v any, from, to string) any {
	if c.moved == nil || from == to {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			c.moved(from, to)
		}
		for k, e := range v {
			c.keep(e, join(from, k), join(to, k))
		}
	default: // a list is one leaf of the flat paths

		c.moved(from, to)
	}
	return v
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
