package config

import (
	"sort"
	"strings"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// source is one configured layer instance and its last read content. The
// goroutine that owns the Config's layers (Load, then the reload loop) is
// the only one to touch it.
type source struct {
	layer    Layer
	name     string            // file path, env prefix or etcd prefix
	tree     map[string]any    // nested values as read
	keys     map[string]string // flat path → file path, env variable or etcd key
	revision int64             // etcd revision of the content; etcd only
	data     *etcdprov.Data    // the raw etcd content; etcd only
	snapshot bool              // data came from the snapshot file; etcd only
}

// merged is the union of all layers in precedence order.
type merged struct {
	tree    map[string]any    // nested, for binding
	values  map[string]any    // flat path → leaf value, for change detection
	origins map[string]Origin // flat path → where the value came from
}

// merge combines sources, lowest precedence first. A later layer wins key by
// key; a leaf in a later layer replaces a whole subtree of an earlier one and
// the other way round. The sources' trees are not modified.
func merge(srcs []*source) merged {
	m := merged{tree: make(map[string]any)}
	for _, s := range srcs {
		mergeInto(m.tree, s.tree)
	}
	m.values = make(map[string]any)
	flatten(m.tree, "", m.values)
	m.origins = make(map[string]Origin, len(m.values))
	for p := range m.values {
		for i := len(srcs) - 1; i >= 0; i-- {
			if k, ok := srcs[i].keys[p]; ok {
				m.origins[p] = Origin{Layer: srcs[i].layer, Key: k}
				break
			}
		}
	}
	return m
}

// mergeInto copies src into dst, recursing into maps present in both and
// copying maps so that dst never shares a map with src.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		sm, ok := v.(map[string]any)
		if !ok {
			dst[k] = v
			continue
		}
		dm, ok := dst[k].(map[string]any)
		if !ok {
			dm = make(map[string]any, len(sm))
			dst[k] = dm
		}
		mergeInto(dm, sm)
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

// flatKeys maps every leaf path of tree to key; used for layers whose whole
// content comes from one place (a file, the defaults).
func flatKeys(tree map[string]any, key string) map[string]string {
	flat := make(map[string]any)
	flatten(tree, "", flat)
	keys := make(map[string]string, len(flat))
	for p := range flat {
		keys[p] = key
	}
	return keys
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
