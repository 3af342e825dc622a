package etcd

import (
	"errors"
	"sort"
	"strings"

	"github.com/knadh/koanf/maps"
)

// Data is the configuration held under one prefix at one etcd revision: the
// raw data keys and their values. A Data is never mutated once returned.
type Data struct {
	// Revision is the etcd revision the data was read or watched at.
	Revision int64
	// KVs maps each data key (full etcd key) to its value.
	KVs map[string][]byte
	// Version is the release version (P/meta/version) at Revision, when
	// known: Read sets it, watch updates leave it 0.
	Version int64
}

// Tree builds the nested configuration tree of d under layout l. Leaf keys
// give string values; document keys are parsed and mounted at their path.
// Within the etcd layer a leaf key wins over a document value at the same
// path, and a deeper key wins over a shallower one. sources maps every flat
// leaf path ("db.port") to the etcd key it came from.
//
// Keys that do not fit the layout and documents that do not parse make Tree
// fail with an error (errors.Join of *KeyError, one per key): the tree as a
// whole is not trustworthy then.
func (d *Data) Tree(l Layout) (tree map[string]any, sources map[string]string, err error) {
	keys := make([]string, 0, len(d.KVs))
	for k := range d.KVs {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	tree = make(map[string]any)
	sources = make(map[string]string)
	var errs []error
	var leaves []Entry
	var leafKeys []string
	replaced := false // some mount replaced a leaf or a subtree
	// Documents first, so that leaf keys override values inside documents.
	for _, k := range keys {
		e, perr := l.Parse(k)
		if perr != nil {
			errs = append(errs, perr)
			continue
		}
		if e.Codec == nil {
			leaves = append(leaves, e)
			leafKeys = append(leafKeys, k)
			continue
		}
		doc, perr := e.Codec.Unmarshal(d.KVs[k])
		if perr != nil {
			errs = append(errs, &KeyError{Key: k, Err: perr})
			continue
		}
		flat, _ := maps.Flatten(doc, nil, ".")
		for p, v := range flat {
			full := join(e.Path, p)
			replaced = mount(tree, full, v) || replaced
			sources[full] = k
		}
	}
	for i, e := range leaves {
		replaced = mount(tree, e.Path, string(d.KVs[leafKeys[i]])) || replaced
		sources[e.Path] = leafKeys[i]
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if replaced {
		// A leaf mounted over an interior node (or the other way round)
		// removed the paths beneath it from the tree; drop their sources.
		for p := range sources {
			if !present(tree, p) {
				delete(sources, p)
			}
		}
	}
	return tree, sources, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// mount sets the value at a dotted path, creating or replacing interior
// maps. It reports whether it replaced a leaf by a subtree or a subtree by
// a leaf.
func mount(tree map[string]any, path string, v any) (replaced bool) {
	segs := strings.Split(path, ".")
	m := tree
	for _, s := range segs[:len(segs)-1] {
		cur, exists := m[s]
		next, ok := cur.(map[string]any)
		if !ok {
			replaced = replaced || exists
			next = make(map[string]any)
			m[s] = next
		}
		m = next
	}
	last := segs[len(segs)-1]
	if old, ok := m[last].(map[string]any); ok && len(old) > 0 {
		replaced = true
	}
	m[last] = v
	return replaced
}

// present reports whether the flat path still names a leaf in tree.
func present(tree map[string]any, path string) bool {
	segs := strings.Split(path, ".")
	var cur any = tree
	for _, s := range segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[s]; !ok {
			return false
		}
	}
	_, interior := cur.(map[string]any)
	return !interior || len(cur.(map[string]any)) == 0
}
