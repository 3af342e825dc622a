package schema

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strataconf/strata/codec"
)

// DraftURL is the "$schema" of the documents Generate writes: JSON Schema
// draft 2020-12.
const DraftURL = "https://json-schema.org/draft/2020-12/schema"

// Vendor keywords of the generated schemas. Validators other than Compile
// ignore them.
const (
	// KeywordSecret marks a property tagged `secret:"true"`; its value, and
	// every value below it, is shown as Masked. Generate also sets the
	// standard "writeOnly".
	KeywordSecret = "x-secret"
	// KeywordValidate holds the raw `validate:"..."` tag of a field whose
	// rules the schema does not express exactly (a rule with no JSON Schema
	// equivalent, or one only approximated), so that nothing is silently
	// lost. Check does not evaluate it.
	KeywordValidate = "x-validate"
)

// DurationPattern is the "pattern" of a time.Duration field: the text
// time.ParseDuration accepts, e.g. "15s", "1h30m", "-1.5ms" or "0".
const DurationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

const durationDescription = `a Go duration: a sequence of decimal numbers with a unit (ns, us, ms, s, m, h), e.g. "15s", "1h30m", or "0"`

// Patterns of the validator rules mapped to "pattern": the regular
// expressions go-playground/validator itself uses.
const (
	patternAlpha        = `^[a-zA-Z]+$`
	patternAlphanum     = `^[a-zA-Z0-9]+$`
	patternNumeric      = `^[-+]?[0-9]+(?:\.[0-9]+)?$`
	patternHostname952  = `^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`
	patternHostname1123 = `^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`
	patternFQDN         = `^([a-zA-Z0-9]{1}[a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]{1}[a-zA-Z0-9-]{0,62})*?(\.[a-zA-Z]{1}[a-zA-Z0-9-]{0,62})\.?$`
	patternIntegerKey   = `^[-+]?[0-9]+$`
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	timeType            = reflect.TypeFor[time.Time]()
	ipType              = reflect.TypeFor[net.IP]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// obj is one JSON Schema object under construction.
type obj = map[string]any

// Generate returns the JSON Schema (draft 2020-12) of t, a struct type or
// pointer to one, as indented JSON.
//
// Properties are config keys (codec.FieldKey); inline structs are flattened
// into their parent and fields that are not configuration are left out.
// Structs reject unknown keys ("additionalProperties": false). Go types map
// to "type" as codec.Bind reads them: nested structs to objects, map[K]V
// and codec.Mapper maps of V to objects whose "additionalProperties" is the
// schema of V, slices and arrays to arrays, pointers to their element,
// time.Duration to a string matching DurationPattern, time.Time to a
// "date-time" string, net.IP to an "ipv4" or "ipv6" string, other
// encoding.TextUnmarshaler types to strings and interfaces to anything. A recursive struct type is written once under
// "$defs" and referred to with "$ref" (the root type as "#").
//
// `validate:"..."` rules become JSON Schema keywords where an equivalent
// exists:
//
//	required               "required" in the parent; and for a string
//	                       "minLength": 1, a number "not": {"const": 0}, a
//	                       bool "const": true, a codec.Mapper (empty, it
//	                       fails) "minProperties": 1 (not through a pointer)
//	min, gte / max, lte    "minimum" / "maximum" for numbers, "minLength" /
//	                       "maxLength" for strings, "minItems" / "maxItems"
//	                       for slices, "minProperties" / "maxProperties" for
//	                       maps
//	gt / lt                "exclusiveMinimum" / "exclusiveMaximum", or the
//	                       length bound plus or minus one
//	len                    both bounds
//	eq / ne                "const" / "not": {"const"} (eq on a slice or map:
//	                       both length bounds)
//	oneof                  "enum", typed (integers for integer fields)
//	email, uuid, ipv4, ipv6  "format" of the same name
//	url, uri               "format": "uri"
//	ip                     "anyOf" of "format" ipv4 and ipv6
//	hostname, hostname_rfc1123, fqdn  "format": "hostname" and the
//	                       validator's own regular expression as "pattern"
//	alpha, alphanum, numeric  "pattern" (the validator's)
//	startswith, endswith, contains  "pattern" of the quoted text
//	omitempty              on a plain scalar: the rules move into "else" of
//	                       "if": {"const": zero}
//	dive, keys ... endkeys rules for "items" / "additionalProperties" and
//	                       "propertyNames"
//
// Several patterns or formats on one field are combined with "allOf". A
// field whose zero value fails its rules (a key that is absent binds to the
// zero value) is listed in "required", and so is a non-pointer struct field
// with a required property. Rules after "dive" apply to the items (or map values, and keys
// between "keys" and "endkeys"); the fields of slice or map elements carry
// their rules only when the container is tagged "dive", as in Validate. A
// field with a rule that is not expressed exactly keeps its raw tag in
// KeywordValidate. A field tagged `secret:"true"` is marked with
// KeywordSecret and "writeOnly".
//
// The output is deterministic (object keys sorted), so it can be compared
// with a golden file. Channels, functions and complex numbers are errors.
func Generate(t reflect.Type) ([]byte, error) {
	if t == nil {
		return nil, errors.New("schema: Generate needs a struct type, got nil")
	}
	st := t
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct || isTextType(st) || isMapper(st) {
		return nil, fmt.Errorf("schema: Generate needs a struct type, got %s", t)
	}
	// Pass 1 finds the recursive struct types; pass 2 emits them once in
	// "$defs" and refers to them with "$ref".
	probe := newGenerator(st, nil)
	if _, err := probe.structBody(st, true, ""); err != nil {
		return nil, err
	}
	g := newGenerator(st, probe.found)
	root, err := g.structBody(st, true, "")
	if err != nil {
		return nil, err
	}
	if len(g.defs) > 0 {
		root["$defs"] = g.defs
	}
	root["$schema"] = DraftURL
	if st.Name() != "" {
		root["title"] = st.Name()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("schema: encode schema of %s: %w", st, err)
	}
	return buf.Bytes(), nil
}

type generator struct {
	root      reflect.Type
	visiting  map[reflect.Type]bool // struct types on the current branch
	found     map[reflect.Type]bool // types met again on their own branch
	recursive map[reflect.Type]bool // types to emit in $defs
	defs      obj                   // "$defs"
	defNames  map[defKey]string
}

type defKey struct {
	t     reflect.Type
	rules bool
}

func newGenerator(root reflect.Type, recursive map[reflect.Type]bool) *generator {
	return &generator{
		root:      root,
		visiting:  map[reflect.Type]bool{root: true},
		found:     map[reflect.Type]bool{},
		recursive: recursive,
		defs:      obj{},
		defNames:  map[defKey]string{},
	}
}

// structSchema returns the object schema of struct type t, or a "$ref" to
// it for a recursive type. rules is false when Validate would not look
// inside t (an element of a container not tagged "dive"): then only the
// shape is generated.
func (g *generator) structSchema(t reflect.Type, rules bool, path string) (obj, error) {
	if g.recursive[t] {
		if t == g.root && rules {
			return obj{"$ref": "#"}, nil
		}
		key := defKey{t, rules}
		name, ok := g.defNames[key]
		if !ok {
			name = t.Name()
			if name == "" {
				name = "struct"
			}
			if !rules {
				name += ".shape"
			}
			for base, i := name, 2; g.defs[name] != nil; i++ {
				name = base + "." + strconv.Itoa(i)
			}
			g.defNames[key] = name
			g.defs[name] = obj{} // taken while its body is generated
			body, err := g.structBody(t, rules, path)
			if err != nil {
				return nil, err
			}
			g.defs[name] = body
		}
		return obj{"$ref": "#/$defs/" + name}, nil
	}
	if g.visiting[t] {
		g.found[t] = true // pass 1: recursive
		return obj{"type": "object"}, nil
	}
	g.visiting[t] = true
	defer delete(g.visiting, t)
	return g.structBody(t, rules, path)
}

// structBody returns the object schema of struct type t.
func (g *generator) structBody(t reflect.Type, rules bool, path string) (obj, error) {
	props := obj{}
	var required []string
	for _, f := range codec.Fields(t) {
		fpath := joinPath(path, f.Key)
		node, req, err := g.fieldSchema(f, rules, fpath)
		if err != nil {
			return nil, err
		}
		props[f.Key] = node
		if req && !f.ViaPointer {
			required = append(required, f.Key)
		}
	}
	s := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

// fieldSchema returns the schema of one field and whether its key must be
// present.
func (g *generator) fieldSchema(f codec.Field, rules bool, path string) (obj, bool, error) {
	raw := ""
	if rules {
		raw = f.Struct.Tag.Get("validate")
	}
	if raw == "-" { // validator skips the field and everything below it
		raw, rules = "", false
	}
	spec := parseTag(raw)
	node, exact, err := g.typeSchema(f.Struct.Type, spec, rules, path)
	if err != nil {
		return nil, false, err
	}
	required := false
	if rules {
		required = zeroFails(f.Struct.Type, spec)
		if !required && f.Struct.Type.Kind() == reflect.Struct && !isTextType(f.Struct.Type) && !isMapper(f.Struct.Type) {
			// an absent struct binds to its zero value, which Validate
			// checks field by field
			required = len(g.requiredOf(node)) > 0
		}
	}
	if !exact {
		node[KeywordValidate] = raw
	}
	if f.Secret {
		node[KeywordSecret] = true
		node["writeOnly"] = true
	}
	return node, required, nil
}

// requiredOf returns the "required" list of a struct schema, through its
// "$ref" for a recursive type.
func (g *generator) requiredOf(node obj) []string {
	if ref, ok := node["$ref"].(string); ok {
		def, _ := g.defs[strings.TrimPrefix(ref, "#/$defs/")].(obj)
		node = def
	}
	r, _ := node["required"].([]string)
	return r
}

// category is how a Go type is represented in a document.
type category int

const (
	catAny category = iota
	catString
	catInt
	catUint
	catFloat
	catBool
	catSlice
	catArray
	catMap
	catStruct
	catDuration
	catText
)

func (c category) numeric() bool { return c == catInt || c == catUint || c == catFloat }

func isTextType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// typeSchema returns the schema of a value of type t checked with the rules
// of spec (nil: none), and whether spec is expressed exactly.
func (g *generator) typeSchema(t reflect.Type, spec *tagSpec, rules bool, path string) (obj, bool, error) {
	ptr := false
	for t.Kind() == reflect.Pointer {
		t, ptr = t.Elem(), true
	}
	node, cat, exact, err := g.baseSchema(t, spec, rules, path)
	if err != nil || spec == nil {
		return node, exact, err
	}
	var (
		c         = obj{} // constraints from the rules
		patterns  []string
		formats   []string
		nots      []any
		omitempty bool
	)
	unsupported := func() { exact = false }
	for _, r := range spec.rules {
		if r.or {
			unsupported()
			continue
		}
		switch r.name {
		case "omitempty":
			omitempty = true
		case "required":
			switch {
			case !ptr && isMapper(t):
				// empty: nil to the validator (mapperPlain)
				setBound(c, "minProperties", int64(1), true)
			case ptr, cat == catSlice, cat == catMap, cat == catAny:
				// non-nil: presence, handled by the parent's "required"
			case cat == catString:
				setBound(c, "minLength", int64(1), true)
			case cat.numeric():
				nots = append(nots, obj{"const": 0})
			case cat == catBool:
				c["const"] = true
			case cat == catStruct:
				setBound(c, "minProperties", int64(1), true)
				unsupported() // a present but all-zero struct passes
			default: // durations, text types, arrays: non-zero
				unsupported()
			}
		case "min", "gte", "gt", "max", "lte", "lt":
			if !applyBound(c, cat, r) {
				unsupported()
			}
		case "len":
			if !applyBound(c, cat, rule{name: "min", param: r.param}) || !applyBound(c, cat, rule{name: "max", param: r.param}) {
				unsupported()
			}
		case "eq":
			switch {
			case cat == catSlice || cat == catMap:
				if !applyBound(c, cat, rule{name: "min", param: r.param}) || !applyBound(c, cat, rule{name: "max", param: r.param}) {
					unsupported()
				}
			default:
				if v, ok := typedParam(cat, r.param); ok {
					c["const"] = v
				} else {
					unsupported()
				}
			}
		case "ne":
			if v, ok := typedParam(cat, r.param); ok {
				nots = append(nots, obj{"const": v})
			} else {
				unsupported()
			}
		case "oneof":
			var enum []any
			for _, p := range oneOfParams(r.param) {
				v, ok := typedParam(cat, p)
				if !ok || cat == catFloat || cat == catBool {
					enum = nil
					break
				}
				enum = append(enum, v)
			}
			if enum == nil {
				unsupported()
			} else {
				c["enum"] = enum
			}
		case "email", "url", "uri", "ipv4", "ipv6", "uuid", "ip":
			if cat != catString {
				unsupported()
				continue
			}
			switch r.name {
			case "url", "uri":
				formats = append(formats, "uri")
			case "ip":
				c["anyOf"] = ipAnyOf()
			default:
				formats = append(formats, r.name)
			}
		case "hostname", "hostname_rfc1123", "fqdn":
			if cat != catString {
				unsupported()
				continue
			}
			formats = append(formats, "hostname")
			patterns = append(patterns, map[string]string{
				"hostname":         patternHostname952,
				"hostname_rfc1123": patternHostname1123,
				"fqdn":             patternFQDN,
			}[r.name])
		case "alpha", "alphanum", "numeric":
			switch {
			case cat == catString:
				patterns = append(patterns, map[string]string{
					"alpha": patternAlpha, "alphanum": patternAlphanum, "numeric": patternNumeric,
				}[r.name])
			case r.name == "numeric" && cat.numeric():
				// always true for numbers
			default:
				unsupported()
			}
		case "startswith", "endswith", "contains":
			if cat != catString || r.param == "" {
				unsupported()
				continue
			}
			q := regexp.QuoteMeta(r.param)
			switch r.name {
			case "startswith":
				q = "^" + q
			case "endswith":
				q += "$"
			}
			patterns = append(patterns, q)
		default:
			unsupported()
		}
	}

	var allOf []any
	for i, p := range patterns {
		if i == 0 {
			c["pattern"] = p
		} else {
			allOf = append(allOf, obj{"pattern": p})
		}
	}
	for i, f := range dedupe(formats) {
		if i == 0 {
			c["format"] = f
		} else {
			allOf = append(allOf, obj{"format": f})
		}
	}
	if len(allOf) > 0 {
		c["allOf"] = allOf
	}
	switch len(nots) {
	case 0:
	case 1:
		c["not"] = nots[0]
	default:
		c["not"] = obj{"anyOf": nots}
	}

	if len(c) == 0 {
		return node, exact, nil
	}
	// omitempty on a plain scalar: its zero value skips every rule. (On a
	// pointer, slice or map it skips only nil, i.e. an absent key.)
	if omitempty && !ptr {
		if zero, ok := scalarZero(cat); ok {
			node["if"] = obj{"const": zero}
			node["else"] = c
			return node, exact, nil
		}
	}
	for k, v := range c {
		switch k {
		case "minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties":
			setBound(node, k, v, true)
		case "maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties":
			setBound(node, k, v, false)
		case "anyOf":
			if _, ok := node["anyOf"]; ok {
				addAllOf(node, obj{"anyOf": v})
				continue
			}
			node[k] = v
		default:
			node[k] = v
		}
	}
	return node, exact, nil
}

// baseSchema returns the schema of type t (not a pointer) before rules:
// its JSON type, bounds of the Go kind, and the schemas of its elements.
func (g *generator) baseSchema(t reflect.Type, spec *tagSpec, rules bool, path string) (obj, category, bool, error) {
	switch {
	case t.Kind() == reflect.Interface:
		return obj{}, catAny, true, nil
	case isTextType(t):
		n := obj{"type": "string"}
		switch t {
		case timeType:
			n["format"] = "date-time"
		case ipType:
			n["anyOf"] = ipAnyOf()
		}
		return n, catText, true, nil
	case t == durationType:
		return obj{"type": "string", "pattern": DurationPattern, "description": durationDescription}, catDuration, true, nil
	case isMapper(t):
		elem, _ := codec.MapperOf(t)
		return g.mapSchema(reflect.TypeFor[string](), elem, spec, rules, path)
	}
	switch t.Kind() {
	case reflect.String:
		return obj{"type": "string"}, catString, true, nil
	case reflect.Bool:
		return obj{"type": "boolean"}, catBool, true, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := obj{"type": "integer"}
		if bits := t.Bits(); bits < 64 {
			n["minimum"] = int64(-1) << (bits - 1)
			n["maximum"] = int64(1)<<(bits-1) - 1
		}
		return n, catInt, true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := obj{"type": "integer", "minimum": int64(0)}
		if bits := t.Bits(); bits < 64 {
			n["maximum"] = uint64(1)<<bits - 1
		}
		return n, catUint, true, nil
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}, catFloat, true, nil
	case reflect.Slice, reflect.Array:
		elem, exact, err := g.elemSchema(t.Elem(), spec, rules, path+".*")
		if err != nil {
			return nil, 0, false, err
		}
		n := obj{"type": "array", "items": elem}
		if t.Kind() == reflect.Array {
			n["maxItems"] = t.Len()
			return n, catArray, exact, nil
		}
		return n, catSlice, exact, nil
	case reflect.Map:
		return g.mapSchema(t.Key(), t.Elem(), spec, rules, path)
	case reflect.Struct:
		n, err := g.structSchema(t, rules, path)
		return n, catStruct, true, err
	}
	return nil, 0, false, fmt.Errorf("schema: %s: unsupported type %s", path, t)
}

// mapSchema returns the schema of a map (a Go map, or a codec.Mapper of
// string keys) of keys of type kt and values of type elem: an object whose
// "additionalProperties" are the values' schema.
func (g *generator) mapSchema(kt, elem reflect.Type, spec *tagSpec, rules bool, path string) (obj, category, bool, error) {
	node, exact, err := g.elemSchema(elem, spec, rules, path+".*")
	if err != nil {
		return nil, 0, false, err
	}
	n := obj{"type": "object", "additionalProperties": node}
	var names obj
	switch {
	case kt.Kind() == reflect.String && !isTextType(kt):
		if spec != nil && spec.keys != nil {
			var kexact bool
			names, kexact, err = g.typeSchema(kt, spec.keys, rules, path+".*")
			if err != nil {
				return nil, 0, false, err
			}
			exact = exact && kexact
			delete(names, "type") // property names are always strings
		}
	case kt.Kind() >= reflect.Int && kt.Kind() <= reflect.Uintptr && !isTextType(kt):
		names = obj{"pattern": patternIntegerKey}
		fallthrough
	default:
		if spec != nil && spec.keys != nil {
			exact = false
		}
	}
	if len(names) > 0 {
		n["propertyNames"] = names
	}
	return n, catMap, exact, nil
}

// elemSchema returns the schema of the elements of a slice, array or map
// whose tag is spec.
func (g *generator) elemSchema(t reflect.Type, spec *tagSpec, rules bool, path string) (obj, bool, error) {
	if spec == nil || !spec.dive {
		// validator does not look at the elements
		n, _, err := g.typeSchema(t, nil, false, path)
		return n, true, err
	}
	return g.typeSchema(t, spec.elem, rules, path)
}

// zeroFails reports whether the zero value of t fails the rules of spec
// before any "dive", i.e. whether Validate rejects an absent key. Only rules
// that look at the field alone are tried.
func zeroFails(t reflect.Type, spec *tagSpec) (fails bool) {
	if spec == nil || len(spec.rules) == 0 {
		return false
	}
	for _, r := range spec.rules {
		if r.or || !singleFieldRules[r.name] {
			return false
		}
	}
	defer func() {
		if recover() != nil { // a rule that does not fit the type
			fails = false
		}
	}()
	zero := reflect.Zero(t).Interface()
	if elem, ok := codec.MapperOf(t); ok {
		zero = reflect.Zero(plainMapType(elem)).Interface() // as mapperPlain
	}
	return validate.Var(zero, spec.container) != nil
}

// singleFieldRules are the rules zeroFails may evaluate on a lone value.
var singleFieldRules = map[string]bool{
	"required": true, "omitempty": true, "min": true, "max": true, "gte": true, "lte": true,
	"gt": true, "lt": true, "len": true, "eq": true, "ne": true, "oneof": true, "email": true,
	"url": true, "uri": true, "hostname": true, "hostname_rfc1123": true, "fqdn": true, "ip": true,
	"ipv4": true, "ipv6": true, "uuid": true, "alpha": true, "alphanum": true, "numeric": true,
	"startswith": true, "endswith": true, "contains": true,
}

// applyBound maps a size or value bound to the keyword of cat. It reports
// false when there is none, or the parameter does not parse.
func applyBound(c obj, cat category, r rule) bool {
	lower := r.name == "min" || r.name == "gte" || r.name == "gt"
	exclusive := r.name == "gt" || r.name == "lt"
	var key string
	switch cat {
	case catInt, catUint, catFloat:
		v, ok := typedParam(cat, r.param)
		if !ok {
			return false
		}
		switch {
		case lower && exclusive:
			key = "exclusiveMinimum"
		case lower:
			key = "minimum"
		case exclusive:
			key = "exclusiveMaximum"
		default:
			key = "maximum"
		}
		setBound(c, key, v, lower)
		return true
	case catString:
		key = "Length"
	case catSlice:
		key = "Items"
	case catMap:
		key = "Properties"
	default:
		return false
	}
	n, err := strconv.ParseInt(r.param, 0, 64)
	if err != nil || n < 0 {
		return false
	}
	switch {
	case lower && exclusive:
		n++
	case exclusive:
		if n == 0 {
			return false
		}
		n--
	}
	if lower {
		setBound(c, "min"+key, n, true)
	} else {
		setBound(c, "max"+key, n, false)
	}
	return true
}

// setBound sets c[key] to v, or keeps the tighter of v and the bound
// already there.
func setBound(c obj, key string, v any, lower bool) {
	old, ok := c[key]
	if ok {
		o, v1 := toRat(old), toRat(v)
		if o != nil && v1 != nil && (lower && o.Cmp(v1) >= 0 || !lower && o.Cmp(v1) <= 0) {
			return
		}
	}
	c[key] = v
}

func toRat(v any) *big.Rat {
	r, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if !ok {
		return nil
	}
	return r
}

// typedParam parses a rule parameter as a value of cat.
func typedParam(cat category, p string) (any, bool) {
	switch cat {
	case catString:
		return p, true
	case catInt:
		v, err := strconv.ParseInt(p, 0, 64)
		return v, err == nil
	case catUint:
		v, err := strconv.ParseUint(p, 0, 64)
		return v, err == nil
	case catFloat:
		v, err := strconv.ParseFloat(p, 64)
		return v, err == nil && !math.IsInf(v, 0) && !math.IsNaN(v)
	case catBool:
		v, err := strconv.ParseBool(p)
		return v, err == nil
	}
	return nil, false
}

// scalarZero returns the zero value of a plain scalar category.
func scalarZero(cat category) (any, bool) {
	switch cat {
	case catString:
		return "", true
	case catInt, catUint, catFloat:
		return 0, true
	case catBool:
		return false, true
	}
	return nil, false
}

func ipAnyOf() []any {
	return []any{obj{"format": "ipv4"}, obj{"format": "ipv6"}}
}

func addAllOf(n obj, s obj) {
	all, _ := n["allOf"].([]any)
	n["allOf"] = append(all, s)
}

func dedupe(s []string) []string {
	var out []string
	for _, v := range s {
		if !containsString(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// tagSpec is a parsed `validate:"..."` tag.
type tagSpec struct {
	container string   // the rules before "dive", as written
	rules     []rule   // the same, parsed
	dive      bool     // "dive" follows
	keys      *tagSpec // rules between "keys" and "endkeys", for map keys
	elem      *tagSpec // rules after "dive" (and "endkeys"), for elements
}

type rule struct {
	name, param string
	or          bool // part of an "a|b" alternative
}

// parseTag parses a validate tag the way go-playground/validator splits it;
// "" gives nil.
func parseTag(tag string) *tagSpec {
	if tag == "" {
		return nil
	}
	return parseParts(strings.Split(tag, ","))
}

func parseParts(parts []string) *tagSpec {
	s := &tagSpec{}
	for i, p := range parts {
		if p == "dive" {
			s.container = strings.Join(parts[:i], ",")
			s.dive = true
			rest := parts[i+1:]
			if len(rest) > 0 && rest[0] == "keys" {
				end := len(rest)
				for j, q := range rest {
					if q == "endkeys" {
						end = j
						break
					}
				}
				s.keys = parseParts(rest[1:end])
				if end < len(rest) {
					rest = rest[end+1:]
				} else {
					rest = nil
				}
			}
			s.elem = parseParts(rest)
			return s
		}
		if p == "" {
			continue
		}
		name, param, _ := strings.Cut(p, "=")
		param = strings.NewReplacer("0x2C", ",", "0x7C", "|").Replace(param)
		s.rules = append(s.rules, rule{name: name, param: param, or: strings.Contains(p, "|")})
	}
	s.container = strings.Join(parts, ",")
	return s
}

var oneOfRe = regexp.MustCompile(`'[^']*'|\S+`)

// oneOfParams splits a oneof parameter as validator does: on spaces, with
// 'single quoted' values kept whole.
func oneOfParams(p string) []string {
	vals := oneOfRe.FindAllString(p, -1)
	for i, v := range vals {
		vals[i] = strings.ReplaceAll(v, "'", "")
	}
	return vals
}
