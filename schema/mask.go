package schema

import (
	"fmt"
	"reflect"
	"strconv"
)

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

// isSecretNode reports whether the schema object m marks its value secret
// (KeywordSecret or "writeOnly").
func isSecretNode(m map[string]any) bool {
	if m == nil {
		return false
	}
	sec, _ := m[KeywordSecret].(bool)
	wo, _ := m["writeOnly"].(bool)
	return sec || wo
}

// fieldError builds the FieldError for the value v at loc, masking it when
// loc is, or lies under, a secret property, or is a key the schema does not
// allow (a mistyped secret key, "db.pasword", must not show its value).
// Inside a container value that is shown (a failed maxProperties, maxItems
// or not), the members the schema does not describe are masked too.
func (s *Schema) fieldError(loc []string, rule, param string, v any) FieldError {
	f := FieldError{Path: joinTokens(loc), Rule: rule, Param: param}
	if s.hidden(loc) {
		f.Value, f.Secret = Masked, true
		return f
	}
	f.Value = fmt.Sprintf("%v", s.maskBelow(v, loc, 0))
	return f
}

// maskBelow returns v with the values below loc replaced by Masked where
// they are secret, or where the schema does not describe them (see
// describedAt): a key of an object the schema leaves open may be a
// mistyped secret ("db.pasword"), so it is shown without its value.
func (s *Schema) maskBelow(v any, loc []string, depth int) any {
	if depth > 64 {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			l := concat(loc, []string{k})
			if s.hidden(l) || !s.describedAt(l) {
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
			if s.hidden(l) || !s.describedAt(l) {
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

// describedAt reports whether the schema describes the value at the
// instance location loc: each key on the way is named by "properties",
// matched by "patternProperties", or given a schema by
// "additionalProperties", "unevaluatedProperties", "prefixItems", "items",
// "unevaluatedItems" or "contains". A key of an object the schema leaves
// open, with no schema for it, is not described, nor is anything below it.
func (s *Schema) describedAt(loc []string) bool {
	nodes := s.expand(s.doc)
	for i, key := range loc {
		if len(nodes) == 0 || i > 256 {
			return false
		}
		next, _, _ := s.children(nodes, key)
		if len(next) == 0 {
			return false
		}
		nodes = s.expand(next...)
	}
	return true
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

// unknownAt is Unknown for the instance location loc.
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
