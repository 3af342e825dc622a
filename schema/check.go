package schema

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/strataconf/strata/codec"
)

// schemaLocation names the compiled document inside the compiler; it never
// leaves the process.
const schemaLocation = "strata:///schema.json"

// Schema is a compiled schema, ready to check documents.
//
// A Schema is immutable; its methods are safe for concurrent use.
type Schema struct {
	doc      any // the schema document, decoded; numbers are json.Number
	compiled *jsonschema.Schema
	secrets  []string
	patterns sync.Map // "patternProperties" pattern → *regexp.Regexp
}

// Compile parses a JSON Schema document (as produced by Generate, or written
// by hand). A document without "$schema" is read as draft 2020-12. Format
// assertions are enabled; the formats email, uri, uuid, ipv4, ipv6 and
// date-time must satisfy both the JSON Schema definition and the check
// Validate (or codec.Bind, for date-time) applies, so a value Check accepts
// is accepted after binding too. Vendor keywords (KeywordSecret,
// KeywordValidate, any other "x-...") are allowed. Only "$ref"s into the
// document itself are resolved; nothing is fetched.
func Compile(doc []byte) (*Schema, error) {
	forUs, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("schema: parse JSON Schema: %w", err)
	}
	forCompiler, _ := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	c := newCompiler()
	if err := c.AddResource(schemaLocation, forCompiler); err != nil {
		return nil, fmt.Errorf("schema: compile JSON Schema: %w", err)
	}
	compiled, err := c.Compile(schemaLocation)
	if err != nil {
		return nil, fmt.Errorf("schema: compile JSON Schema: %w", err)
	}
	s := &Schema{doc: forUs, compiled: compiled}
	s.collectSecrets(forUs, "", map[uintptr]bool{})
	sort.Strings(s.secrets)
	return s, nil
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	for _, f := range strictFormats() {
		c.RegisterFormat(f)
	}
	return c
}

// noLoader refuses every external reference: a schema from etcd must not make
// the CLI read files or the network. The draft meta-schemas are built in.
type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("external reference %q not allowed", u)
}

// strictFormats returns the formats Compile registers: the standard check
// and the validator's (or the binder's) check together.
var strictFormats = sync.OnceValue(func() []*jsonschema.Format {
	extra := map[string]func(string) bool{
		"email": func(s string) bool { return validate.Var(s, "email") == nil },
		"uri":   func(s string) bool { return validate.Var(s, "url") == nil && validate.Var(s, "uri") == nil },
		"uuid":  func(s string) bool { return validate.Var(s, "uuid") == nil },
		"ipv4":  func(s string) bool { return validate.Var(s, "ipv4") == nil },
		"ipv6":  func(s string) bool { return validate.Var(s, "ipv6") == nil },
		"date-time": func(s string) bool {
			var t time.Time
			return t.UnmarshalText([]byte(s)) == nil
		},
	}
	var out []*jsonschema.Format
	for name, ok := range extra {
		std := jsonschema.NewCompiler()
		std.AssertFormat()
		if err := std.AddResource("strata:///format.json", map[string]any{"format": name}); err != nil {
			panic(err)
		}
		sch := std.MustCompile("strata:///format.json")
		out = append(out, &jsonschema.Format{Name: name, Validate: func(v any) error {
			s, isString := v.(string)
			if !isString {
				return nil
			}
			if sch.Validate(s) != nil || !ok(s) {
				return fmt.Errorf("not a valid %s", name)
			}
			return nil
		}})
	}
	return out
})

// SecretPaths returns the paths marked secret in the schema (KeywordSecret or
// "writeOnly"), sorted; e.g. ["db.password", "token", "users.*.password"].
// Secrets are found through every construct that describes a value:
// "properties", "$ref", "allOf", "anyOf", "oneOf", "then", "else",
// "dependentSchemas"; a map's values ("additionalProperties",
// "patternProperties") and a list's elements ("items", "contains") appear
// as the segment Wildcard, "prefixItems" by their index. A recursive schema
// is followed once; Check masks by the schema itself, at any depth. Use
// IsSecret, MaskTree and MaskedPaths to match paths against the result.
func (s *Schema) SecretPaths() []string {
	return append([]string(nil), s.secrets...)
}

// collectSecrets records the secret paths at and below node, whose path is
// prefix. seen holds the schema objects on the current branch, so a
// recursive schema is walked once, as the package function SecretPaths
// walks a recursive type.
func (s *Schema) collectSecrets(node any, prefix string, seen map[uintptr]bool) {
	var nodes []map[string]any
	for _, m := range s.expand(node) {
		id := reflect.ValueOf(m).Pointer()
		if seen[id] {
			continue
		}
		if isSecretNode(m) {
			if prefix != "" && !containsString(s.secrets, prefix) {
				s.secrets = append(s.secrets, prefix)
			}
			return
		}
		nodes = append(nodes, m)
	}
	for _, m := range nodes {
		seen[reflect.ValueOf(m).Pointer()] = true
	}
	defer func() {
		for _, m := range nodes {
			delete(seen, reflect.ValueOf(m).Pointer())
		}
	}()
	for _, m := range nodes {
		props, _ := m["properties"].(map[string]any)
		for _, k := range sortedKeys(props) {
			s.collectSecrets(props[k], joinPath(prefix, k), seen)
		}
		pats, _ := m["patternProperties"].(map[string]any)
		for _, k := range sortedKeys(pats) {
			s.collectSecrets(pats[k], joinPath(prefix, Wildcard), seen)
		}
		pre, _ := m["prefixItems"].([]any)
		for i, p := range pre {
			s.collectSecrets(p, joinPath(prefix, strconv.Itoa(i)), seen)
		}
		for _, k := range []string{"additionalProperties", "unevaluatedProperties", "items", "unevaluatedItems", "contains"} {
			if sub, ok := m[k].(map[string]any); ok {
				s.collectSecrets(sub, joinPath(prefix, Wildcard), seen)
			}
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isSecretNode(m map[string]any) bool {
	if m == nil {
		return false
	}
	sec, _ := m[KeywordSecret].(bool)
	wo, _ := m["writeOnly"].(bool)
	return sec || wo
}

// Check validates a document tree (nested map[string]any as produced by the
// codec package: leaves may be strings from etcd leaf keys, or typed values
// from documents) and returns nil or a *ValidationError (the same type
// Validate uses) whose Fields have Path (config path, dotted: "db.port",
// "servers.0.host"), Rule (the JSON Schema keyword that failed: "maximum",
// "required", "type", "enum", "pattern", "format", "minLength",
// "additionalProperties", ...), Param, and Value (masked as Masked for
// properties marked secret).
//
// Before checking, the tree is read the way codec.Bind reads it: a nil value
// counts as an absent key; a string where the schema wants an integer,
// number or boolean is parsed (text that does not parse stays a string, so
// "type" reports it); a string starting with "[" or "{" where it wants an
// array or object is decoded as JSON; a mapping with keys exactly "0".."n-1"
// where it wants an array becomes an array (etcd keys servers/0/host); a
// bool or number where it wants only a string becomes its text; time.Time
// becomes RFC 3339 text and time.Duration its String. tree is not modified.
//
// Rule is the first element of the failed keyword's path. "required" gives
// one FieldError per missing property, with its path; so does
// "additionalProperties" per unexpected property; "propertyNames" gives the
// failure of the key (Rule "pattern", say) at the key's path with the key as
// Value. A failed "anyOf" or "oneOf" gives one FieldError: when every
// alternative failed the same rule at the same path, that rule with the
// alternatives' parameters joined by "|" (e.g. "format", "ipv4|ipv6"),
// otherwise the rule "anyOf" or "oneOf". Param is the keyword's value as
// text: the bound, the pattern, the format, the wanted type, the enum values
// joined by spaces, the forbidden "not" value. A value at or below a secret
// property is never shown: Value is Masked and Secret is set. Nor is the
// value of a key the schema does not allow (see Unknown), which may be a
// mistyped secret: its failure ("additionalProperties") names the key, with
// Value Masked and Secret set.
func (s *Schema) Check(tree map[string]any) error {
	var root any = map[string]any{}
	if tree != nil {
		root = s.coerce(normalize(tree), s.doc, 0)
	}
	err := s.compiled.Validate(root)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("schema: check: %w", err)
	}
	var fields []FieldError
	s.flatten(verr, root, root, nil, &fields)
	sort.SliceStable(fields, func(i, j int) bool {
		a, b := fields[i], fields[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Param < b.Param
	})
	out := &ValidationError{Fields: make([]FieldError, 0, len(fields))}
	for i, f := range fields {
		if i == 0 || f != fields[i-1] {
			out.Fields = append(out.Fields, f)
		}
	}
	if len(out.Fields) == 0 { // cannot happen: every failure has a leaf
		out.Fields = append(out.Fields, FieldError{Rule: "schema"})
	}
	return out
}

// flatten appends one FieldError per leaf failure of e. doc is the value
// e's InstanceLocation is relative to, base the path of doc, and root the
// whole document checked.
func (s *Schema) flatten(e *jsonschema.ValidationError, root, doc any, base []string, out *[]FieldError) {
	loc := concat(base, e.InstanceLocation)
	rel := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			f := FieldError{Path: joinTokens(concat(loc, []string{m})), Rule: "required"}
			if s.secretAt(concat(loc, []string{m})) {
				f.Value, f.Secret = Masked, true
			}
			*out = append(*out, f)
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			ploc := concat(loc, []string{p})
			*out = append(*out, s.fieldError(ploc, "additionalProperties", "", valueAt(doc, concat(rel, []string{p}))))
		}
		return
	case *kind.PropertyNames:
		// The library may report a stale InstanceLocation for
		// propertyNames (it keeps a slice it goes on appending to): find
		// the objects holding the key by walking the document instead.
		objects := s.objectsWithSchema(root, e.SchemaURL, k.Property)
		if len(objects) == 0 {
			objects = [][]string{loc}
		}
		for _, o := range objects {
			kloc := concat(o, []string{k.Property})
			var sub []FieldError
			for _, c := range e.Causes {
				s.flatten(c, root, k.Property, kloc, &sub)
			}
			if len(sub) == 0 {
				sub = append(sub, s.fieldError(kloc, "propertyNames", "", k.Property))
			}
			*out = append(*out, sub...)
		}
		return
	case *kind.AnyOf, *kind.OneOf:
		rule := k.KeywordPath()[0]
		if o, ok := k.(*kind.OneOf); ok && o.Subschemas != nil { // several matched
			*out = append(*out, s.fieldError(loc, rule, "", valueAt(doc, rel)))
			return
		}
		var sub []FieldError
		for _, c := range e.Causes {
			s.flatten(c, root, doc, base, &sub)
		}
		if len(sub) > 0 {
			same := true
			var params []string
			for _, f := range sub {
				same = same && f.Path == sub[0].Path && f.Rule == sub[0].Rule
				if !containsString(params, f.Param) {
					params = append(params, f.Param)
				}
			}
			if same {
				f := sub[0]
				f.Param = strings.Join(params, "|")
				*out = append(*out, f)
				return
			}
		}
		*out = append(*out, s.fieldError(loc, rule, "", valueAt(doc, rel)))
		return
	case *kind.Not:
		*out = append(*out, s.fieldError(loc, "not", s.notParam(e.SchemaURL), valueAt(doc, rel)))
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			s.flatten(c, root, doc, base, out)
		}
		return
	}
	rule := "schema"
	if kp := e.ErrorKind.KeywordPath(); len(kp) > 0 {
		rule = kp[0]
	} else {
		switch e.ErrorKind.(type) {
		case *kind.FalseSchema:
			rule = "false"
		case *kind.InvalidJsonValue:
			rule = "type"
		}
	}
	*out = append(*out, s.fieldError(loc, rule, paramOf(e.ErrorKind), valueAt(doc, rel)))
}

// fieldError builds the FieldError for the value v at loc, masking it when
// loc is, or lies under, a secret property, or is a key the schema does not
// allow (a mistyped secret key, "db.pasword", must not show its value).
func (s *Schema) fieldError(loc []string, rule, param string, v any) FieldError {
	f := FieldError{Path: joinTokens(loc), Rule: rule, Param: param}
	if s.hidden(loc) {
		f.Value, f.Secret = Masked, true
		return f
	}
	f.Value = fmt.Sprintf("%v", s.maskBelow(v, loc, 0))
	return f
}

// maskBelow returns v with the values of secret properties, and of keys
// the schema does not allow, below loc replaced by Masked.
func (s *Schema) maskBelow(v any, loc []string, depth int) any {
	if depth > 64 {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			l := concat(loc, []string{k})
			if s.hidden(l) {
				c[k] = Masked
			} else {
				c[k] = s.maskBelow(e, l, depth+1)
			}
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			l := concat(loc, []string{strconv.Itoa(i)})
			if s.hidden(l) {
				c[i] = Masked
			} else {
				c[i] = s.maskBelow(e, l, depth+1)
			}
		}
		return c
	}
	return v
}

// secretAt reports whether the instance location loc is, or lies under, a
// value the schema marks secret, through every construct that describes a
// value (see SecretPaths), at any depth.
func (s *Schema) secretAt(loc []string) bool {
	nodes := s.expand(s.doc)
	for i := 0; ; i++ {
		for _, n := range nodes {
			if isSecretNode(n) {
				return true
			}
		}
		if i == len(loc) || len(nodes) == 0 || i > 256 {
			return false
		}
		next, _, _ := s.children(nodes, loc[i])
		nodes = s.expand(next...)
	}
}

// hidden reports whether the value at loc must not be shown: it is, or
// lies under, a secret, or the schema does not allow it (see Unknown).
func (s *Schema) hidden(loc []string) bool {
	return s.secretAt(loc) || s.unknownAt(loc)
}

// Unknown reports whether the schema does not allow a value at the dotted
// path (or "servers[0].host"): a key that no "properties" or
// "patternProperties" names in an object closed by "additionalProperties"
// (or "unevaluatedProperties") false, or a path below one. Such a key may be
// a mistyped secret ("db.pasword" for "db.password"), so its value is
// treated as possibly secret: Check never shows it, and neither should
// other output. A key of an object the schema leaves open is not unknown.
func (s *Schema) Unknown(path string) bool {
	return s.unknownAt(pathSegments(path))
}

func (s *Schema) unknownAt(loc []string) bool {
	nodes := s.expand(s.doc)
	for i, key := range loc {
		if len(nodes) == 0 || i > 256 {
			return false // the schema says nothing below: allowed
		}
		next, named, closed := s.children(nodes, key)
		if !named && closed {
			return true
		}
		nodes = s.expand(next...)
	}
	return false
}

// objectsWithSchema returns the locations in doc of the objects that hold
// key and are checked by the schema whose "propertyNames" is at
// propertyNamesURL. It follows "properties", "additionalProperties",
// "prefixItems", "items" and local "$ref"s, as coercion does.
func (s *Schema) objectsWithSchema(doc any, propertyNamesURL, key string) [][]string {
	_, frag, ok := strings.Cut(propertyNamesURL, "#")
	if !ok {
		return nil
	}
	if u, err := url.PathUnescape(frag); err == nil {
		frag = u
	}
	want, ok := strings.CutSuffix(frag, "/propertyNames")
	if !ok {
		return nil
	}
	var found [][]string
	var walk func(v any, node any, ptr string, loc []string, depth int)
	walk = func(v any, node any, ptr string, loc []string, depth int) {
		if node == nil || depth > 256 {
			return
		}
		for range 32 { // follow local $refs, tracking where they lead
			m := asObj(node)
			ref, isRef := m["$ref"].(string)
			if _, typed := m["type"]; !isRef || typed || !strings.HasPrefix(ref, "#") {
				break
			}
			ptr, node = ref[1:], s.pointer(ref[1:])
		}
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v[key]; ok && ptr == want {
				found = append(found, loc)
			}
			m := asObj(node)
			props, _ := m["properties"].(map[string]any)
			for k, e := range v {
				if p, ok := props[k]; ok {
					walk(e, p, ptr+"/properties/"+escapeToken(k), concat(loc, []string{k}), depth+1)
				} else if ap, ok := m["additionalProperties"].(map[string]any); ok {
					walk(e, ap, ptr+"/additionalProperties", concat(loc, []string{k}), depth+1)
				}
			}
		case []any:
			m := asObj(node)
			prefix, _ := m["prefixItems"].([]any)
			for i, e := range v {
				l := concat(loc, []string{strconv.Itoa(i)})
				if i < len(prefix) {
					walk(e, prefix[i], ptr+"/prefixItems/"+strconv.Itoa(i), l, depth+1)
				} else if items, ok := m["items"].(map[string]any); ok {
					walk(e, items, ptr+"/items", l, depth+1)
				}
			}
		}
	}
	walk(doc, s.doc, "", nil, 0)
	return found
}

func escapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// notParam returns the forbidden value of the "not" of the schema at
// schemaURL, when it is a "const" (or an "anyOf" of them).
func (s *Schema) notParam(schemaURL string) string {
	_, frag, ok := strings.Cut(schemaURL, "#")
	if !ok {
		return ""
	}
	if u, err := url.PathUnescape(frag); err == nil {
		frag = u
	}
	node := s.doc
	for _, tok := range strings.Split(frag, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			node = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return ""
			}
			node = n[i]
		default:
			return ""
		}
	}
	not := asObj(asObj(node)["not"])
	if c, ok := not["const"]; ok {
		return fmt.Sprintf("%v", c)
	}
	var vals []string
	alts, _ := not["anyOf"].([]any)
	for _, a := range alts {
		if c, ok := asObj(a)["const"]; ok {
			vals = append(vals, fmt.Sprintf("%v", c))
		}
	}
	return strings.Join(vals, " ")
}

// paramOf renders the parameter of a failed keyword.
func paramOf(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return strings.Join(k.Want, "|")
	case *kind.Enum:
		vals := make([]string, len(k.Want))
		for i, v := range k.Want {
			vals[i] = fmt.Sprintf("%v", v)
		}
		return strings.Join(vals, " ")
	case *kind.Const:
		return fmt.Sprintf("%v", k.Want)
	case *kind.Format:
		return k.Want
	case *kind.Pattern:
		return k.Want
	case *kind.MinLength:
		return strconv.Itoa(k.Want)
	case *kind.MaxLength:
		return strconv.Itoa(k.Want)
	case *kind.MinItems:
		return strconv.Itoa(k.Want)
	case *kind.MaxItems:
		return strconv.Itoa(k.Want)
	case *kind.MinProperties:
		return strconv.Itoa(k.Want)
	case *kind.MaxProperties:
		return strconv.Itoa(k.Want)
	case *kind.Minimum:
		return ratString(k.Want)
	case *kind.Maximum:
		return ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return ratString(k.Want)
	case *kind.MultipleOf:
		return ratString(k.Want)
	}
	return ""
}

func ratString(r *big.Rat) string {
	if r == nil {
		return ""
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// normalize turns a tree from the codec package into JSON values: maps with
// string keys become map[string]any (nil values dropped: Bind ignores them),
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
			if !isNilValue(e) {
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
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			if e := it.Value().Interface(); !isNilValue(e) {
				m[it.Key().String()] = normalize(e)
			}
		}
		return m
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

func isNilValue(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
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
			switch x := x.(type) {
			case bool:
				return strconv.FormatBool(x)
			case int64:
				return strconv.FormatInt(x, 10)
			case uint64:
				return strconv.FormatUint(x, 10)
			case float64:
				return strconv.FormatFloat(x, 'g', -1, 64)
			case json.Number:
				return x.String()
			}
		}
		return x
	case map[string]any:
		if hasType(types, "array") && !hasType(types, "object") {
			if seq, ok := indexMapping(x); ok {
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
			out[i] = s.coerce(e, s.itemSchema(node, strconv.Itoa(i)), depth+1)
		}
		return out
	}
	return v
}

// indexMapping returns the values of m in index order when its keys are
// exactly "0".."n-1".
func indexMapping(m map[string]any) ([]any, bool) {
	seq := make([]any, len(m))
	for i := range seq {
		v, ok := m[strconv.Itoa(i)]
		if !ok {
			return nil, false
		}
		seq[i] = v
	}
	return seq, true
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

// deref returns node as an object, following local "$ref"s ("#/...") of a
// node that has no "type" of its own.
func (s *Schema) deref(node any) map[string]any {
	m := asObj(node)
	for range 32 {
		if m == nil {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if _, typed := m["type"]; !ok || typed || !strings.HasPrefix(ref, "#") {
			return m
		}
		m = asObj(s.pointer(ref[1:]))
	}
	return m
}

// pointer resolves a JSON pointer (as in a "$ref" fragment) in the document.
func (s *Schema) pointer(ptr string) any {
	if u, err := url.PathUnescape(ptr); err == nil {
		ptr = u
	}
	if ptr == "" {
		return s.doc
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil // anchors are not resolved
	}
	toks := strings.Split(ptr, "/")[1:]
	for i, tok := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	return valueAt(s.doc, toks)
}

// types returns the "type" of the schema node: none, one or several.
func (s *Schema) types(node any) []string {
	m := s.deref(node)
	switch t := m["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if e, ok := e.(string); ok {
				out = append(out, e)
			}
		}
		return out
	}
	return nil
}

func hasType(types []string, t string) bool { return containsString(types, t) }

// propSchema returns the schema of property key of an object schema node:
// from "properties", else a schema "additionalProperties"; nil if neither.
func (s *Schema) propSchema(node any, key string) any {
	m := s.deref(node)
	if props, ok := m["properties"].(map[string]any); ok {
		if p, ok := props[key]; ok {
			return p
		}
	}
	if ap, ok := m["additionalProperties"].(map[string]any); ok {
		return ap
	}
	return nil
}

// itemSchema returns the schema of element index of an array schema node.
func (s *Schema) itemSchema(node any, index string) any {
	m := s.deref(node)
	i, err := strconv.Atoi(index)
	if err != nil {
		return nil
	}
	if prefix, ok := m["prefixItems"].([]any); ok {
		if i < len(prefix) {
			return prefix[i]
		}
	}
	if items, ok := m["items"].(map[string]any); ok {
		return items
	}
	return nil
}

// valueAt returns the value at loc in v, or nil.
func valueAt(v any, loc []string) any {
	for _, tok := range loc {
		switch n := v.(type) {
		case map[string]any:
			v = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

func asObj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func concat(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

func joinTokens(loc []string) string { return strings.Join(loc, ".") }

// CheckDocument checks the shapes of a document's values (a tree as a
// codec parses a YAML, JSON or TOML document) before they become leaf
// text: a list or an object where the schema's "type" does not allow it
// fails "type". Leaf text would turn it into JSON text, which a "string"
// field accepts as a string, so without this check a list pushed for a
// string field would be stored as its JSON text; codec.Bind refuses a list
// for a string field. A mapping with keys exactly "0".."n-1" counts as a
// list, as in Check. Only the shapes are checked: use Check on the
// resulting configuration for everything else. The error, if any, is a
// *ValidationError whose values are masked as in Check.
func (s *Schema) CheckDocument(doc map[string]any) error {
	var fields []FieldError
	var walk func(v any, nodes []map[string]any, loc []string, depth int)
	walk = func(v any, nodes []map[string]any, loc []string, depth int) {
		if depth > 256 || len(nodes) == 0 {
			return
		}
		var types []string
		for _, n := range nodes {
			for _, t := range s.types(n) {
				if !containsString(types, t) {
					types = append(types, t)
				}
			}
		}
		var keys []string
		switch x := v.(type) {
		case map[string]any:
			_, isSeq := indexMapping(x)
			if len(loc) > 0 && len(types) > 0 && !hasType(types, "object") && !(isSeq && hasType(types, "array")) {
				fields = append(fields, s.fieldError(loc, "type", strings.Join(types, "|"), normalize(x)))
				return
			}
			keys = sortedKeys(x)
		case []any:
			if len(types) > 0 && !hasType(types, "array") {
				fields = append(fields, s.fieldError(loc, "type", strings.Join(types, "|"), normalize(x)))
				return
			}
			for i := range x {
				keys = append(keys, strconv.Itoa(i))
			}
		default:
			return
		}
		for _, k := range keys {
			next, _, _ := s.children(nodes, k)
			walk(valueAt(v, []string{k}), s.expand(next...), concat(loc, []string{k}), depth+1)
		}
	}
	walk(doc, s.expand(s.doc), nil, 0)
	if len(fields) == 0 {
		return nil
	}
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Path < fields[j].Path })
	return &ValidationError{Fields: fields}
}
