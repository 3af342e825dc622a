package schema

import (
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/strataconf/strata/codec"
)

// ValidateAt reports whether v (a struct or a pointer to one, valid as a
// whole before one leaf changed) is still valid after a change of the leaf
// at a dotted config path (keys spelled as the fields', as codec.Canonical
// spells them). It judges only what such a change can break: the rules of
// the field the path leads to (for a map element, the map's own rules and
// the element's), and every cross-field rule (eqfield, required_if, ...)
// of the structs along the way. The element of a codec.Mapper map is
// judged as a Go map's, without reading the other entries: its own rules
// that read only its length (required, min, max, len, ...) are checked
// against that length.
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
	if rv.Kind() != reflect.Struct || isMapper(rv.Type()) || path == "" {
		return false
	}
	return validateAt(validatorFor(rv.Type()), rv, rv, "", strings.Split(path, "."))
}

// validateAt walks segs from the struct sv with the validator vd (that of
// the type of v, which knows every Mapper below); root is the struct that
// StructPartial namespaces (ns, Go field names) start from.
func validateAt(vd *validator.Validate, root, sv reflect.Value, ns string, segs []string) bool {
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
			if vd.StructPartial(root.Interface(), ns+goName(sv.Type(), g.Index)) != nil {
				return false
			}
		}
	}
	name := ns + goName(sv.Type(), f.Index)
	fv := sv.FieldByIndex(f.Index)
	if len(segs) == 1 {
		return vd.StructPartial(root.Interface(), name) == nil
	}
	tag := f.Struct.Tag.Get("validate")
	if isMapper(fv.Type()) {
		own, elemTag, ok := mapRules(tag)
		if !ok {
			return false
		}
		m := fv.Interface().(codec.Mapper)
		if own != "" && vd.Var(mapperOwnValue(m, fv, own), own) != nil {
			return false
		}
		ev, _ := m.MapperGet(segs[1])
		return validateEntry(vd, ev, elemTag, segs[2:])
	}
	switch fv.Kind() {
	case reflect.Struct:
		if tag != "" && vd.StructPartial(root.Interface(), name) != nil {
			return false
		}
		return validateAt(vd, root, fv, name+".", segs[1:])
	case reflect.Pointer:
		if fv.IsNil() || fv.Elem().Kind() != reflect.Struct || isMapper(fv.Elem().Type()) {
			return false
		}
		if tag != "" && vd.StructPartial(root.Interface(), name) != nil {
			return false
		}
		return validateAt(vd, root, fv.Elem(), name+".", segs[1:])
	case reflect.Map:
		own, elemTag, ok := mapRules(tag)
		if fv.Type().Key().Kind() != reflect.String || !ok {
			return false
		}
		if own != "" && vd.Var(fv.Interface(), own) != nil {
			return false
		}
		ev := fv.MapIndex(reflect.ValueOf(segs[1]).Convert(fv.Type().Key()))
		return validateEntry(vd, ev, elemTag, segs[2:])
	}
	return false
}

// mapRules splits the validate tag of a map into the map's own rules and
// those of its elements (after "dive"). ok is false when the tag has
// rules a change of one element cannot be judged by alone: cross-field
// rules, or rules on the keys.
func mapRules(tag string) (own, elem string, ok bool) {
	if crossField(tag) {
		return "", "", false
	}
	own, elem, _ = strings.Cut(tag, "dive")
	own, elem = strings.Trim(own, ","), strings.Trim(elem, ",")
	return own, elem, !strings.HasPrefix(elem, "keys")
}

// validateEntry judges the element ev of a map (invalid: removed) after a
// change at segs below it (none: ev itself), by the element rules elemTag.
func validateEntry(vd *validator.Validate, ev reflect.Value, elemTag string, segs []string) bool {
	if !ev.IsValid() {
		return true // removed: only the map's own rules can break
	}
	if elemTag != "" && vd.Var(ev.Interface(), elemTag) != nil {
		return false
	}
	for ev.Kind() == reflect.Pointer && !ev.IsNil() {
		ev = ev.Elem()
	}
	switch {
	case ev.Kind() == reflect.Struct && !isMapper(ev.Type()) && len(segs) > 0:
		// A copy, so that StructPartial can start from it.
		elem := reflect.New(ev.Type()).Elem()
		elem.Set(ev)
		return validateAt(vd, elem, elem, "", segs)
	case ev.Kind() == reflect.Struct && !isMapper(ev.Type()):
		return vd.Struct(ev.Interface()) == nil
	case len(segs) > 0:
		return false
	}
	return true
}

// lengthRules are the validator rules that read only the length of a map
// (and whether it is nil).
var lengthRules = map[string]bool{
	"required": true, "omitempty": true, "omitnil": true, "isdefault": true, "len": true,
	"min": true, "max": true, "eq": true, "ne": true, "gt": true, "gte": true, "lt": true, "lte": true,
}

// mapperOwnValue returns what the own rules of the Mapper m (the value
// fv) are checked against: when they read only its length, a slice of
// that length (nil when m is empty, as mapperPlain makes it), which the
// validator measures as it would the map; otherwise fv, which the
// validator reads whole.
func mapperOwnValue(m codec.Mapper, fv reflect.Value, own string) any {
	for _, r := range strings.FieldsFunc(own, func(c rune) bool { return c == ',' || c == '|' }) {
		name, _, _ := strings.Cut(r, "=")
		if !lengthRules[name] {
			return fv.Interface()
		}
	}
	if n := m.MapperLen(); n > 0 {
		return make([]struct{}, n)
	}
	return []struct{}(nil)
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
