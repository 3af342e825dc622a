package config

import (
	"maps"
	"sync"
)

// flatValues is the flat view of a merged configuration (config path →
// leaf value), never modified once built. A change on the fast path makes
// a new view that shares the old one's base and copies only what changed
// since that base (over); when that grows past a share of the base, the new
// view gets a base of its own. A change so costs about what it changes.
//
// The view of a merge is built from the merged tree at its first use (see
// lazyFlatValues): Load of n keys makes one n-entry map fewer, and a
// Config whose configuration never changes, nor is asked for its Values,
// never makes it.
type flatValues struct {
	once    sync.Once         // builds base from tree, once
	tree    map[string]any    // the merged tree base is built from, until it is; nil for a view built at once
	origins map[string]Origin // the paths of tree's leaves that have an origin, until base is built
	base    map[string]any
	over    map[string]overValue // changes since base
	n       int                  // number of paths
}

// overValue is a value set, or removed, since the base.
type overValue struct {
	v       any
	removed bool
}

func newFlatValues(m map[string]any) *flatValues {
	return &flatValues{base: m, n: len(m)}
}

// lazyFlatValues returns the flat view of the merged tree, whose leaves
// that have an origin are the paths of origins (see merge), built from
// them at its first use. Neither may change until then: the reload loop,
// the only one to change a layer's tree in place, builds the view of the
// snapshot in force first (see applyChanges).
func lazyFlatValues(tree map[string]any, origins map[string]Origin) *flatValues {
	return &flatValues{tree: tree, origins: origins}
}

// built returns f with its base built. Every use of f goes through it; it
// is safe from any goroutine.
func (f *flatValues) built() *flatValues {
	f.once.Do(func() {
		if f.tree == nil {
			return
		}
		// The paths of the origins are taken as they are, not built again:
		// one string fewer per leaf. A leaf that has no origin (or a key of
		// the tree that holds a dot) makes the whole tree walked, as merge
		// does.
		m := make(map[string]any, len(f.origins))
		for p := range f.origins {
			if v, ok := leafAt(f.tree, p); ok {
				m[p] = v
			}
		}
		if len(m) < countLeaves(f.tree) {
			flatten(f.tree, "", m)
		}
		f.base, f.n, f.tree, f.origins = m, len(m), nil, nil
	})
	return f
}

// get returns the value at path p.
func (f *flatValues) get(p string) (any, bool) {
	f.built()
	if o, ok := f.over[p]; ok {
		return o.v, !o.removed
	}
	v, ok := f.base[p]
	return v, ok
}

// len returns the number of paths.
func (f *flatValues) len() int { return f.built().n }

// each calls fn for every path and value, in no order.
func (f *flatValues) each(fn func(p string, v any)) {
	f.built()
	for p, v := range f.base {
		if _, ok := f.over[p]; !ok {
			fn(p, v)
		}
	}
	for p, o := range f.over {
		if !o.removed {
			fn(p, o.v)
		}
	}
}

// with returns a new view with changes applied.
func (f *flatValues) with(changes map[string]overValue) *flatValues {
	f.built()
	n := f.n
	for p, o := range changes {
		_, had := f.get(p)
		switch {
		case had && o.removed:
			n--
		case !had && !o.removed:
			n++
		}
	}
	if len(f.over)+len(changes) > len(f.base)/8 {
		m := make(map[string]any, n)
		f.each(func(p string, v any) { m[p] = v })
		for p, o := range changes {
			if o.removed {
				delete(m, p)
			} else {
				m[p] = o.v
			}
		}
		return newFlatValues(m)
	}
	over := maps.Clone(f.over)
	if over == nil {
		over = make(map[string]overValue, len(changes))
	}
	maps.Copy(over, changes)
	return &flatValues{base: f.base, over: over, n: n}
}
