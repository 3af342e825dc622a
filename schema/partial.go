package schema

import (
	"reflect"
	"strings"

	"github.com/strataconf/strata/codec"
)

// ValidateAt reports whether v (a struct or a pointer to one, valid as a
// whole before one leaf changed) is still valid after a change of the leaf
// at a dotted config path (keys spelled as the fields', as codec.Canonical
// spells them). It judges only what such a change can break: the rules of
// the field the path leads to (for a map element, the map's own rules and
// the element's), and every cross-field rule (eqfield, required_if, ...)
// of the structs along the way.
//
// ok is false when v breaks one of those rules, or when the path leads
// where a change cannot be judged alone: through a slice, an array, an
// interface, a map with rules on its keys or cross-field rules, a nil
// pointer, a key that names no field. Validate v whole then, to know and
// to name the failure.
func ValidateAt(v any, path string) (ok bool) {
	defer func() {
		if recover() != nil { // a malformed tag: Validate reports it
			ok = false
		}
	}()
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || path == "" {
		return false
	}
	return validateAt(rv, rv, "", strings.Split(path, "."))
}

// validateAt walks segs from the struct sv; root is the struct that
// StructPartial namespaces (ns, Go field names) start from.
func validateAt(root, sv reflect.Value, ns string, segs []string) bool {
	var f *codec.Field
	fields := codec.Fields(sv.Type())
	for i := range fields {
		if fields[i].Key == segs[0] {
			f = &fields[i]
		}
	}
	if f == nil || f.ViaPointer {
		return false
	}
	// The cross-field rules of this struct may read the changed field.
	for _, g := range fields {
		if g.Key != f.Key && crossField(g.Struct.Tag.Get("validate")) {
			if validate.StructPartial(root.Interface(), ns+goName(sv.Type(), g.Index)) != nil {
				return false
			}
		}
	}
	name := ns + goName(sv.Type(), f.Index)
	fv := sv.FieldByIndex(f.Index)
	if len(segs) == 1 {
		return validate.StructPartial(root.Interface(), name) == nil
	}
	tag := f.Struct.Tag.Get("validate")
	switch fv.Kind() {
	case reflect.Struct:
		if tag != "" && validate.StructPartial(root.Interface(), name) != nil {
			return false
		}
		return validateAt(root, fv, name+".", segs[1:])
	case reflect.Pointer:
		if fv.IsNil() || fv.Elem().Kind() != reflect.Struct {
			return false
		}
		if tag != "" && validate.StructPartial(root.Interface(), name) != nil {
			return false
		}
		return validateAt(root, fv.Elem(), name+".", segs[1:])
	case reflect.Map:
		if fv.Type().Key().Kind() != reflect.String || crossField(tag) {
			return false
		}
		own, elemTag, _ := strings.Cut(tag, "dive")
		own, elemTag = strings.Trim(own, ","), strings.Trim(elemTag, ",")
		if strings.HasPrefix(elemTag, "keys") {
			return false
		}
		if own != "" && validate.Var(fv.Interface(), own) != nil {
			return false
		}
		ev := fv.MapIndex(reflect.ValueOf(segs[1]).Convert(fv.Type().Key()))
		if !ev.IsValid() {
			return true // removed: only the map's own rules can break
		}
		if elemTag != "" && validate.Var(ev.Interface(), elemTag) != nil {
			return false
		}
		for ev.Kind() == reflect.Pointer && !ev.IsNil() {
			ev = ev.Elem()
		}
		switch {
		case ev.Kind() == reflect.Struct && len(segs) > 2:
			// A copy, so that StructPartial can start from it.
			elem := reflect.New(ev.Type()).Elem()
			elem.Set(ev)
			return validateAt(elem, elem, "", segs[2:])
		case ev.Kind() == reflect.Struct:
			return validate.Struct(ev.Interface()) == nil
		case len(segs) > 2:
			return false
		}
		return true
	}
	return false
}

// goName is the Go namespace of the field at index in struct type t
// ("Base.Port" for a field promoted from an embedded Base), as
// StructPartial names fields.
func goName(t reflect.Type, index []int) string {
	var parts []string
	for _, i := range index {
		f := t.Field(i)
		parts = append(parts, f.Name)
		t = f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return strings.Join(parts, ".")
}

// crossFieldRules are the validator rules that read another field.
var crossFieldRules = []string{"field", "required_if", "required_unless", "required_with", "required_without",
	"excluded_if", "excluded_unless", "excluded_with", "excluded_without", "skip_unless"}

// crossField reports whether a validate tag holds a rule that reads
// another field.
func crossField(tag string) bool {
	for _, r := range crossFieldRules {
		if strings.Contains(tag, r) {
			return true
		}
	}
	return false
}
