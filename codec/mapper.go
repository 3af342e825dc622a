package codec

import (
	"fmt"
	"iter"
	"reflect"
)

// A Mapper is a map type of its own that codec and schema treat as a map
// of string keys to MapperElem values, as bigmap.Map is: Bind fills it from
// a mapping (merged into the map it held, as for a Go map), Patched sets or
// removes one entry at the cost of MapperWith or MapperWithout (no copy of
// the whole map), Encode and ToMap write its entries, and schema validates
// (rules apply to MapperPlain's map), describes and masks it as a map.
//
// The methods are for codec and schema, not for programs. None modifies the
// receiver; the zero value is an empty map. A type is a Mapper when its
// value (not only its pointer) has these methods; see MapperOf.
type Mapper interface {
	// MapperElem returns the type of the values.
	MapperElem() reflect.Type
	// MapperLen returns the number of entries.
	MapperLen() int
	// MapperGet returns the value at key (of type MapperElem), and
	// whether there is one.
	MapperGet(key string) (reflect.Value, bool)
	// MapperAll yields every entry once, in no set order.
	MapperAll() iter.Seq2[string, reflect.Value]
	// MapperWith returns a map of the receiver's type holding the
	// receiver's entries and the given ones (values of type MapperElem),
	// which replace entries at the same keys.
	MapperWith(entries iter.Seq2[string, reflect.Value]) Mapper
	// MapperWithout returns a map of the receiver's type holding the
	// receiver's entries but the one at key.
	MapperWithout(key string) Mapper
	// MapperPlain returns the entries as a new Go map (map[string]V),
	// for rules that the validator applies to maps.
	MapperPlain() any
}

var mapperType = reflect.TypeFor[Mapper]()

// MapperOf reports whether t is a Mapper type, and returns the type of its
// values. A pointer to a Mapper is not one.
func MapperOf(t reflect.Type) (elem reflect.Type, ok bool) {
	if t == nil || t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface || !t.Implements(mapperType) {
		return nil, false
	}
	return reflect.Zero(t).Interface().(Mapper).MapperElem(), true
}

// isMapper reports whether t is a Mapper type.
func isMapper(t reflect.Type) bool {
	_, ok := MapperOf(t)
	return ok
}

// mapperValue returns v as a Mapper, when its type is one (and v was not
// reached through an unexported field).
func mapperValue(v reflect.Value) (Mapper, bool) {
	if !v.CanInterface() || !isMapper(v.Type()) {
		return nil, false
	}
	m, ok := v.Interface().(Mapper)
	return m, ok
}

// MapperEntry returns the entry with the given key and value as an
// iter.Seq2, for MapperWith.
func MapperEntry(key string, v reflect.Value) iter.Seq2[string, reflect.Value] {
	return func(yield func(string, reflect.Value) bool) { yield(key, v) }
}

// setMapper sets dst, of a Mapper type, to m, a map that dst's MapperWith
// or MapperWithout returned.
func setMapper(dst reflect.Value, m Mapper) error {
	nv := reflect.ValueOf(m)
	if !nv.IsValid() || !nv.Type().ConvertibleTo(dst.Type()) {
		return fmt.Errorf("the Mapper methods of %s returned a %T", dst.Type(), m)
	}
	dst.Set(nv.Convert(dst.Type()))
	return nil
}
