package config

import "maps"

// flatValues is the flat view of a merged configuration (config path →
// leaf value), never modified once built. A change on the fast path makes
// a new view that shares the old one's base and copies only what changed
// since that base (over); when that grows past a share of the base, the new
// view gets a base of its own. A change so costs about what it changes.
type flatValues struct {
	base map[string]any
	over map[string]overValue // changes since base
	n    int                  // number of paths
}

// overValue is a value set, or removed, since the base.
type overValue struct {
	v       any
	removed bool
}

func newFlatValues(m map[string]any) *flatValues {
	return &flatValues{base: m, n: len(m)}
}

// get returns the value at path p.
func (f *flatValues) get(p string) (any, bool) {
	if o, ok := f.over[p]; ok {
		return o.v, !o.removed
	}
	v, ok := f.base[p]
	return v, ok
}

// len returns the number of paths.
func (f *flatValues) len() int { return f.n }

// each calls fn for every path and value, in no order.
func (f *flatValues) each(fn func(p string, v any)) {
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
