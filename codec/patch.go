package codec

import (
	"maps"
	"reflect"
	"strings"
	"time"
)

// Patched returns a copy of *v in which the leaf at a dotted config path
// (keys spelled as the fields', see Canonical) holds value, decoded as Bind
// decodes it, or, with remove, is gone: a field reset to its zero value, a
// map entry deleted. The copy shares everything with *v but the containers
// on the way to the leaf, which are copied (a map of n entries costs a copy
// of n entries); *v is not modified.
//
// ok is false when the leaf cannot be patched alone, and the whole tree must
// be bound instead: the path goes through a slice, an array, an interface,
// a map with keys that are not strings, a field promoted through an
// embedded pointer, or a nil pointer on the way to a removed leaf; a key
// names no field; the leaf is not a scalar (a struct, map or list given as
// one value); or value does not decode.
func Patched[T any](v *T, path string, value any, remove bool) (out *T, ok bool) {
	out = new(T)
	*out = *v
	if !patch(reflect.ValueOf(out).Elem(), strings.Split(path, "."), value, remove) {
		return nil, false
	}
	return out, true
}

// patch sets the leaf at segs under sv, an addressable struct, copying the
// containers on the way.
func patch(sv reflect.Value, segs []string, value any, remove bool) bool {
	if sv.Kind() != reflect.Struct {
		return false
	}
	var f *Field
	for _, g := range Fields(sv.Type()) {
		if g.Key == segs[0] {
			f = &g
			break
		}
	}
	if f == nil || f.ViaPointer {
		return false
	}
	fv := sv.FieldByIndex(f.Index)
	if len(segs) == 1 {
		return setLeaf(fv, value, remove)
	}
	switch fv.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(fv.Type()).Implements(textUnmarshalerType) {
			return false
		}
		return patch(fv, segs[1:], value, remove)
	case reflect.Pointer:
		et := fv.Type().Elem()
		if et.Kind() != reflect.Struct || (fv.IsNil() && remove) {
			return false
		}
		np := reflect.New(et)
		if !fv.IsNil() {
			np.Elem().Set(fv.Elem())
		}
		if !patch(np.Elem(), segs[1:], value, remove) {
			return false
		}
		fv.Set(np)
		return true
	case reflect.Map:
		if fv.Type().Key().Kind() != reflect.String {
			return false
		}
		nm := cloneMap(fv)
		key := reflect.ValueOf(segs[1]).Convert(fv.Type().Key())
		et := fv.Type().Elem()
		if len(segs) == 2 {
			if remove {
				nm.SetMapIndex(key, reflect.Value{})
			} else {
				ne := reflect.New(et).Elem()
				if !setLeaf(ne, value, false) {
					return false
				}
				nm.SetMapIndex(key, ne)
			}
			fv.Set(nm)
			return true
		}
		ne := reflect.New(et).Elem()
		if old := fv.MapIndex(key); old.IsValid() {
			ne.Set(old)
		} else if remove {
			return false
		}
		switch {
		case et.Kind() == reflect.Struct:
			if !patch(ne, segs[2:], value, remove) {
				return false
			}
		case et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct:
			np := reflect.New(et.Elem())
			if !ne.IsNil() {
				np.Elem().Set(ne.Elem())
			}
			if !patch(np.Elem(), segs[2:], value, remove) {
				return false
			}
			ne = np
		default:
			return false
		}
		nm.SetMapIndex(key, ne)
		fv.Set(nm)
		return true
	}
	return false
}

// setLeaf decodes value into dst, a scalar, or resets it.
func setLeaf(dst reflect.Value, value any, remove bool) bool {
	t := dst.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	scalar := t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType)
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		scalar = true
	}
	if !scalar {
		return false
	}
	nv := reflect.New(dst.Type()).Elem()
	if !remove && DecodeLeaf(value, nv) != nil {
		return false
	}
	dst.Set(nv)
	return true
}

// cloneMap copies map m: with maps.Clone for the common element types (a
// reflect copy costs several times more), else entry by entry.
func cloneMap(m reflect.Value) reflect.Value {
	t := m.Type()
	for _, n := range nativeMaps {
		if t.Key() == n.t.Key() && t.Elem() == n.t.Elem() {
			c := reflect.ValueOf(n.clone(m.Convert(n.t).Interface())).Convert(t)
			return c
		}
	}
	out := reflect.MakeMapWithSize(t, m.Len()+1)
	k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	for it := m.MapRange(); it.Next(); {
		k.SetIterKey(it)
		v.SetIterValue(it)
		out.SetMapIndex(k, v)
	}
	return out
}

// nativeMaps are the map types cloneMap copies natively.
var nativeMaps = []struct {
	t     reflect.Type
	clone func(any) any
}{
	nativeMap[string](), nativeMap[int](), nativeMap[int64](), nativeMap[bool](), nativeMap[float64](),
	nativeMap[any](), nativeMap[time.Duration](), nativeMap[uint](), nativeMap[int32](),
}

func nativeMap[V any]() struct {
	t     reflect.Type
	clone func(any) any
} {
	return struct {
		t     reflect.Type
		clone func(any) any
	}{reflect.TypeFor[map[string]V](), func(m any) any { return maps.Clone(m.(map[string]V)) }}
}
