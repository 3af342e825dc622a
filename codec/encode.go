package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting EncodeLeaf and ToMap follow, so that a
// pointer cycle gives an error instead of endless recursion.
const maxDepth = 100

var errTooDeep = errors.New("value nested too deeply (a pointer cycle?)")

// EncodeLeaf renders a Go value as the leaf text that DecodeLeaf reads back
// identically: strings as is, ints/uints/floats with strconv (floats 'g'
// shortest, -1 precision), bools "true"/"false", time.Duration with String()
// ("15s"), encoding.TextMarshaler with MarshalText, slices/arrays/maps/structs
// as compact JSON, a Mapper as the Go map of its entries would be.
//
// In that JSON, structs are objects keyed by config keys (see FieldKey)
// with nil fields left out, map keys are their leaf text, durations and
// TextMarshalers are strings, []byte is an array of numbers, and NaN and
// ±Inf are the strings "NaN", "+Inf" and "-Inf". Text in that JSON must be
// valid UTF-8 (JSON cannot carry other bytes); a top-level string need not. Pointers are followed; a
// nil pointer is an error; a nil slice or map gives "[]" or "{}".
func EncodeLeaf(v any) (string, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return "", fmt.Errorf("codec: cannot encode nil %T", v)
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return "", errors.New("codec: cannot encode nil")
	}
	if rv.Kind() == reflect.Slice && rv.IsNil() {
		return "[]", nil
	}
	if rv.Kind() == reflect.Map && rv.IsNil() {
		return "{}", nil
	}
	if s, ok, err := scalarText(rv); ok {
		return s, err
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		j, err := jsonValue(rv, 0)
		if err != nil {
			return "", fmt.Errorf("codec: encode %s: %w", rv.Type(), err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(j); err != nil {
			return "", fmt.Errorf("codec: encode %s: %w", rv.Type(), err)
		}
		return string(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})), nil
	}
	return "", fmt.Errorf("codec: cannot encode %s as leaf text", rv.Type())
}

// scalarText renders a duration, a TextMarshaler, a string, a bool or a
// number as text; ok is false for any other value.
func scalarText(rv reflect.Value) (s string, ok bool, err error) {
	if rv.Type() == durationType {
		return time.Duration(rv.Int()).String(), true, nil
	}
	if tm, ok := textMarshaler(rv); ok {
		b, err := tm.MarshalText()
		if err != nil {
			return "", true, fmt.Errorf("codec: encode %s: %w", rv.Type(), err)
		}
		return string(b), true, nil
	}
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true, nil
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), true, nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, rv.Type().Bits()), true, nil
	}
	return "", false, nil
}

// textMarshaler returns rv as an encoding.TextMarshaler, through a copy
// when only its pointer type has MarshalText.
func textMarshaler(rv reflect.Value) (encoding.TextMarshaler, bool) {
	if !rv.CanInterface() {
		return nil, false
	}
	t := rv.Type()
	if t.Implements(textMarshalerType) {
		if isNilValue(rv) {
			return nil, false
		}
		return rv.Interface().(encoding.TextMarshaler), true
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(textMarshalerType) {
		p := reflect.New(t)
		p.Elem().Set(rv)
		return p.Interface().(encoding.TextMarshaler), true
	}
	return nil, false
}

func isTextMarshaler(t reflect.Type) bool {
	return t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

// isNilValue reports whether rv is a nil pointer, map, slice, interface,
// func or chan that is not a Mapper.
func isNilValue(rv reflect.Value) bool {
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil() && !isMapper(rv.Type())
	}
	return false
}

// jsonValue converts rv into a value encoding/json writes as DecodeLeaf
// reads it back.
func jsonValue(rv reflect.Value, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	if !rv.IsValid() || isNilValue(rv) {
		return nil, nil
	}
	if rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		return jsonValue(rv.Elem(), depth+1)
	}
	if rv.Type() == durationType {
		return time.Duration(rv.Int()).String(), nil
	}
	if _, ok := textMarshaler(rv); ok {
		s, _, err := scalarText(rv)
		if err == nil && !utf8.ValidString(s) {
			err = fmt.Errorf("text %s is not valid UTF-8", quote(s))
		}
		return s, err
	}
	if m, ok := mapperValue(rv); ok {
		out := make(map[string]any, m.MapperLen())
		for k, e := range m.MapperAll() {
			if err := jsonEntry(out, k, e, depth); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch rv.Kind() {
	case reflect.String:
		if !utf8.ValidString(rv.String()) {
			return nil, fmt.Errorf("text %s is not valid UTF-8", quote(rv.String()))
		}
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(rv.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return json.Number(strconv.FormatUint(rv.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		s := strconv.FormatFloat(f, 'g', -1, rv.Type().Bits())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return s, nil
		}
		return json.Number(s), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			e, err := jsonValue(rv.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			k, ok, err := scalarText(it.Key())
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("unsupported map key type %s", it.Key().Type())
			}
			if err := jsonEntry(out, k, it.Value(), depth); err != nil {
				return nil, err
			}
		}
		return out, nil
	case reflect.Struct:
		out := make(map[string]any)
		for _, f := range fieldsOf(rv.Type()).list {
			fv, ok := fieldForRead(rv, f.Index)
			if !ok || isNilValue(fv) {
				continue
			}
			e, err := jsonValue(fv, depth+1)
			if err != nil {
				return nil, err
			}
			out[f.Key] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported type %s", rv.Type())
}

// jsonEntry sets out[k] to the JSON value of e, an entry of a map (a Go map
// or a Mapper) at depth.
func jsonEntry(out map[string]any, k string, e reflect.Value, depth int) error {
	if !utf8.ValidString(k) {
		return fmt.Errorf("map key %s is not valid UTF-8", quote(k))
	}
	j, err := jsonValue(e, depth+1)
	if err != nil {
		return err
	}
	out[k] = j
	return nil
}

// ToMap renders a struct (or pointer to struct) as a nested map keyed by
// config keys (see FieldKey): nested structs become nested maps, map[string]X
// and Mapper fields become nested maps (so layers merge by key, as in
// koanf; a Mapper, never nil, gives a map even when empty), leaf
// values are kept as Go values (a time.Duration stays a time.Duration; a
// TextMarshaler like time.Time or net.IP is a leaf, not recursed into;
// slices are leaves). Nil pointers are omitted.
//
// Pointers to leaves are followed (a *int gives its int); nil maps, slices
// and interfaces are omitted too; an interface field keeps its dynamic value
// as a leaf. Leaf slices and maps are not copied: Bind copies them when it
// assigns them.
func ToMap(v any) (map[string]any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("codec: ToMap of nil %T", v)
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("codec: ToMap needs a struct, got %T", v)
	}
	return structMap(rv, 0)
}

func structMap(sv reflect.Value, depth int) (map[string]any, error) {
	m := make(map[string]any)
	for _, f := range fieldsOf(sv.Type()).list {
		fv, ok := fieldForRead(sv, f.Index)
		if !ok {
			continue
		}
		e, keep, err := mapValue(fv, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Key, err)
		}
		if keep {
			m[f.Key] = e
		}
	}
	return m, nil
}

// mapValue is ToMap's rendering of one value; keep is false for a value to
// leave out.
func mapValue(v reflect.Value, depth int) (e any, keep bool, err error) {
	if depth > maxDepth {
		return nil, false, errTooDeep
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false, nil
		}
		v = v.Elem()
	}
	if isNilValue(v) || !v.CanInterface() {
		return nil, false, nil
	}
	t := v.Type()
	switch {
	case v.Kind() == reflect.Interface:
		return v.Elem().Interface(), true, nil
	case t == durationType || isTextMarshaler(t):
		return v.Interface(), true, nil
	case isMapper(t):
		mv := v.Interface().(Mapper)
		m := make(map[string]any, mv.MapperLen())
		for k, e := range mv.MapperAll() {
			if err := mapEntry(m, k, e, depth); err != nil {
				return nil, false, err
			}
		}
		return m, true, nil
	case t.Kind() == reflect.Struct:
		m, err := structMap(v, depth)
		return m, err == nil, err
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			if err := mapEntry(m, it.Key().String(), it.Value(), depth); err != nil {
				return nil, false, err
			}
		}
		return m, true, nil
	}
	return v.Interface(), true, nil
}

// mapEntry sets m[k] to ToMap's rendering of e, an entry of a map (a Go map
// with string keys or a Mapper) at depth, unless it is left out.
func mapEntry(m map[string]any, k string, e reflect.Value, depth int) error {
	v, keep, err := mapValue(e, depth+1)
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	if keep {
		m[k] = v
	}
	return nil
}
