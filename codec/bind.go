package codec

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Bind decodes tree onto dst, a non-nil pointer to a struct. Leaf values in
// tree are either strings (text written by `etcdctl put` or read from an
// environment variable) or typed values from a parsed document (string,
// bool, int, int64, uint64, float64, []any, map[string]any, time.Time from
// TOML or YAML) or Go values of the exact field type (from ToMap of struct
// defaults). It returns the paths in tree that match no field ("unused",
// sorted, dotted like "db.extra"), and an error that is a *BindError when
// one or more fields could not be set.
//
// A key matches the field whose config key (see FieldKey) equals it; failing
// that, one that equals it ignoring case (when several keys do, the first in
// sorted order; the others are unused). Paths in errors and in unused are
// spelled as the tree spells them. A nil value leaves its field unchanged.
// Text for numbers, bools and durations may have surrounding white space.
//
// Slices are bound from []any, from JSON text "[...]", or from a mapping
// with keys exactly "0".."n-1"; a bound slice replaces the old one. Maps are
// bound from a mapping or JSON text "{...}" and merged into the old map; so
// are Mappers, with one MapperWith for all the entries of the mapping.
//
// Bind is all or nothing: when it returns an error, *dst is left as it was.
// It never writes through pointers, maps or slices that *dst held before:
// those are copied.
func Bind(tree map[string]any, dst any) (unused []string, err error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("codec: Bind needs a non-nil pointer to a struct, got %T", dst)
	}
	tmp := reflect.New(rv.Elem().Type()).Elem()
	tmp.Set(rv.Elem())
	var d decoder
	d.bindStruct(at{}, tree, tmp)
	sort.Strings(d.unused)
	if len(d.errs) > 0 {
		return d.unused, d.bindError()
	}
	rv.Elem().Set(tmp)
	return d.unused, nil
}

// BindError lists every field Bind could not set.
type BindError struct {
	Fields []*FieldError // sorted by Path
}

// Error lists the failures, as in
// `cannot bind port: cannot parse "abc" as int; db.timeout: ...`.
func (e *BindError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "cannot bind " + strings.Join(parts, "; ")
}

// Unwrap returns the field errors, for errors.As and errors.Is.
func (e *BindError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = f
	}
	return errs
}

// FieldError is one value that could not be converted to its field's type.
type FieldError struct {
	Path  string // dotted path in the tree, as "db.port" or "servers.0.host"
	Value any    // the value at Path; nil for a field tagged `secret:"true"`
	Err   error  // the reason, as `cannot parse "abc" as int`
}

// Error returns the path and the reason, as `port: cannot parse "abc" as int`.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// at is where in the tree a value is being decoded. The dotted path is
// joined only when it is needed (an error, an unused key), not for every
// value decoded.
type at struct {
	parent string // dotted path of the enclosing value; "" at the top
	key    string // the value's key within it; "" at the top
	secret bool   // under a field tagged secret:"true": keep the value out of errors
}

// path returns the dotted path, as "db.port".
func (a at) path() string {
	if a.parent == "" {
		return a.key
	}
	return a.parent + "." + a.key
}

func (a at) child(key string) at {
	return at{parent: a.path(), key: key, secret: a.secret}
}

// joined returns a with its path joined once, so that the children of a
// mapping share it rather than each joining it again.
func (a at) joined() at {
	return at{key: a.path(), secret: a.secret}
}

// decoder collects what goes wrong while decoding a tree.
type decoder struct {
	errs   []*FieldError
	unused []string
}

func (d *decoder) fail(a at, v any, err error) {
	if a.secret {
		v = nil
		err = errors.New("invalid value (hidden: secret field)")
	}
	d.errs = append(d.errs, &FieldError{Path: a.path(), Value: v, Err: err})
}

func (d *decoder) failf(a at, v any, format string, args ...any) {
	d.fail(a, v, fmt.Errorf(format, args...))
}

func (d *decoder) bindError() *BindError {
	// By path, and by reason for one path (map entries are decoded in no
	// particular order, and a key holding a dot can name the path of
	// another key's field).
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Err.Error() < b.Err.Error()
	})
	return &BindError{Fields: d.errs}
}

// bindStruct decodes the entries of m onto the fields of sv, an addressable
// struct, and records the keys that match no field.
func (d *decoder) bindStruct(a at, m map[string]any, sv reflect.Value) {
	sf := fieldsOf(sv.Type())
	a = a.joined()
	exact := true // every key of m is some field's key
	for k := range m {
		if _, ok := sf.byKey[k]; !ok {
			exact = false
			break
		}
	}
	if exact {
		// Each key has its field, and no field is left to take a key
		// equal but for case.
		for i := range sf.list {
			f := &sf.list[i]
			if v, ok := m[f.Key]; ok {
				d.bindField(a, f, f.Key, v, sv)
			}
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	used := make(map[string]bool, len(m))
	for i := range sf.list {
		f := &sf.list[i]
		key, ok := f.Key, false
		if _, ok = m[key]; !ok {
			// Fall back to a key equal but for case that no field claims
			// exactly and no earlier field took.
			for _, k := range keys {
				if _, claimed := sf.byKey[k]; !claimed && !used[k] && strings.EqualFold(k, f.Key) {
					key, ok = k, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		used[key] = true
		d.bindField(a, f, key, m[key], sv)
	}
	for _, k := range keys {
		if !used[k] {
			d.unused = append(d.unused, a.child(k).path())
		}
	}
}

// bindField decodes v, found at key in the mapping at a, onto field f of
// sv.
func (d *decoder) bindField(a at, f *Field, key string, v any, sv reflect.Value) {
	fa := a.child(key)
	fa.secret = fa.secret || f.Secret
	if IsNil(v) {
		return
	}
	fv, err := fieldForWrite(sv, f.Index)
	if err != nil {
		d.fail(fa, v, err)
		return
	}
	d.decode(fa, v, fv)
}

// fieldForWrite returns the field of sv at index, allocating the inline
// pointers on the way. A pointer sv already held is replaced by a copy of
// its target, so the old target is never written.
func fieldForWrite(sv reflect.Value, index []int) (reflect.Value, error) {
	v := sv
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.CanSet() {
				p := reflect.New(v.Type().Elem())
				if !v.IsNil() {
					p.Elem().Set(v.Elem())
				}
				v.Set(p)
			} else if v.IsNil() {
				return reflect.Value{}, fmt.Errorf("cannot set embedded pointer to unexported struct %s", v.Type().Elem())
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	if !v.CanSet() {
		return reflect.Value{}, errors.New("field cannot be set")
	}
	return v, nil
}

// fieldForRead returns the field of sv at index; ok is false when an inline
// pointer on the way is nil.
func fieldForRead(sv reflect.Value, index []int) (reflect.Value, bool) {
	v := sv
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// IsNil reports whether v is nil, or a nil pointer, map, slice, interface,
// func or chan. Bind treats such a value in a tree as an absent key: it
// leaves the field unchanged. A Mapper is never nil: its zero value is an
// empty map.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	return isNilValue(reflect.ValueOf(v))
}
