// Package schema validates configuration structs and reports failures by
// config path.
//
// Rules are go-playground/validator `validate:"..."` tags. Paths are built
// from config keys (codec.FieldKey: the koanf tag name, else the lower-case
// field name), never from Go names:
//
//	db.port             nested struct field
//	servers[0].host     slice or array element (dive)
//	labels[env]         map value or key (dive, keys), the key rendered with %v
//
// Embedded and `koanf:",squash"` structs add no path element. An exported
// field tagged `koanf:"-"` is not configuration; if it carries rules, its
// failures are reported under its Go field name.
//
// A value of a codec.Mapper type (bigmap.Map) is a map of string keys
// everywhere in this package: its rules apply to the Go map of its entries,
// nil when it has none (as a Go map is when its key is absent), its entries
// are paths "tenants[acme].port", and its values are described, searched
// for secrets and masked as a Go map's.
//
// A field tagged `secret:"true"`, and every field below it, has its value
// masked as "******" in errors; so has a value that holds such a field
// anywhere beneath it (a struct, a slice of structs, a map of them, a
// pointer to one), when a rule on that container fails.
package schema

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"github.com/strataconf/strata/codec"
)

// Masked replaces the value of a secret field wherever it would be shown.
const Masked = "******"

// secretMark prefixes the validator name of a secret field, so that a
// failure's namespace tells whether it lies at or under a secret field. It is
// removed before a path is reported.
const secretMark = "\x00"

// validate is the validator of the types that hold no codec.Mapper; see
// validatorFor.
var validate = newValidator()

// validators holds the validator of each root struct type Validate and
// ValidateAt have met (reflect.Type → *validator.Validate).
var validators sync.Map

// validatorFor returns the validator for struct type t: the shared one,
// or, when a codec.Mapper type can be reached from t (through fields,
// pointers, slices, arrays, maps and the values of Mappers), one built
// once for t that reads every such Mapper as the Go map of its entries
// (mapperPlain). The validator only knows the types registered before
// it runs, so a Mapper held in an interface is not one of them.
func validatorFor(t reflect.Type) *validator.Validate {
	if v, ok := validators.Load(t); ok {
		return v.(*validator.Validate)
	}
	v := validate
	if mappers := mapperTypes(t); len(mappers) > 0 {
		v = newValidator()
		for _, m := range mappers {
			v.RegisterCustomTypeFunc(mapperPlain(m), reflect.Zero(m).Interface())
		}
	}
	actual, _ := validators.LoadOrStore(t, v)
	return actual.(*validator.Validate)
}

// mapperTypes returns the codec.Mapper types that values of type t can
// hold, t included.
func mapperTypes(t reflect.Type) []reflect.Type {
	var out []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		if elem, ok := codec.MapperOf(t); ok {
			out = append(out, t)
			walk(elem)
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(t)
	return out
}

// mapperPlain returns the validator's custom type func of the
// codec.Mapper type t: a value becomes the Go map of its entries
// (MapperPlain), or a nil map when it has none, as a Go map bound from
// the same entries would be: an absent key leaves both empty, and
// "required" fails on both.
func mapperPlain(t reflect.Type) validator.CustomTypeFunc {
	elem, _ := codec.MapperOf(t)
	empty := reflect.Zero(plainMapType(elem)).Interface()
	return func(v reflect.Value) any {
		m := v.Interface().(codec.Mapper)
		if m.MapperLen() == 0 {
			return empty
		}
		return m.MapperPlain()
	}
}

// plainMapType is the Go map type of a codec.Mapper of values of type
// elem: map[string]elem.
func plainMapType(elem reflect.Type) reflect.Type {
	return reflect.MapOf(reflect.TypeFor[string](), elem)
}

// isMapper reports whether t is a codec.Mapper type.
func isMapper(t reflect.Type) bool {
	_, ok := codec.MapperOf(t)
	return ok
}

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithTagNameFuncBlankOmit())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		key, inline, ok := codec.FieldKey(f)
		switch {
		case !ok:
			key = f.Name
		case inline:
			key = "" // validator adds no namespace element for a blank name
		}
		if codec.IsSecretField(f) {
			key = secretMark + key
		}
		return key
	})
	return v
}

// ValidationError lists every field of a configuration that failed its rules.
type ValidationError struct {
	Fields []FieldError // sorted by Path
}

// Error returns all failures on one line, e.g.
// `invalid config: db.port: failed max=65535 (value 70000); name: failed required (value "")`.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid config: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// FieldError is one failed rule of one field.
type FieldError struct {
	Path   string // config path: "db.port", "servers[0].host", "labels[env]"
	Rule   string // validator tag, e.g. "max", "required", "oneof"
	Param  string // the rule's parameter, e.g. "65535"; empty if none
	Value  string // the rejected value rendered with %v, or Masked when Secret
	Secret bool   // the value is or holds a secret: the field, a struct field above it or one inside its value is tagged `secret:"true"` (Check: the path is secret, holds one, or is one the schema does not allow)
}

// String returns e.g. "db.port: failed max=65535 (value 70000)". The value
// is quoted when it is empty or holds spaces, quotes, ';' or unprintable
// characters, so the text stays on one line and unambiguous; a value longer
// than MaxShown bytes (a map of 10,000 entries that fails max=40) is cut
// there and says how long it was.
func (e FieldError) String() string {
	rule := e.Rule
	if e.Param != "" {
		rule += "=" + e.Param
	}
	value := e.Value
	if len(value) > MaxShown && !e.Secret {
		cut := MaxShown
		for cut > 0 && !utf8.RuneStart(value[cut]) {
			cut--
		}
		return fmt.Sprintf("%s: failed %s (value %s... %d bytes in all)", e.Path, rule, strconv.Quote(value[:cut]), len(value))
	}
	if e.Secret {
		value = Masked
	} else if needsQuote(value) {
		value = strconv.Quote(value)
	}
	return fmt.Sprintf("%s: failed %s (value %s)", e.Path, rule, value)
}

// MaxShown is the length from which FieldError.String cuts a value.
const MaxShown = 200

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == ' ' || r == '"' || r == ';' || !strconv.IsPrint(r) {
			return true
		}
	}
	return false
}

// Validate checks v (a struct or pointer to struct) against its
// `validate:"..."` tags. It returns nil or a *ValidationError listing every
// failing field. A nil pointer, a non-struct (a codec.Mapper is a map, not
// a struct), or a malformed rule gives a plain error.
func Validate(v any) (err error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return fmt.Errorf("validate: nil %s", rv.Type())
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || isMapper(rv.Type()) {
		return fmt.Errorf("validate: %T is not a struct", v)
	}
	defer func() {
		// validator panics on malformed tags (unknown rule, dive on a scalar).
		if r := recover(); r != nil {
			err = fmt.Errorf("validate %s: %v", rv.Type(), r)
		}
	}()
	verr := validatorFor(rv.Type()).Struct(rv.Interface())
	var fes validator.ValidationErrors
	if !errors.As(verr, &fes) {
		if verr != nil {
			return fmt.Errorf("validate %s: %w", rv.Type(), verr)
		}
		return nil
	}
	top := rv.Type().Name() // validator's first namespace element
	out := &ValidationError{Fields: make([]FieldError, 0, len(fes))}
	for _, fe := range fes {
		ns := fe.Namespace()
		secret := strings.Contains(ns, secretMark)
		// an inline secret struct is named secretMark alone: drop its element
		path := strings.ReplaceAll(strings.ReplaceAll(ns, secretMark+".", ""), secretMark, "")
		if top != "" {
			path = strings.TrimPrefix(strings.TrimPrefix(path, top), ".")
		}
		// A rule on a container (min=2 on a slice of structs, nefield on
		// a pointer to one) fails with the whole value, secrets and all:
		// such a value is not shown either.
		secret = secret || holdsSecret(reflect.ValueOf(fe.Value()))
		value := Masked
		if !secret {
			value = fmt.Sprintf("%v", fe.Value())
		}
		out.Fields = append(out.Fields, FieldError{
			Path:   path,
			Rule:   fe.Tag(),
			Param:  fe.Param(),
			Value:  value,
			Secret: secret,
		})
	}
	sort.SliceStable(out.Fields, func(i, j int) bool { return out.Fields[i].Path < out.Fields[j].Path })
	return out
}

// holdsSecret reports whether v holds a field tagged `secret:"true"`
// anywhere beneath it: through struct fields (exported or not, as %v shows
// both), pointers, the elements of slices and arrays, the keys and values
// of maps, the values of codec.Mapper maps, and the dynamic values of
// interfaces. A container whose type can hold one counts even when empty.
// A value too large to search, or a Mapper that cannot be read (reached
// through an unexported field), counts too.
func holdsSecret(v reflect.Value) bool {
	budget := 100000
	var walk func(v reflect.Value, depth int) bool
	walk = func(v reflect.Value, depth int) bool {
		if !v.IsValid() {
			return false
		}
		budget--
		if budget < 0 || depth > 64 {
			return true
		}
		k := typeSecrets(v.Type())
		if k.holds {
			return true
		}
		if !k.dynamic {
			return false
		}
		if isMapper(v.Type()) {
			if !v.CanInterface() {
				return true
			}
			for _, e := range v.Interface().(codec.Mapper).MapperAll() {
				if walk(e, depth+1) {
					return true
				}
			}
			return false
		}
		switch v.Kind() {
		case reflect.Interface, reflect.Pointer:
			return !v.IsNil() && walk(v.Elem(), depth+1)
		case reflect.Struct:
			for i := range v.NumField() {
				if walk(v.Field(i), depth+1) {
					return true
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				if walk(v.Index(i), depth+1) {
					return true
				}
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				if walk(it.Key(), depth+1) || walk(it.Value(), depth+1) {
					return true
				}
			}
		}
		return false
	}
	return walk(v, 0)
}

// secretKind is what a type says of the secrets its values hold: holds,
// a field tagged secret lies in the type; dynamic, an interface lies in
// it, whose values may hold one.
type secretKind struct{ holds, dynamic bool }

var secretKinds sync.Map // reflect.Type → secretKind

func typeSecrets(t reflect.Type) secretKind {
	if k, ok := secretKinds.Load(t); ok {
		return k.(secretKind)
	}
	k := typeSecretsOf(t, map[reflect.Type]bool{})
	secretKinds.Store(t, k)
	return k
}

func typeSecretsOf(t reflect.Type, seen map[reflect.Type]bool) (k secretKind) {
	if seen[t] {
		return k // a recursive type: its other branches decide
	}
	seen[t] = true
	defer delete(seen, t)
	if elem, ok := codec.MapperOf(t); ok {
		return typeSecretsOf(elem, seen)
	}
	switch t.Kind() {
	case reflect.Interface:
		k.dynamic = true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		k = typeSecretsOf(t.Elem(), seen)
	case reflect.Map:
		kk, vk := typeSecretsOf(t.Key(), seen), typeSecretsOf(t.Elem(), seen)
		k = secretKind{holds: kk.holds || vk.holds, dynamic: kk.dynamic || vk.dynamic}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if codec.IsSecretField(f) {
				return secretKind{holds: true}
			}
			fk := typeSecretsOf(f.Type, seen)
			if fk.holds {
				return fk
			}
			k.dynamic = k.dynamic || fk.dynamic
		}
	}
	return k
}

// HoldsSecret reports whether the value at path is secret (IsSecret) or
// holds a secret beneath it, so that showing it whole would show the
// secret: "db" holds "db.password", "creds" and "creds[0]" hold
// "creds.*.token", and the root "" holds every secret path.
func HoldsSecret(paths []string, path string) bool {
	if IsSecret(paths, path) {
		return true
	}
	segs := pathSegments(path)
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, above := matchSegments(strings.Split(p, "."), segs); above {
			return true
		}
	}
	return false
}

// SecretPaths returns the config paths of fields tagged `secret:"true"` in t
// (a struct type or pointer to one), recursing into nested structs, in field
// order; e.g. ["db.password", "token"]. Used to mask values in logs and
// output. Fields inside the elements of maps, slices and arrays are listed
// with the segment Wildcard: "users.*.password" (see IsSecret). A non-struct
// t gives nil.
func SecretPaths(t reflect.Type) []string {
	var paths []string
	secretPaths(t, "", false, map[reflect.Type]bool{}, &paths)
	return paths
}

func secretPaths(t reflect.Type, prefix string, secret bool, seen map[reflect.Type]bool, paths *[]string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || isMapper(t) || seen[t] {
		return
	}
	seen[t] = true // guards recursive types along the current branch
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, inline, ok := codec.FieldKey(f)
		if !ok {
			continue
		}
		s := secret || codec.IsSecretField(f)
		if inline {
			secretPaths(f.Type, prefix, s, seen, paths)
			continue
		}
		if s {
			*paths = append(*paths, prefix+key)
			continue
		}
		elemSecretPaths(f.Type, prefix+key+".", seen, paths)
	}
}

// elemSecretPaths appends the secret paths of a value of type t whose
// path is prefix (ending in "."): a struct's fields, and through the
// segment Wildcard the fields of the elements of maps (codec.Mapper maps
// too), slices and arrays.
func elemSecretPaths(t reflect.Type, prefix string, seen map[reflect.Type]bool, paths *[]string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if elem, ok := codec.MapperOf(t); ok {
		elemSecretPaths(elem, prefix+Wildcard+".", seen, paths)
		return
	}
	switch {
	case t == nil:
	case t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		elemSecretPaths(t.Elem(), prefix+Wildcard+".", seen, paths)
	default:
		secretPaths(t, prefix, false, seen, paths)
	}
}

// IsSecret reports whether path (dotted, e.g. "db.password" or
// "db.password.x") is, or lies under, one of paths. An element suffix such as
// "tokens[0]" lies under "tokens".
//
// A segment Wildcard ("*") of a secret path matches any one map key or list
// index: "users.alice.password" and "users[alice].password" lie under
// "users.*.password". A path above a secret path that has a Wildcard
// ("users", "users.alice" for "users.*.password") is secret too: its value
// is a map or list (often held as one leaf of JSON text) that holds those
// secrets. A path above a secret path without a Wildcard ("db" for
// "db.password") is not: its secrets are masked one by one.
func IsSecret(paths []string, path string) bool {
	var segs []string
	for _, p := range paths {
		if hasWildcard(p) {
			if path == "" {
				continue
			}
			if segs == nil {
				segs = pathSegments(path)
			}
			if at, above := matchSegments(strings.Split(p, "."), segs); at || above {
				return true
			}
			continue
		}
		if strings.HasPrefix(path, p) {
			if rest := path[len(p):]; rest == "" || rest[0] == '.' || rest[0] == '[' {
				return true
			}
		}
	}
	return false
}
