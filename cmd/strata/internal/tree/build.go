package tree

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// Build turns a document tree into the content that replaces cur, the
// content the write is based on:
//
//   - Each leaf becomes the leaf key a/b/c of its path a.b.c, with the text
//     codec.EncodeLeaf gives it (lists as JSON text). Nil values are left
//     out; keys must not be empty or contain "." or "/".
//   - A value Mask at a secret path keeps the current value there (what get
//     and edit show for secrets); with no current value it is an error.
//   - The layout of cur is kept where the values are equal: a document key
//     of cur (P/data/a.yaml) whose tree equals the document's subtree at its
//     path is kept as is, with the leaf keys beneath it; a map at a path cur
//     holds as one leaf key (JSON object text) is written as one leaf key.
//
// So building from the document get shows gives cur back unchanged.
func Build(l etcdprov.Layout, doc map[string]any, cur config.Content, secrets []string) (config.Content, error) {
	doc = Clone(doc)
	curTree, _, err := Of(l, cur)
	if err != nil {
		curTree = nil // cur does not fit the layout: nothing to keep
	}
	if doc, err = schema.KeepMasked(doc, curTree, secrets); err != nil {
		return nil, err
	}

	// Entries of cur by path.
	type entry struct {
		key  string
		path string
		doc  bool
	}
	var entries []entry
	leafAt := map[string]string{} // path → leaf key
	for k := range cur {
		e, err := l.Parse(l.DataKey(k))
		if err != nil {
			continue
		}
		entries = append(entries, entry{key: k, path: e.Path, doc: e.Codec != nil})
		if e.Codec == nil {
			leafAt[e.Path] = k
		}
	}
	depth := func(p string) int {
		if p == "" {
			return 0
		}
		return 1 + strings.Count(p, ".")
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if d := depth(a.path) - depth(b.path); d != 0 {
			return d
		}
		return strings.Compare(a.key, b.key)
	})

	out := config.Content{}
	var kept []string // paths whose keys are taken from cur
	for _, e := range entries {
		if !e.doc || isKept(kept, e.path) || curTree == nil {
			continue
		}
		newSub, ok := Lookup(doc, e.path)
		if !ok {
			continue
		}
		oldSub, _ := Lookup(curTree, e.path)
		if !sameTexts(newSub, oldSub) {
			continue
		}
		kept = append(kept, e.path)
		for _, o := range entries {
			if under(o.path, e.path) {
				out[o.key] = cur[o.key]
			}
		}
	}

	var emit func(path string, v any) error
	emit = func(path string, v any) error {
		if isKept(kept, path) {
			return nil
		}
		switch v := v.(type) {
		case nil:
			return nil
		case map[string]any:
			if _, one := leafAt[path]; one && path != "" {
				return leaf(out, path, v)
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if k == "" || strings.ContainsAny(k, "./") {
					return fmt.Errorf("key %q under %s: a config key cannot be empty or contain \".\" or \"/\"", k, orRoot(path))
				}
				if err := emit(join(path, k), v[k]); err != nil {
					return err
				}
			}
			return nil
		default:
			return leaf(out, path, v)
		}
	}
	if err := emit("", doc); err != nil {
		return nil, err
	}
	return out, nil
}

func leaf(out config.Content, path string, v any) error {
	s, err := codec.EncodeLeaf(v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	out[strings.ReplaceAll(path, ".", "/")] = s
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func isKept(kept []string, path string) bool {
	for _, k := range kept {
		if under(path, k) {
			return true
		}
	}
	return false
}

// sameTexts reports whether two values have the same leaves with the same
// leaf text.
func sameTexts(a, b any) bool {
	ta, err1 := Texts(map[string]any{"v": a})
	tb, err2 := Texts(map[string]any{"v": b})
	return err1 == nil && err2 == nil && maps.Equal(ta, tb)
}
