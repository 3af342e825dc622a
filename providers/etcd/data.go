package etcd

import (
	"cmp"
	"errors"
	"iter"
	stdmaps "maps"
	"slices"
	"sort"
	"strings"

	"github.com/knadh/koanf/maps"
)

// Data is the configuration held under one prefix at one etcd revision: the
// raw data keys and their values. A Data is never mutated once returned,
// but for the tree a Data from ReadLeaves hands over (see Content, Leaves).
type Data struct {
	// Revision is the etcd revision the data was read or watched at.
	Revision int64
	// KVs maps each data key (full etcd key) to its value. It is nil in a
	// Data from ReadLeaves whose keys are all plain leaves: its content
	// says all they hold.
	KVs map[string][]byte
	// Version is the release version (P/meta/version) at Revision, when
	// known: Read sets it, watch updates leave it 0.
	Version int64

	leaves *leaves // the content built by ReadLeaves instead of KVs, until Content or Leaves takes it
}

// leaves is the tree of a prefix whose keys are all plain leaves, and the
// path and key of every leaf (see leafTree).
type leaves struct {
	tree map[string]any
	keys *Leaves
}

// Leaves lists the dotted path and the etcd key of every leaf of a prefix
// whose keys are all plain leaves, without a map: the paths are cut from
// one string, each followed by a slash (which no dotted path holds), and
// the keys from another, one after the other in the same order, each as
// long as the data prefix and its path. See Data.Leaves.
type Leaves struct {
	paths string // every dotted path, each followed by '/'
	keys  string // every key, in the order of paths
	data  int    // length of the data prefix ("/p/data/") that starts every key
	n     int    // number of leaves
}

// Len returns the number of leaves.
func (lv *Leaves) Len() int { return lv.n }

// All yields the path and the key of every leaf, in no particular order.
func (lv *Leaves) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		paths, keys := lv.paths, lv.keys
		for paths != "" {
			i := strings.IndexByte(paths, '/')
			n := lv.data + i
			if !yield(paths[:i], keys[:n]) {
				return
			}
			paths, keys = paths[i+1:], keys[n:]
		}
	}
}

// Map returns the path → key map of the leaves, as a Content's Keys.
func (lv *Leaves) Map() map[string]string {
	m := make(map[string]string, lv.n)
	for p, k := range lv.All() {
		m[p] = k
	}
	return m
}

// Tree builds the nested configuration tree of d under layout l. Leaf keys
// give string values; document keys are parsed and mounted at their path.
// Within the etcd layer a deeper key wins over a shallower one, whether each
// is a leaf or a document (a leaf a/b/c over the value at b.c of a.yaml, a
// document a/b.yaml over the leaf a), and at the same path a leaf key wins
// over a document. sources maps every flat leaf path ("db.port") to the
// etcd key it came from.
//
// Keys that do not fit the layout and documents that do not parse make Tree
// fail with an error (errors.Join of *KeyError, one per key): the tree as a
// whole is not trustworthy then.
func (d *Data) Tree(l Layout) (tree map[string]any, sources map[string]string, err error) {
	if tree, sources, ok := d.leafTree(l); ok {
		return tree, sources, nil
	}
	return d.orderedTree(l)
}

// leafTree builds the tree of d in the common case where every key is a
// leaf key and no leaf lies beneath another: the order of mounting does not
// matter then, so the keys are mounted as the map gives them. ok is false
// when that is not the case (a document, a key that does not fit the
// layout, a leaf mounted over another or beneath it); orderedTree then
// builds the tree, or tells what is wrong, and the part of this pass done
// before the case was met is lost (a prefix of 10,000 leaf keys and one
// document still builds faster than when every tree was sorted).
//
// A first pass counts the leaf keys beneath each key path, so that each map
// of the tree is made with room for them; the paths are cut from one
// string and the values from another: two allocations, not two per key.
func (d *Data) leafTree(l Layout) (tree map[string]any, sources map[string]string, ok bool) {
	sources = make(map[string]string, len(d.KVs))
	if tree, _, ok = leafTree(l, stdmaps.All(d.KVs), sources); !ok {
		return nil, nil, false
	}
	return tree, sources, true
}

// leafTree is Data.leafTree over the keys and values of kvs, which it
// goes through twice, recording the key of every leaf path in sources
// unless it is nil. paths holds the dotted path of every leaf, each
// followed by '/', in the order kvs gives the keys (see Leaves).
func leafTree(l Layout, kvs iter.Seq2[string, []byte], sources map[string]string) (tree map[string]any, paths string, ok bool) {
	children := make(map[string]int) // key path ("db", "" at the top) → leaf keys directly beneath
	dir, under := "", 0              // the key path counted last, and its count not yet in children
	np, nv := 0, 0
	for k, v := range kvs {
		rel, leaf := l.leafRel(k) // as l.Parse(k), for the keys it maps to a leaf
		if !leaf {
			return nil, "", false
		}
		np += len(rel) + 1
		nv += len(v)
		parent := rel[:max(strings.LastIndexByte(rel, '/'), 0)]
		if parent != dir {
			children[dir] += under
			dir, under = parent, 0
		}
		under++
	}
	children[dir] += under
	var pb, values strings.Builder
	pb.Grow(np)
	values.Grow(nv)
	tree = make(map[string]any, children[""])
	for k, v := range kvs {
		rel, _ := l.leafRel(k)
		at := pb.Len()
		writeDotted(&pb, rel)
		p := pb.String()[at:]
		pb.WriteByte('/')
		at = values.Len()
		values.Write(v)
		if !mountLeaf(tree, rel, values.String()[at:], children) {
			return nil, "", false
		}
		if sources != nil {
			sources[p] = k
		}
	}
	return tree, pb.String(), true
}

// mountLeaf sets the value at key path rel ("db/port", for the config path
// db.port) of tree, creating the maps on the way, each with room for as
// many entries as children holds for its key path. It reports false,
// leaving tree partly changed, when a value other than a map lies on the
// way or a value lies at rel already.
func mountLeaf(tree map[string]any, rel string, v any, children map[string]int) bool {
	m := tree
	for at := 0; ; {
		i := strings.IndexByte(rel[at:], '/')
		if i < 0 {
			n := len(m)
			m[rel[at:]] = v
			return len(m) > n
		}
		seg := rel[at : at+i]
		next, ok := m[seg].(map[string]any)
		if !ok {
			if _, taken := m[seg]; taken {
				return false
			}
			next = make(map[string]any, children[rel[:at+i]])
			m[seg] = next
		}
		m, at = next, at+i+1
	}
}

// orderedTree builds the tree of d mounting its keys in order of
// precedence (see Tree).
func (d *Data) orderedTree(l Layout) (tree map[string]any, sources map[string]string, err error) {
	type mountKey struct {
		key   string
		value []byte
		entry Entry
		depth int
	}
	mounts := make([]mountKey, 0, len(d.KVs))
	var errs []error
	for k, v := range d.KVs {
		e, perr := l.Parse(k)
		if perr != nil {
			errs = append(errs, perr)
			continue
		}
		depth := 0
		if e.Path != "" {
			depth = strings.Count(e.Path, ".") + 1
		}
		mounts = append(mounts, mountKey{key: k, value: v, entry: e, depth: depth})
	}
	// Shallower keys first, so that deeper ones override them; at one
	// depth documents first, so that a leaf overrides a document at its
	// own path, and documents in key order (a.json before a.yaml at path
	// a). Leaves at one depth need no order: distinct leaf keys have
	// distinct paths, and paths of one depth never lie beneath each
	// other.
	slices.SortFunc(mounts, func(a, b mountKey) int {
		if a.depth != b.depth {
			return cmp.Compare(a.depth, b.depth)
		}
		ad, bd := a.entry.Codec != nil, b.entry.Codec != nil
		switch {
		case ad && bd:
			return strings.Compare(a.key, b.key)
		case ad:
			return -1
		case bd:
			return 1
		}
		return 0
	})

	tree = make(map[string]any)
	sources = make(map[string]string, len(mounts))
	replaced := false // some mount replaced a leaf or a subtree
	for _, m := range mounts {
		e, k := m.entry, m.key
		if e.Codec == nil {
			replaced = mount(tree, e.Path, string(m.value)) || replaced
			sources[e.Path] = k
			continue
		}
		doc, perr := e.Codec.Unmarshal(m.value)
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
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
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
	m := tree
	for {
		seg, rest, interior := strings.Cut(path, ".")
		if !interior {
			if old, ok := m[seg].(map[string]any); ok && len(old) > 0 {
				replaced = true
			}
			m[seg] = v
			return replaced
		}
		cur, exists := m[seg]
		next, ok := cur.(map[string]any)
		if !ok {
			replaced = replaced || exists
			next = make(map[string]any)
			m[seg] = next
		}
		m, path = next, rest
	}
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
