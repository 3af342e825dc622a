package codec

import (
	"reflect"
	"strings"
)

// TagName is the struct tag that names a field's configuration key. It is
// koanf's own convention, so existing koanf structs bind unchanged.
const TagName = "koanf"

// FieldKey reports the configuration key of a struct field.
//
// The key is the name in the `koanf:"name"` tag, or else the field name in
// lower case. inline is true for a field whose members belong to the parent
// (an embedded struct without a tag name, or a tag with ",squash"). ok is
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
		if t.Kind() == reflect.Struct {
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
