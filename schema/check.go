package schema

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/strataconf/strata/codec"
)

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
			_, isSeq := codec.IndexMapping(x)
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
