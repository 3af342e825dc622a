package schema

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/strataconf/strata/codec"
)

// Wildcard is the path segment of a secret path that matches any one key of
// a map or index of a list: "users.*.password" is the password of every
// user, "creds.*.token" the token of every element of the list creds.
const Wildcard = "*"

// pathSegments splits a config path into its segments: "a.b.c", and the
// element suffixes of Validate's paths, "servers[0].host", "labels[env]".
func pathSegments(path string) []string {
	if path == "" {
		return nil
	}
	var segs []string
	for _, part := range strings.Split(path, ".") {
		name, rest, ok := strings.Cut(part, "[")
		if !ok || !strings.HasSuffix(rest, "]") {
			segs = append(segs, part)
			continue
		}
		segs = append(segs, name)
		for _, e := range strings.Split(strings.TrimSuffix(rest, "]"), "][") {
			segs = append(segs, e)
		}
	}
	return segs
}

// hasWildcard reports whether a secret path has a Wildcard segment.
func hasWildcard(pattern string) bool {
	for _, s := range strings.Split(pattern, ".") {
		if s == Wildcard {
			return true
		}
	}
	return false
}

// matchSegments compares the segments of a path with those of a secret
// path pattern: at is set when the path is, or lies under, the pattern;
// above when the path lies above it (it holds the values the pattern names).
func matchSegments(pattern, path []string) (at, above bool) {
	n := min(len(pattern), len(path))
	for i := range n {
		if pattern[i] != Wildcard && pattern[i] != path[i] {
			return false, false
		}
	}
	return len(path) >= len(pattern), len(path) < len(pattern)
}

// secretMatch reports whether the path given by its segments is, or lies
// under, one of the secret paths (at), or lies above one that has a
// Wildcard (above).
func secretMatch(paths []string, segs []string) (at, above bool) {
	for _, p := range paths {
		if p == "" {
			continue
		}
		wild := hasWildcard(p)
		a, b := matchSegments(strings.Split(p, "."), segs)
		if a {
			return true, false
		}
		above = above || (b && wild)
	}
	return false, above
}

// MaskTree returns a copy of t in which every value at (or below) one of
// the secret paths (which may hold Wildcard segments) is Masked: a secret
// map or list is shown as one Masked. The elements of maps and lists are
// matched one by one; JSON text above a path with a Wildcard (a list held
// as one leaf, which holds the secrets of its elements) is masked whole.
func MaskTree(t map[string]any, paths []string) map[string]any {
	out, _ := maskValue(t, nil, paths, 0).(map[string]any)
	return out
}

func maskValue(v any, segs []string, paths []string, depth int) any {
	at, above := secretMatch(paths, segs)
	if at && len(segs) > 0 {
		return Masked
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if depth > 256 {
				out[k] = Masked
				continue
			}
			out[k] = maskValue(e, append(segs[:len(segs):len(segs)], k), paths, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			if depth > 256 {
				out[i] = Masked
				continue
			}
			out[i] = maskValue(e, append(segs[:len(segs):len(segs)], strconv.Itoa(i)), paths, depth+1)
		}
		return out
	}
	if text, ok := v.(string); ok && above && isJSONText(text) {
		return Masked
	}
	return v
}

// isJSONText reports whether a leaf's text may hold a list or an object.
func isJSONText(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "[") || strings.HasPrefix(t, "{")
}

// MaskedPaths returns the dotted paths in t (map keys and list indexes)
// that hold the text Masked at one of the secret paths, sorted: the places
// where a document gives a secret as "******", meaning "keep the current
// value".
func MaskedPaths(t map[string]any, paths []string) []string {
	var out []string
	var walk func(v any, segs []string, depth int)
	walk = func(v any, segs []string, depth int) {
		if depth > 256 {
			return
		}
		if at, _ := secretMatch(paths, segs); at && len(segs) > 0 {
			if v == Masked {
				out = append(out, strings.Join(segs, "."))
			}
			return
		}
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(e, append(segs[:len(segs):len(segs)], k), depth+1)
			}
		case []any:
			for i, e := range v {
				walk(e, append(segs[:len(segs):len(segs)], strconv.Itoa(i)), depth+1)
			}
		}
	}
	walk(t, nil, 0)
	sort.Strings(out)
	return out
}

// KeepMasked returns a copy of doc in which each value Masked at a secret
// path (see MaskedPaths) is replaced by the value at the same path in cur:
// a map value by its key, a list element by its index (a list that cur
// holds as JSON text is decoded). Where cur has no value there, the error
// names the path. doc and cur are not modified.
func KeepMasked(doc, cur map[string]any, paths []string) (map[string]any, error) {
	masked := MaskedPaths(doc, paths)
	if len(masked) == 0 {
		return doc, nil
	}
	out, _ := codec.DeepCopy(doc).(map[string]any)
	for _, p := range masked {
		segs := strings.Split(p, ".")
		old, ok := lookupSegments(cur, segs)
		if !ok {
			return nil, fmt.Errorf("%s: %q stands for the current secret value, but there is none: write the value itself", p, Masked)
		}
		setSegments(out, segs, codec.DeepCopy(old))
	}
	return out, nil
}

// lookupSegments returns the value at segs in v, through maps, lists and
// JSON text that holds a list or an object.
func lookupSegments(v any, segs []string) (any, bool) {
	for _, seg := range segs {
		if s, ok := v.(string); ok && isJSONText(s) {
			if j, err := codec.ParseJSONText(strings.TrimSpace(s)); err == nil {
				v = j
			}
		}
		switch n := v.(type) {
		case map[string]any:
			e, ok := n[seg]
			if !ok || e == nil {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n) || n[i] == nil {
				return nil, false
			}
			v = n[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// setSegments sets the value at segs, which exists, in the tree v.
func setSegments(v any, segs []string, val any) {
	for i, seg := range segs {
		last := i == len(segs)-1
		switch n := v.(type) {
		case map[string]any:
			if last {
				n[seg] = val
				return
			}
			v = n[seg]
		case []any:
			j, err := strconv.Atoi(seg)
			if err != nil || j < 0 || j >= len(n) {
				return
			}
			if last {
				n[j] = val
				return
			}
			v = n[j]
		default:
			return
		}
	}
}

// expand returns the schema objects that describe the value node
// describes: node itself (through local "$ref"s), and those of its
// "allOf", "anyOf", "oneOf", "then", "else" and "dependentSchemas",
// recursively. Boolean schemas describe nothing.
func (s *Schema) expand(nodes ...any) []map[string]any {
	var out []map[string]any
	count := 0
	var visit func(n any, depth int)
	visit = func(n any, depth int) {
		m := asObj(n)
		if m == nil || depth > 32 || count > 4096 {
			return
		}
		count++
		for _, e := range out {
			if sameObj(e, m) {
				return
			}
		}
		out = append(out, m)
		if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
			visit(s.pointer(ref[1:]), depth+1)
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			list, _ := m[k].([]any)
			for _, e := range list {
				visit(e, depth+1)
			}
		}
		for _, k := range []string{"then", "else"} {
			visit(m[k], depth+1)
		}
		deps, _ := m["dependentSchemas"].(map[string]any)
		for _, e := range deps {
			visit(e, depth+1)
		}
	}
	for _, n := range nodes {
		visit(n, 0)
	}
	return out
}

// children returns the schemas that describe the value at key (a property
// name or a list index) of a value described by nodes. named is set when
// some schema describes the key (a property, a matching pattern property,
// a schema for other properties or for items); closed when some node
// forbids keys it does not name ("additionalProperties": false).
func (s *Schema) children(nodes []map[string]any, key string) (out []any, named, closed bool) {
	index, err := strconv.Atoi(key)
	isIndex := err == nil && index >= 0
	for _, n := range nodes {
		matched := false
		if props, ok := n["properties"].(map[string]any); ok {
			if p, ok := props[key]; ok {
				out, matched = append(out, p), true
			}
		}
		if pats, ok := n["patternProperties"].(map[string]any); ok {
			for pat, p := range pats {
				if re := s.regexp(pat); re != nil && re.MatchString(key) {
					out, matched = append(out, p), true
				}
			}
		}
		if !matched {
			for _, k := range []string{"additionalProperties", "unevaluatedProperties"} {
				switch ap := n[k].(type) {
				case map[string]any:
					out, matched = append(out, ap), true
				case bool:
					matched = matched || ap
					closed = closed || !ap
				}
			}
		}
		if isIndex {
			if pre, ok := n["prefixItems"].([]any); ok && index < len(pre) {
				out, matched = append(out, pre[index]), true
			} else {
				for _, k := range []string{"items", "unevaluatedItems"} {
					switch it := n[k].(type) {
					case map[string]any:
						out, matched = append(out, it), true
					case bool:
						matched = matched || it
					}
				}
			}
			if c, ok := n["contains"].(map[string]any); ok {
				out = append(out, c)
			}
		}
		named = named || matched
	}
	return out, named, closed
}

// regexp returns the compiled "patternProperties" pattern pat, or nil
// when Go's regexp does not accept it.
func (s *Schema) regexp(pat string) *regexp.Regexp {
	if re, ok := s.patterns.Load(pat); ok {
		r, _ := re.(*regexp.Regexp)
		return r
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		re = nil
	}
	s.patterns.Store(pat, re)
	return re
}

func sameObj(a, b map[string]any) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}
