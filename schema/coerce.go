package schema

import (
	"encoding"
	"encoding/json"
	"iter"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/strataconf/strata/codec"
)

// normalize turns a tree from the codec package into JSON values: maps with
// string keys and codec.Mapper maps become map[string]any (nil values
// dropped: Bind ignores them),
// slices []any, integers int64 or uint64, floats float64, time.Time its RFC
// 3339 text, time.Duration its String, other encoding.TextMarshalers their
// text. Values of other types are left for the validator to reject.
func normalize(v any) any {
	switch v := v.(type) {
	case nil, bool, string, int64, uint64, float64, json.Number:
		return v
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			if !codec.IsNil(e) {
				m[k] = normalize(e)
			}
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = normalize(e)
		}
		return s
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case time.Duration:
		return v.String()
	case encoding.TextMarshaler:
		if b, err := v.MarshalText(); err == nil {
			return string(b)
		}
		return v
	}
	rv := reflect.ValueOf(v)
	if n, entries, ok := stringMap(rv); ok {
		m := make(map[string]any, n)
		for k, e := range entries {
			if e := e.Interface(); !codec.IsNil(e) {
				m[k] = normalize(e)
			}
		}
		return m
	}
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool()
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint()
	case reflect.Float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(rv.Float(), 'g', -1, 32), 64)
		return f
	case reflect.Float64:
		return rv.Float()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = normalize(rv.Index(i).Interface())
		}
		return s
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface())
	}
	return v
}

// stringMap returns the length and the entries of rv when it is a map of
// string keys: a Go map or a codec.Mapper.
func stringMap(rv reflect.Value) (n int, entries iter.Seq2[string, reflect.Value], ok bool) {
	if isMapper(rv.Type()) {
		m := rv.Interface().(codec.Mapper)
		return m.MapperLen(), m.MapperAll(), true
	}
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return 0, nil, false
	}
	return rv.Len(), func(yield func(string, reflect.Value) bool) {
		for it := rv.MapRange(); it.Next(); {
			if !yield(it.Key().String(), it.Value()) {
				return
			}
		}
	}, true
}

// coerce converts the leaves of v (normalized) to the types the schema node
// wants, as codec.Bind would read them.
func (s *Schema) coerce(v any, node any, depth int) any {
	if depth > 256 {
		return v
	}
	types := s.types(node)
	switch x := v.(type) {
	case string:
		if len(types) == 0 || hasType(types, "string") {
			return x
		}
		t := strings.TrimSpace(x)
		for _, want := range types {
			switch want {
			case "integer":
				if strings.HasPrefix(t, "+") {
					continue // codec.Bind rejects "+1" for unsigned fields
				}
				if i, err := strconv.ParseInt(t, 10, 64); err == nil {
					return i
				}
				if u, err := strconv.ParseUint(t, 10, 64); err == nil {
					return u
				}
			case "number":
				if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
					if i, err := strconv.ParseInt(t, 10, 64); err == nil {
						return i
					}
					return f
				}
			case "boolean":
				if b, err := strconv.ParseBool(t); err == nil {
					return b
				}
			case "array", "object":
				open := map[string]string{"array": "[", "object": "{"}[want]
				if strings.HasPrefix(t, open) {
					if j, err := codec.ParseJSONText(t); err == nil {
						return s.coerce(dropNulls(j), node, depth+1)
					}
				}
			}
		}
		return x
	case bool, int64, uint64, float64, json.Number:
		if len(types) == 1 && types[0] == "string" {
			if text, ok := codec.LeafText(x); ok {
				return text
			}
		}
		return x
	case map[string]any:
		if hasType(types, "array") && !hasType(types, "object") {
			if seq, ok := codec.IndexMapping(x); ok {
				return s.coerce(seq, node, depth+1)
			}
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = s.coerce(e, s.propSchema(node, k), depth+1)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.coerce(e, s.itemSchema(node, i), depth+1)
		}
		return out
	}
	return v
}

// dropNulls removes null members from the objects in v: a null counts as
// an absent key, as in Bind.
func dropNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil {
				delete(v, k)
				continue
			}
			v[k] = dropNulls(e)
		}
	case []any:
		for i, e := range v {
			v[i] = dropNulls(e)
		}
	}
	return v
}
