package schema

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// fragment returns the JSON pointer in the fragment of a schema URL (as the
// validator reports SchemaURL), URL-unescaped; ok is false when the URL has
// no fragment.
func fragment(schemaURL string) (ptr string, ok bool) {
	_, frag, ok := strings.Cut(schemaURL, "#")
	if !ok {
		return "", false
	}
	if u, err := url.PathUnescape(frag); err == nil {
		frag = u
	}
	return frag, true
}

// pointer resolves a JSON pointer as written in a "$ref" fragment (it may
// be URL-escaped) in the document.
func (s *Schema) pointer(ptr string) any {
	if u, err := url.PathUnescape(ptr); err == nil {
		ptr = u
	}
	return s.lookup(ptr)
}

// lookup resolves an unescaped JSON pointer in the document: "" is the
// document itself; nil when nothing is there, or ptr is not a pointer
// (anchors are not resolved).
func (s *Schema) lookup(ptr string) any {
	if ptr == "" {
		return s.doc
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil
	}
	toks := strings.Split(ptr, "/")[1:]
	for i, tok := range toks {
		toks[i] = unescapeToken(tok)
	}
	return valueAt(s.doc, toks)
}

// escapeToken escapes a key as a JSON pointer reference token: "~" as "~0",
// "/" as "~1".
func escapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// unescapeToken undoes escapeToken.
func unescapeToken(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// deref returns node as an object, following local "$ref"s ("#/...") of a
// node that has no "type" of its own.
func (s *Schema) deref(node any) map[string]any {
	m, _ := s.resolve(node, "")
	return m
}

// resolve is deref that also tracks where it goes: ptr is the JSON pointer
// of node, and the pointer returned is that of the object reached (the
// target of the last "$ref" followed, else ptr).
func (s *Schema) resolve(node any, ptr string) (map[string]any, string) {
	m := asObj(node)
	for range 32 {
		if m == nil {
			return nil, ptr
		}
		ref, ok := m["$ref"].(string)
		if _, typed := m["type"]; !ok || typed || !strings.HasPrefix(ref, "#") {
			return m, ptr
		}
		ptr = ref[1:]
		if u, err := url.PathUnescape(ptr); err == nil {
			ptr = u // as fragment reports the validator's locations
		}
		m = asObj(s.lookup(ptr))
	}
	return m, ptr
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
	sub, _ := propChild(s.deref(node), key)
	return sub
}

// propChild is propSchema for the schema object m (its "$ref" already
// followed); rel is the JSON pointer of the result relative to m.
func propChild(m map[string]any, key string) (sub any, rel string) {
	if props, ok := m["properties"].(map[string]any); ok {
		if p, ok := props[key]; ok {
			return p, "/properties/" + escapeToken(key)
		}
	}
	if ap, ok := m["additionalProperties"].(map[string]any); ok {
		return ap, "/additionalProperties"
	}
	return nil, ""
}

// itemSchema returns the schema of element i (not negative) of an array
// schema node: from "prefixItems", else a schema "items"; nil if neither.
func (s *Schema) itemSchema(node any, i int) any {
	sub, _ := itemChild(s.deref(node), i)
	return sub
}

// itemChild is itemSchema for the schema object m (its "$ref" already
// followed); rel is the JSON pointer of the result relative to m.
func itemChild(m map[string]any, i int) (sub any, rel string) {
	if prefix, ok := m["prefixItems"].([]any); ok && i < len(prefix) {
		return prefix[i], "/prefixItems/" + strconv.Itoa(i)
	}
	if items, ok := m["items"].(map[string]any); ok {
		return items, "/items"
	}
	return nil, ""
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

// joinTokens renders an instance location as a dotted config path.
func joinTokens(loc []string) string { return strings.Join(loc, ".") }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
