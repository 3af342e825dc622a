package bigmap

import (
	"hash/maphash"
	"math/bits"
	"slices"
)

// The map is a hash array mapped trie in the compressed form of Steindorf
// and Vinju (CHAMP): each node holds up to 32 slots, chosen by 5 bits of a
// key's hash, each slot either an entry or a child node; two bitmaps say
// which, and the entries and children are stored densely. A key's entry
// sits at the shallowest depth where no other key shares its hash bits; a
// node that would hold a single entry is inlined into its parent, so that
// a set of keys has one shape whatever the order of the changes that made
// it. Past the 64 bits of the hash (depth maxDepth) a node is a list of
// the entries whose hashes are equal.
//
// Nodes are never modified once they are reachable from a Map: a change
// copies the nodes on the path to its key.

const (
	slotBits = 5
	slotMask = 1<<slotBits - 1
	maxDepth = (64 + slotBits - 1) / slotBits // 13: the hash is used up
)

type entry[V any] struct {
	key  string
	hash uint64
	val  V
}

type node[V any] struct {
	dataMap, nodeMap uint32     // the slots holding an entry, a child
	data             []entry[V] // by slot; at maxDepth, every entry, in no order
	nodes            []*node[V] // by slot
}

var seed = maphash.MakeSeed()

// hashOf is the hash of a key; tests replace it to make collisions.
var hashOf = func(key string) uint64 { return maphash.String(seed, key) }

func slotOf(h uint64, depth int) uint32 {
	return 1 << ((h >> (depth * slotBits)) & slotMask)
}

// index is the position of slot bit among the slots set in bitmap.
func index(bitmap, bit uint32) int {
	return bits.OnesCount32(bitmap & (bit - 1))
}

func (n *node[V]) clone() *node[V] {
	return &node[V]{dataMap: n.dataMap, nodeMap: n.nodeMap, data: slices.Clone(n.data), nodes: slices.Clone(n.nodes)}
}

// trimmed returns s, or nil when it is empty: a node's empty slices are
// nil, so that equal maps are equal to reflect.DeepEqual too.
func trimmed[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (n *node[V]) get(key string, h uint64) (V, bool) {
	for depth := 0; n != nil; depth++ {
		if depth >= maxDepth {
			for _, e := range n.data {
				if e.key == key {
					return e.val, true
				}
			}
			break
		}
		bit := slotOf(h, depth)
		if n.dataMap&bit != 0 {
			if e := n.data[index(n.dataMap, bit)]; e.key == key {
				return e.val, true
			}
			break
		}
		if n.nodeMap&bit == 0 {
			break
		}
		n = n.nodes[index(n.nodeMap, bit)]
	}
	var zero V
	return zero, false
}

// set returns n with e in it, and whether e's key is new.
func (n *node[V]) set(e entry[V], depth int) (*node[V], bool) {
	if depth >= maxDepth {
		c := n.clone()
		for i := range c.data {
			if c.data[i].key == e.key {
				c.data[i] = e
				return c, false
			}
		}
		c.data = append(c.data, e)
		return c, true
	}
	bit := slotOf(e.hash, depth)
	switch {
	case n.dataMap&bit != 0:
		i := index(n.dataMap, bit)
		c := n.clone()
		if old := n.data[i]; old.key != e.key {
			c.data = trimmed(slices.Delete(c.data, i, i+1))
			c.dataMap &^= bit
			c.nodeMap |= bit
			c.nodes = slices.Insert(c.nodes, index(c.nodeMap, bit), pair(old, e, depth+1))
			return c, true
		}
		c.data[i] = e
		return c, false
	case n.nodeMap&bit != 0:
		i := index(n.nodeMap, bit)
		sub, added := n.nodes[i].set(e, depth+1)
		c := n.clone()
		c.nodes[i] = sub
		return c, added
	default:
		c := n.clone()
		c.dataMap |= bit
		c.data = slices.Insert(c.data, index(c.dataMap, bit), e)
		return c, true
	}
}

// pair returns the node at depth that holds a and b, two different keys.
func pair[V any](a, b entry[V], depth int) *node[V] {
	if depth >= maxDepth {
		return &node[V]{data: []entry[V]{a, b}}
	}
	ba, bb := slotOf(a.hash, depth), slotOf(b.hash, depth)
	switch {
	case ba == bb:
		return &node[V]{nodeMap: ba, nodes: []*node[V]{pair(a, b, depth+1)}}
	case ba < bb:
		return &node[V]{dataMap: ba | bb, data: []entry[V]{a, b}}
	default:
		return &node[V]{dataMap: ba | bb, data: []entry[V]{b, a}}
	}
}

// remove returns n without key, and whether it held it. A node left with
// a single entry and no child is returned as is, for its parent to inline.
func (n *node[V]) remove(key string, h uint64, depth int) (*node[V], bool) {
	if depth >= maxDepth {
		i := slices.IndexFunc(n.data, func(e entry[V]) bool { return e.key == key })
		if i < 0 {
			return n, false
		}
		return &node[V]{data: trimmed(slices.Delete(slices.Clone(n.data), i, i+1))}, true
	}
	bit := slotOf(h, depth)
	switch {
	case n.dataMap&bit != 0:
		i := index(n.dataMap, bit)
		if n.data[i].key != key {
			return n, false
		}
		c := n.clone()
		c.data = trimmed(slices.Delete(c.data, i, i+1))
		c.dataMap &^= bit
		return c, true
	case n.nodeMap&bit != 0:
		i := index(n.nodeMap, bit)
		sub, removed := n.nodes[i].remove(key, h, depth+1)
		if !removed {
			return n, false
		}
		c := n.clone()
		if sub.nodeMap == 0 && len(sub.data) == 1 {
			// Inline the child's last entry.
			c.nodes = trimmed(slices.Delete(c.nodes, i, i+1))
			c.nodeMap &^= bit
			c.dataMap |= bit
			c.data = slices.Insert(c.data, index(c.dataMap, bit), sub.data[0])
		} else {
			c.nodes[i] = sub
		}
		return c, true
	}
	return n, false
}

// build returns the node at depth holding es, whose keys are distinct
// unless their hashes are equal too (the last of equal keys is kept), and
// whose hash bits below depth are equal; nil for none. It reorders es,
// using scratch (as long as es) for room.
func build[V any](es, scratch []entry[V], depth int) *node[V] {
	if len(es) == 0 {
		return nil
	}
	if sameHash(es) {
		es = lastOfEach(es)
		switch {
		case len(es) == 1 && depth > 0:
			return &node[V]{data: es} // inlined by the caller
		case len(es) == 1:
			return &node[V]{dataMap: slotOf(es[0].hash, depth), data: es}
		}
		n := &node[V]{data: es} // at maxDepth
		for d := maxDepth - 1; d >= depth; d-- {
			n = &node[V]{nodeMap: slotOf(es[0].hash, d), nodes: []*node[V]{n}}
		}
		return n
	}
	// Sort es by the slot at depth (a counting sort through scratch),
	// then make each slot's entries an entry or a child.
	shift := depth * slotBits
	var starts [1<<slotBits + 1]int
	for _, e := range es {
		starts[(e.hash>>shift)&slotMask+1]++
	}
	nData, nNodes := 0, 0
	for s := range 1 << slotBits {
		switch starts[s+1] {
		case 0:
		case 1:
			nData++
		default:
			nNodes++
		}
		starts[s+1] += starts[s]
	}
	next := starts
	for _, e := range es {
		s := (e.hash >> shift) & slotMask
		scratch[next[s]] = e
		next[s]++
	}
	copy(es, scratch)
	n := &node[V]{data: make([]entry[V], 0, nData), nodes: make([]*node[V], 0, nNodes)}
	for s := range 1 << slotBits {
		lo, hi := starts[s], starts[s+1]
		if lo == hi {
			continue
		}
		bit := uint32(1) << s
		if hi-lo == 1 {
			n.dataMap |= bit
			n.data = append(n.data, es[lo])
			continue
		}
		sub := build(es[lo:hi], scratch[lo:hi], depth+1)
		if sub.nodeMap == 0 && len(sub.data) == 1 { // equal keys
			n.dataMap |= bit
			n.data = append(n.data, sub.data[0])
			continue
		}
		n.nodeMap |= bit
		n.nodes = append(n.nodes, sub)
	}
	n.data, n.nodes = trimmed(n.data), trimmed(n.nodes)
	return n
}

func sameHash[V any](es []entry[V]) bool {
	for _, e := range es[1:] {
		if e.hash != es[0].hash {
			return false
		}
	}
	return true
}

// lastOfEach returns es with, of entries of equal keys, the last one only,
// in place of the first.
func lastOfEach[V any](es []entry[V]) []entry[V] {
	out := make([]entry[V], 0, len(es))
	for _, e := range es {
		if i := slices.IndexFunc(out, func(o entry[V]) bool { return o.key == e.key }); i >= 0 {
			out[i] = e
			continue
		}
		out = append(out, e)
	}
	return out
}

// all yields the entries beneath n.
func (n *node[V]) all(yield func(string, V) bool) bool {
	if n == nil {
		return true
	}
	for _, e := range n.data {
		if !yield(e.key, e.val) {
			return false
		}
	}
	for _, c := range n.nodes {
		if !c.all(yield) {
			return false
		}
	}
	return true
}

// entries appends the entries beneath n to es.
func (n *node[V]) entries(es []entry[V]) []entry[V] {
	if n == nil {
		return es
	}
	es = append(es, n.data...)
	for _, c := range n.nodes {
		es = c.entries(es)
	}
	return es
}
