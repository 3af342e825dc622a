package codec

import (
	"fmt"
	"sort"
)

// Leaves renders a struct (or pointer to one) as leaf text by dotted config
// path: the inverse of Bind for a tree of text leaves. Nested structs and
// map[string]X fields are split into paths ("db.port", "labels.team");
// everything else is one leaf, rendered with EncodeLeaf (slices as JSON
// text). Empty maps and nil pointers give no leaf.
func Leaves(v any) (map[string]string, error) {
	tree, err := ToMap(v)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	if err := leaves(tree, "", out); err != nil {
		return nil, err
	}
	return out, nil
}

func leaves(tree map[string]any, prefix string, out map[string]string) error {
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if m, ok := tree[k].(map[string]any); ok {
			if err := leaves(m, p, out); err != nil {
				return err
			}
			continue
		}
		s, err := EncodeLeaf(tree[k])
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out[p] = s
	}
	return nil
}
