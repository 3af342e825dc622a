package config

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
	"github.com/strataconf/strata/schema"
)

// This file is the path of a change that a source hands over as Changes
// (the etcd layer, for a revision that sets or removes plain leaves): the
// reload loop patches the layer's content in place (it owns it) and, when
// the change allows, builds the new snapshot from the old one by patching
// the changed leaves of the value and judging only the rules they can
// break, so that a change costs what it changes. Whenever that cannot be
// done exactly, it falls back to merging, binding and validating every
// layer (candidate), which gives the same result.

// applyChanges applies a content given as Changes to layer li and returns
// the new snapshot and the paths that changed, or the candidate's error.
func (c *Config[T]) applyChanges(li int, ct *providers.Content, old *Snapshot[T]) (*Snapshot[T], []string, error) {
	l := &c.layers[li]
	implied := li == c.etcdIdx && c.etcdRaw == nil // the tree and keys stand for the keys (dropRaw)
	if li == c.etcdIdx {
		if !implied {
			if c.etcdOdd < 0 && !slices.ContainsFunc(ct.Changes, func(ch providers.Change) bool { return ch.Path == "" }) {
				// Counted on the keys before these changes: a change that
				// removes the last leaf beneath a leaf key makes that key
				// count no more, but the tree must then be rebuilt.
				c.etcdOdd = oddKeys(c.etcd.Layout(), c.etcdRaw)
			}
			applyToKVs(c.etcdRaw, ct.Changes)
		}
		for i := range ct.Changes {
			if err := c.openChange(c.loopCtx(), &ct.Changes[i]); err != nil {
				if implied {
					c.etcdRaw = c.etcdKVs() // from the tree before the changes
					applyToKVs(c.etcdRaw, ct.Changes)
				}
				c.etcdStale = true // the tree keeps the keys before the changes
				return nil, nil, err
			}
		}
	}
	inPlace := li == c.etcdIdx && c.canary.overlay == nil && c.etcdOdd == 0 && !c.etcdStale && alone(ct.Changes, l.content.Tree)
	for _, ch := range ct.Changes {
		inPlace = inPlace && patchablePath(c.b.typ, l.content.Tree, ch.Path)
	}
	if !inPlace {
		if li == c.etcdIdx {
			if implied {
				c.etcdRaw = c.etcdKVs()
				applyToKVs(c.etcdRaw, ct.Changes)
			}
			c.etcdOdd = -1
		}
		// Keys that are not spelled as their fields, or a rollout's
		// candidate laid over them: build the layer anew.
		full, err := c.etcdContent(ct.Revision)
		if err != nil {
			c.etcdStale = true
			return nil, nil, err
		}
		l.setContent(full)
		l.snapshot, c.etcdStale = false, false
		return c.full(old)
	}
	// The tree is patched in place below: the flat values of the snapshot
	// in force, which may still be made from it (lazyFlatValues), are made
	// now, from the tree as it was.
	old.values.built()
	keys := l.keys() // built now if the leaves read by Load stand for them
	l.setContent(&providers.Content{Tree: l.content.Tree, Keys: keys, Revision: ct.Revision})
	pruned := false
	for _, ch := range ct.Changes {
		if ch.Removed {
			pruned = removeLeaf(l.content.Tree, ch.Path) || pruned
			delete(l.content.Keys, ch.Path)
		} else {
			setLeaf(l.content.Tree, ch.Path, ch.Value)
			l.content.Keys[ch.Path] = ch.Key
		}
	}
	c.dropRaw()
	if pruned || li != len(c.layers)-1 || !c.inSync {
		return c.full(old)
	}
	if snap, paths, ok := c.patched(li, ct, old); ok {
		return snap, paths, nil
	}
	return c.full(old)
}

// applyToKVs applies changes to the keys and values kvs.
func applyToKVs(kvs map[string][]byte, changes []providers.Change) {
	for _, ch := range changes {
		if ch.Removed {
			delete(kvs, ch.Key)
		} else {
			kvs[ch.Key] = ch.Raw
		}
	}
}

// etcdKVs returns the etcd layer's keys and values: c.etcdRaw, or, while
// the layer's tree and keys stand for them (c.etcdRaw nil, see dropRaw), a
// new map built from those (the keys read as layer.keyed gives them).
func (c *Config[T]) etcdKVs() map[string][]byte {
	if c.etcdRaw != nil {
		return c.etcdRaw
	}
	l := &c.layers[c.etcdIdx]
	kvs := make(map[string][]byte, l.keyCount())
	for p, key := range l.keyed() {
		v, _, _ := lookup(l.content.Tree, p)
		s, _ := v.(string)
		kvs[key] = []byte(s)
	}
	return kvs
}

// dropRaw lets go of c.etcdRaw, the etcd layer's keys and values, while
// the layer's tree and keys say all they hold: every key a plain leaf with
// no leaf beneath another (etcdOdd 0), its value in the tree as stored (no
// keyring opens values, no rollout candidate is laid over them), and no
// change refused before it reached the tree (etcdStale). A change of plain
// leaves then patches the tree alone, and a configuration of n keys keeps
// one n-entry map fewer per Config; etcdKVs builds the keys again for the
// changes that need them.
func (c *Config[T]) dropRaw() {
	if c.etcdOdd == 0 && !c.etcdStale && c.opts.keyring == nil && c.canary.overlay == nil {
		c.etcdRaw = nil
	}
}

// full builds the candidate from every layer.
func (c *Config[T]) full(old *Snapshot[T]) (*Snapshot[T], []string, error) {
	snap, err := c.candidate(c.layers)
	if err != nil {
		return nil, nil, err
	}
	return snap, diff(old.values, snap.values), nil
}

// patched builds the snapshot after ct's changes to the top layer li from
// old, touching only the changed leaves; ok is false when that cannot be
// done exactly. old must be what the layers held before the changes
// (Config.inSync).
func (c *Config[T]) patched(li int, ct *providers.Content, old *Snapshot[T]) (*Snapshot[T], []string, bool) {
	v := old.Value
	origins := old.Origins
	copied := false
	changed := make(map[string]overValue, len(ct.Changes))
	for _, ch := range ct.Changes {
		value, origin, present := ch.Value, Origin{Layer: c.layers[li].kind, Key: ch.Key}, !ch.Removed
		// The layers below: nothing above the leaf, no subtree at it; a
		// removed leaf falls back to the highest value below.
		for i := li - 1; i >= 0; i-- {
			node, found, blocked := lookup(c.layers[i].content.Tree, ch.Path)
			if blocked {
				return nil, nil, false
			}
			if !found {
				continue
			}
			if _, isMap := node.(map[string]any); isMap {
				return nil, nil, false
			}
			if ch.Removed && !present {
				value, present = node, true
				origin = Origin{Layer: c.layers[i].kind, Key: c.layers[i].content.Keys[ch.Path]}
			}
		}
		nv, ok := codec.Patched(v, ch.Path, value, !present, &c.patcher)
		if !ok {
			return nil, nil, false
		}
		v = nv
		changed[ch.Path] = overValue{v: value, removed: !present}
		if o, had := origins[ch.Path]; had != present || o != origin {
			if !copied {
				origins, copied = maps.Clone(origins), true
			}
			if present {
				origins[ch.Path] = origin
			} else {
				delete(origins, ch.Path)
			}
		}
	}
	for p := range changed {
		if !schema.ValidateAt(v, p) {
			return nil, nil, false
		}
	}
	var paths []string
	for p, o := range changed {
		ov, had := old.values.get(p)
		if had == o.removed || (had && !reflect.DeepEqual(ov, o.v)) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	c.patchV = v
	return &Snapshot[T]{Value: v, Revision: ct.Revision, Origins: origins, Unknown: old.Unknown, Time: time.Now(),
		values: old.values.with(changed), secrets: c.b.secrets}, paths, true
}

// alone reports whether changes to plain leaf keys can be applied to a
// layer's tree one by one, with the result a rebuild from the keys gives:
// each is a plain leaf (Path set), sets or removes a leaf value (not a
// subtree, nor beneath a leaf), and no two are on the same path or one
// above the other.
func alone(changes []providers.Change, tree map[string]any) bool {
	paths := make(map[string]bool, len(changes))
	for _, ch := range changes {
		if ch.Path == "" || paths[ch.Path] {
			return false
		}
		paths[ch.Path] = true
	}
	for _, ch := range changes {
		for q := parentPath(ch.Path); q != ""; q = parentPath(q) {
			if paths[q] {
				return false
			}
		}
		v, found, blocked := lookup(tree, ch.Path)
		if _, isMap := v.(map[string]any); blocked || isMap || (ch.Removed && !found) {
			return false
		}
	}
	return true
}

// patchablePath reports whether the leaf at path can be set or removed in
// a layer's canonical tree in place: every segment that names a field of
// t is spelled as the field's key, and no key of tree beside it names the
// same field in another case (Canonical's choice between them would
// change).
func patchablePath(t reflect.Type, tree map[string]any, path string) bool {
	for _, seg := range strings.Split(path, ".") {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var next reflect.Type
		elem, mapper := codec.MapperOf(t)
		switch {
		case t == nil:
		case mapper:
			next = elem
		case t.Kind() == reflect.Struct:
			named := false
			for _, f := range codec.Fields(t) {
				if f.Key == seg {
					named, next = true, f.Struct.Type
				} else if strings.EqualFold(f.Key, seg) {
					return false
				}
			}
			if named {
				for k := range tree {
					if k != seg && strings.EqualFold(k, seg) {
						return false
					}
				}
			}
		case t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			next = t.Elem()
		}
		t = next
		sub, _ := tree[seg].(map[string]any)
		tree = sub
	}
	return true
}

// setLeaf sets the value at a dotted path of tree, creating the maps on
// the way.
func setLeaf(tree map[string]any, path string, v any) {
	segs := strings.Split(path, ".")
	for _, s := range segs[:len(segs)-1] {
		sub, ok := tree[s].(map[string]any)
		if !ok {
			sub = make(map[string]any)
			tree[s] = sub
		}
		tree = sub
	}
	tree[segs[len(segs)-1]] = v
}

// removeLeaf deletes the value at a dotted path of tree and the maps left
// empty above it, as a tree built from the remaining keys would not have
// them; it reports whether a map was removed.
func removeLeaf(tree map[string]any, path string) (pruned bool) {
	segs := strings.Split(path, ".")
	maps := []map[string]any{tree}
	for _, s := range segs[:len(segs)-1] {
		sub, ok := maps[len(maps)-1][s].(map[string]any)
		if !ok {
			return false
		}
		maps = append(maps, sub)
	}
	delete(maps[len(maps)-1], segs[len(segs)-1])
	for i := len(maps) - 1; i > 0 && len(maps[i]) == 0; i-- {
		delete(maps[i-1], segs[i-1])
		pruned = true
	}
	return pruned
}

// lookup finds the value at a dotted path of tree. blocked is true when a
// value that is not a map lies above the path.
func lookup(tree map[string]any, path string) (v any, found, blocked bool) {
	segs := strings.Split(path, ".")
	for _, s := range segs[:len(segs)-1] {
		n, ok := tree[s]
		if !ok {
			return nil, false, false
		}
		sub, ok := n.(map[string]any)
		if !ok {
			return nil, false, true
		}
		tree = sub
	}
	v, found = tree[segs[len(segs)-1]]
	return v, found, false
}
