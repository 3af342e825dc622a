package config

import (
	"iter"
	"maps"
	"sort"
	"strings"

	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// layer is one configured source and its last content. The goroutine that
// owns the Config's layers (Load, then the reload loop) is the only one to
// touch them; a layer is replaced, never modified.
type layer struct {
	kind     Layer
	name     string             // file path, env prefix or etcd prefix; for messages
	src      providers.Source   // a providers.Watcher too when its content changes
	watch    bool               // follow its changes (WithWatch)
	content  *providers.Content // as read, with keys canonical to T
	snapshot bool               // content came from the snapshot file (etcd)
	leaves   *etcdprov.Leaves   // while content.Keys is nil: its keys (etcd, read with ReadLeaves; see keys)
}

// keyed yields the path and key of every leaf of l's content that has a
// key: its Keys, or the leaves that stand for them, read as they are.
func (l *layer) keyed() iter.Seq2[string, string] {
	if l.content.Keys == nil && l.leaves != nil {
		return l.leaves.All()
	}
	return maps.All(l.content.Keys)
}

// keyCount returns how many paths keyed yields.
func (l *layer) keyCount() int {
	if l.content.Keys == nil && l.leaves != nil {
		return l.leaves.Len()
	}
	return len(l.content.Keys)
}

// keys returns the Keys of l's content. While l.leaves stand for them (the
// etcd layer as Load read it, until its first change: a 10k-key Load makes
// one 10k-entry map fewer), it first replaces the content by one with the
// Keys built from them, as a layer is replaced, never modified.
func (l *layer) keys() map[string]string {
	if l.content.Keys == nil && l.leaves != nil {
		ct := *l.content
		ct.Keys = l.leaves.Map()
		l.setContent(&ct)
	}
	return l.content.Keys
}

// setContent replaces l's content by ct, whose Keys are its own.
func (l *layer) setContent(ct *providers.Content) {
	l.content, l.leaves = ct, nil
}

// merged is the union of all layers in precedence order. Its flat values
// (path → leaf value, for change detection) are made from tree and origins
// when first needed (see lazyFlatValues).
type merged struct {
	tree    map[string]any    // nested, for binding
	origins map[string]Origin // flat path → where the value came from
}

// merge combines layers, lowest precedence first. A later layer wins key by
// key (keys are compared as spelled: binder.canonical spells the keys that
// name a field as the field does); a leaf in a later layer replaces a whole
// subtree of an earlier one and the other way round. The layers' trees are
// not modified; the merged tree shares with them every subtree that only
// one layer provides, so it must not be modified either. A layer whose
// leaves stand for its Keys may get its content replaced by one with the
// Keys built (see layer.keys), when the whole tree must be walked.
func merge(layers []layer) merged {
	var tree map[string]any
	hint := 0  // leaves in the largest layer: at least as many in most merges
	sole := -1 // the layer whose tree tree is, when no other has entries
	for i, l := range layers {
		if len(l.content.Tree) > 0 {
			sole = -1
			if len(tree) == 0 {
				sole = i
			}
		}
		tree = overlay(tree, l.content.Tree)
		hint = max(hint, layers[i].keyCount())
	}
	if tree == nil {
		tree = make(map[string]any)
	}
	m := merged{tree: tree, origins: make(map[string]Origin, hint)}
	m.addKeyed(layers, sole)
	if len(m.origins) < countLeaves(tree) {
		// A leaf that no layer has a key for (or a key of the tree that
		// holds a dot): walk the whole tree, which records the same
		// origins for the leaves already recorded, and looks each path up
		// in the layers' Keys.
		for i := range layers {
			layers[i].keys()
		}
		m.addLeaves(tree, "", layers)
	}
	return m
}

// overlay returns lo with hi laid over it, key by key, modifying neither:
// where both hold a map at a key the maps are overlaid into a new one; any
// other value of hi replaces lo's; the rest is lo's, shared.
func overlay(lo, hi map[string]any) map[string]any {
	if len(hi) == 0 {
		return lo
	}
	if len(lo) == 0 {
		return hi
	}
	out := make(map[string]any, len(lo)+len(hi))
	for k, v := range lo {
		out[k] = v
	}
	for k, v := range hi {
		if hm, ok := v.(map[string]any); ok {
			if lm, ok := out[k].(map[string]any); ok {
				out[k] = overlay(lm, hm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// addKeyed records in m.origins, as addLeaves does, every leaf of m.tree
// that some layer has a key for, taking its path from the layers' Keys (or
// the leaves that stand for them, see layer.keyed) instead of building it:
// one string fewer per leaf. The leaves of no key are left out. When
// m.tree is the tree of layer sole (no other layer has entries), the paths
// of its Keys are leaves of m.tree as they are of its own tree (see
// providers.Content), and are not looked up.
func (m *merged) addKeyed(layers []layer, sole int) {
	for i := len(layers) - 1; i >= 0; i-- {
		higher := len(m.origins) > 0 // a higher layer recorded paths
		for p, key := range layers[i].keyed() {
			if higher {
				if _, done := m.origins[p]; done {
					continue
				}
			}
			if i == sole {
				m.origins[p] = Origin{Layer: layers[i].kind, Key: key}
			} else if _, ok := leafAt(m.tree, p); ok {
				m.origins[p] = Origin{Layer: layers[i].kind, Key: key}
			}
		}
	}
}

// leafAt returns the value at the dotted path p of tree when flatten
// records it there: a leaf, not a map with entries.
func leafAt(tree map[string]any, p string) (any, bool) {
	for {
		seg, rest, more := strings.Cut(p, ".")
		v, ok := tree[seg]
		sub, isMap := v.(map[string]any)
		switch {
		case !ok:
			return nil, false
		case !more:
			return v, !isMap || len(sub) == 0
		case !isMap:
			return nil, false
		}
		tree, p = sub, rest
	}
}

// countLeaves counts the leaves of tree (see flatten).
func countLeaves(tree map[string]any) int {
	n := 0
	for _, v := range tree {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			n += countLeaves(sub)
		} else {
			n++
		}
	}
	return n
}

// addLeaves records in m.origins where every leaf of tree (see flatten)
// came from: the key of the highest layer that holds its path. It reads
// the layers' Keys: none may have leaves standing for them (see layer.keys).
func (m *merged) addLeaves(tree map[string]any, prefix string, layers []layer) {
	for k, v := range tree {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			m.addLeaves(sub, p, layers)
			continue
		}
		for i := len(layers) - 1; i >= 0; i-- {
			if key, ok := layers[i].content.Keys[p]; ok {
				m.origins[p] = Origin{Layer: layers[i].kind, Key: key}
				break
			}
		}
	}
}

// flatten records every leaf of tree under its dotted path. An empty map is
// a leaf.
func flatten(tree map[string]any, prefix string, out map[string]any) {
	for k, v := range tree {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			flatten(m, p, out)
			continue
		}
		out[p] = v
	}
}

// originOf finds where the value at path came from: the path itself, or the
// first leaf beneath it (a slice bound from index keys, a struct from a
// document).
func originOf(origins map[string]Origin, path string) (Origin, bool) {
	if o, ok := origins[path]; ok {
		return o, true
	}
	var under []string
	for p := range origins {
		if strings.HasPrefix(p, path+".") {
			under = append(under, p)
		}
	}
	if len(under) == 0 {
		return Origin{}, false
	}
	sort.Strings(under)
	return origins[under[0]], true
}
