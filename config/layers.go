package config

import (
	"sort"
	"strings"

	"github.com/strataconf/strata/providers"
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
}

// merged is the union of all layers in precedence order.
type merged struct {
	tree    map[string]any    // nested, for binding
	values  map[string]any    // flat path → leaf value, for change detection
	origins map[string]Origin // flat path → where the value came from
}

// merge combines layers, lowest precedence first. A later layer wins key by
// key (keys are compared as spelled: binder.canonical spells the keys that
// name a field as the field does); a leaf in a later layer replaces a whole
// subtree of an earlier one and the other way round. The layers' trees are
// not modified.
func merge(layers []layer) merged {
	m := merged{tree: make(map[string]any)}
	for _, l := range layers {
		mergeInto(m.tree, l.content.Tree)
	}
	m.values = make(map[string]any)
	flatten(m.tree, "", m.values)
	m.origins = make(map[string]Origin, len(m.values))
	for p := range m.values {
		for i := len(layers) - 1; i >= 0; i-- {
			if k, ok := layers[i].content.Keys[p]; ok {
				m.origins[p] = Origin{Layer: layers[i].kind, Key: k}
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
