package codec

import (
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// TagName is the struct tag that names a field's configuration key. It is
// koanf's own convention, so existing koanf structs bind unchanged.
const TagName = "koanf"

// FieldKey reports the configuration key of a struct field.
//
// The key is the name in the `koanf:"name"` tag, or else the field name in
// lower case. inline is true for a field whose members belong to the parent
// (an embedded struct without a tag name, or a tag with ",squash"); an
// embedded Mapper is a field of its own, as an embedded map would be. ok is
// false for a field that is not configuration: unexported, or tagged
// `koanf:"-"`.
func FieldKey(f reflect.StructField) (key string, inline bool, ok bool) {
	tag := f.Tag.Get(TagName)
	if tag == "-" {
		return "", false, false
	}
	name, opts, _ := strings.Cut(tag, ",")
	squash := false
	for _, o := range strings.Split(opts, ",") {
		if o == "squash" {
			squash = true
		}
	}
	if f.Anonymous && name == "" {
		t := f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Struct && !isMapper(t) {
			squash = true
		}
	}
	if !f.IsExported() && !(f.Anonymous && squash) {
		return "", false, false
	}
	if squash {
		return "", true, true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false, true
}

// Field is one configuration field of a struct type, possibly promoted from
// an inline (embedded or squashed) struct.
type Field struct {
	// Key is the field's config key (see FieldKey).
	Key string
	// Index leads from the struct to the field through inline structs, as
	// for reflect.Value.FieldByIndex.
	Index []int
	// Depth counts the inline structs the field is promoted through.
	Depth int
	// Struct is the field itself.
	Struct reflect.StructField
	// Secret is true when the field, or an inline struct it is promoted
	// from, is tagged `secret:"true"`.
	Secret bool
	// ViaPointer is true when the field is promoted through an embedded
	// pointer.
	ViaPointer bool
}

// Fields lists the configuration fields of struct type t, as Bind sees
// them. A key defined at a shallower inline depth hides the same key deeper
// down; at equal depth the first in declaration order wins. The slice is
// the caller's.
func Fields(t reflect.Type) []Field {
	return slices.Clone(fieldsOf(t).list)
}

// structFields is what the codec knows of one struct type's fields; it is
// shared and never modified.
type structFields struct {
	list  []Field        // as Fields returns them
	byKey map[string]int // config key → index in list
}

// fieldCache holds the structFields of every struct type seen, by
// reflect.Type: a type's fields never change, and Bind and Canonical look
// them up for every mapping bound to a struct.
var fieldCache sync.Map

// fieldsOf returns the fields of struct type t, computed once per type.
func fieldsOf(t reflect.Type) *structFields {
	if sf, ok := fieldCache.Load(t); ok {
		return sf.(*structFields)
	}
	list := fields(t)
	sf := &structFields{list: list, byKey: make(map[string]int, len(list))}
	for i, f := range list {
		sf.byKey[f.Key] = i
	}
	actual, _ := fieldCache.LoadOrStore(t, sf)
	return actual.(*structFields)
}

// field returns the field whose config key is exactly key.
func (sf *structFields) field(key string) (*Field, bool) {
	i, ok := sf.byKey[key]
	if !ok {
		return nil, false
	}
	return &sf.list[i], true
}

// folds reports whether key equals some field's key but for case without
// being exactly one: Bind and Canonical then match it to that field when no
// key of the mapping is spelled exactly as the field's.
func (sf *structFields) folds(key string) bool {
	if _, ok := sf.byKey[key]; ok {
		return false
	}
	for i := range sf.list {
		if strings.EqualFold(key, sf.list[i].Key) {
			return true
		}
	}
	return false
}

// fields computes Fields(t).
func fields(t reflect.Type) []Field {
	var all []Field
	visiting := map[reflect.Type]bool{t: true}
	var walk func(t reflect.Type, index []int, depth int, secret, viaPtr bool)
	walk = func(t reflect.Type, index []int, depth int, secret, viaPtr bool) {
		for i := range t.NumField() {
			sf := t.Field(i)
			key, inline, ok := FieldKey(sf)
			if !ok {
				continue
			}
			idx := append(slices.Clip(index), i)
			sec := secret || IsSecretField(sf)
			if !inline {
				all = append(all, Field{Key: key, Index: idx, Depth: depth, Struct: sf, Secret: sec, ViaPointer: viaPtr})
				continue
			}
			ft, ptr := sf.Type, false
			if ft.Kind() == reflect.Pointer {
				ft, ptr = ft.Elem(), true
			}
			if ft.Kind() != reflect.Struct || isMapper(ft) || visiting[ft] {
				continue
			}
			visiting[ft] = true
			walk(ft, idx, depth+1, sec, viaPtr || ptr)
			delete(visiting, ft)
		}
	}
	walk(t, nil, 0, false, false)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Depth < all[j].Depth })
	seen := make(map[string]bool, len(all))
	out := all[:0]
	for _, f := range all {
		if !seen[f.Key] {
			seen[f.Key] = true
			out = append(out, f)
		}
	}
	return out
}

// IsSecretField reports whether f is tagged `secret:"true"` (any value
// strconv.ParseBool reads as true).
func IsSecretField(f reflect.StructField) bool {
	v, err := strconv.ParseBool(f.Tag.Get("secret"))
	return err == nil && v
}
