package tree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/strataconf/strata/codec"
)

// Types answers which JSON types a JSON Schema allows at a config path.
type Types struct {
	root any
}

// NewTypes reads a JSON Schema document. A nil doc gives a Types that knows
// nothing (every leaf stays text).
func NewTypes(doc []byte) (*Types, error) {
	if doc == nil {
		return &Types{}, nil
	}
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("read JSON Schema: %w", err)
	}
	return &Types{root: root}, nil
}

// maxRefs bounds the $ref and combinator expansion of one node.
const maxRefs = 64

// At returns the "type" values the schema allows at the dotted path,
// gathered over $ref, allOf, anyOf, oneOf and if/then/else; nil when the
// schema says nothing.
func (t *Types) At(path string) []string {
	if t == nil || t.root == nil {
		return nil
	}
	nodes := t.expand([]any{t.root})
	if path != "" {
		for _, seg := range strings.Split(path, ".") {
			nodes = t.expand(t.children(nodes, seg))
			if len(nodes) == 0 {
				return nil
			}
		}
	}
	var types []string
	for _, n := range nodes {
		switch ty := n["type"].(type) {
		case string:
			types = append(types, ty)
		case []any:
			for _, e := range ty {
				if s, ok := e.(string); ok {
					types = append(types, s)
				}
			}
		}
	}
	slices.Sort(types)
	return slices.Compact(types)
}

// expand follows $ref and the combinators of each node.
func (t *Types) expand(in []any) []map[string]any {
	var out []map[string]any
	seen := 0
	var visit func(n any)
	visit = func(n any) {
		m, ok := n.(map[string]any)
		if !ok || seen > maxRefs {
			return
		}
		seen++
		out = append(out, m)
		if ref, ok := m["$ref"].(string); ok {
			visit(t.pointer(ref))
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			if list, ok := m[k].([]any); ok {
				for _, e := range list {
					visit(e)
				}
			}
		}
		for _, k := range []string{"then", "else"} {
			if e, ok := m[k]; ok {
				visit(e)
			}
		}
	}
	for _, n := range in {
		visit(n)
	}
	return out
}

// pointer resolves a local reference ("#/$defs/node").
func (t *Types) pointer(ref string) any {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	cur := t.root
	if frag == "" {
		return cur
	}
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// children returns the schemas of key seg below nodes: properties,
// matching patternProperties, else additionalProperties; for a numeric
// seg also prefixItems and items (etcd keys servers/0/host).
func (t *Types) children(nodes []map[string]any, seg string) []any {
	var out []any
	for _, n := range nodes {
		matched := false
		if props, ok := n["properties"].(map[string]any); ok {
			if p, ok := props[seg]; ok {
				out = append(out, p)
				matched = true
			}
		}
		if pats, ok := n["patternProperties"].(map[string]any); ok {
			for pat, p := range pats {
				if re, err := regexp.Compile(pat); err == nil && re.MatchString(seg) {
					out = append(out, p)
					matched = true
				}
			}
		}
		if !matched {
			if ap, ok := n["additionalProperties"].(map[string]any); ok {
				out = append(out, ap)
			}
		}
		if i, err := strconv.Atoi(seg); err == nil && i >= 0 {
			if pre, ok := n["prefixItems"].([]any); ok && i < len(pre) {
				out = append(out, pre[i])
			} else if items, ok := n["items"].(map[string]any); ok {
				out = append(out, items)
			}
		}
	}
	return out
}

// Typed returns a copy of t in which the text of each leaf key listed in
// leafPaths is rendered as the type the schema gives its path (integer,
// number, boolean, array or object), but only when writing that value back
// with codec.EncodeLeaf gives the very same text: so a document made from
// the result is pushed back unchanged. A leaf the schema allows as a
// string, or knows nothing about, stays text.
func (t *Types) Typed(tr map[string]any, leafPaths map[string]bool) map[string]any {
	out := Clone(tr)
	for p := range leafPaths {
		v, ok := Lookup(out, p)
		s, isText := v.(string)
		if !ok || !isText {
			continue
		}
		if typed, ok := t.convert(s, t.At(p)); ok {
			set(out, p, typed)
		}
	}
	return out
}

func (t *Types) convert(s string, types []string) (any, bool) {
	if len(types) == 0 || slices.Contains(types, "string") {
		return nil, false
	}
	for _, ty := range types {
		var v any
		switch ty {
		case "integer":
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				continue
			}
			v = n
		case "number":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				v = n
			} else if f, err := strconv.ParseFloat(s, 64); err == nil {
				v = f
			} else {
				continue
			}
		case "boolean":
			b, err := strconv.ParseBool(s)
			if err != nil {
				continue
			}
			v = b
		case "array", "object":
			if !strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "{") {
				continue
			}
			j, err := decodeJSON(s)
			if err != nil {
				continue
			}
			v = j
		default:
			continue
		}
		if back, err := codec.EncodeLeaf(v); err == nil && back == s {
			return v, true
		}
	}
	return nil, false
}

// decodeJSON decodes JSON text with integers as int64 and other numbers as
// float64, the types a YAML or JSON document gives them.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}
