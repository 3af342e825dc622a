// Package tree holds the strata CLI's work on configuration trees: building
// the tree of a prefix's content as readers do, rendering its text leaves
// with the types a JSON Schema gives them, masking secrets, flattening, and
// turning a document back into content (see Build).
package tree

import (
	"fmt"
	"sort"
	"strings"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// Mask is shown instead of a secret value.
const Mask = config.Mask

// Of builds the configuration tree of content c under layout l exactly as
// readers do (providers/etcd Data.Tree). leafPaths holds the config paths
// whose value comes from a leaf key (text), as opposed to a document key.
func Of(l etcdprov.Layout, c config.Content) (tree map[string]any, leafPaths map[string]bool, err error) {
	d := &etcdprov.Data{KVs: make(map[string][]byte, len(c))}
	for k, v := range c {
		d.KVs[l.DataKey(k)] = []byte(v)
	}
	return fromData(l, d)
}

// FromData builds the tree of d, like Of.
func FromData(l etcdprov.Layout, d *etcdprov.Data) (map[string]any, map[string]bool, error) {
	return fromData(l, d)
}

func fromData(l etcdprov.Layout, d *etcdprov.Data) (map[string]any, map[string]bool, error) {
	t, sources, err := d.Tree(l)
	if err != nil {
		return nil, nil, err
	}
	leafPaths := make(map[string]bool)
	for p, k := range sources {
		if e, err := l.Parse(k); err == nil && e.Codec == nil {
			leafPaths[p] = true
		}
	}
	return t, leafPaths, nil
}

// Lookup returns the value at a dotted path ("" is the whole tree).
func Lookup(t map[string]any, path string) (any, bool) {
	if path == "" {
		return t, true
	}
	var cur any = t
	for _, s := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[s]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// set puts v at a dotted path, creating maps on the way. It reports false
// when a non-map value lies on the way.
func set(t map[string]any, path string, v any) bool {
	segs := strings.Split(path, ".")
	m := t
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			return false
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
	return true
}

// Clone deep-copies the maps and slices of a tree.
func Clone(t map[string]any) map[string]any {
	return cloneValue(t).(map[string]any)
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// MaskSecrets returns a copy of t whose values at (or below) the secret
// paths are Mask: a secret map or list is shown as one Mask, the elements
// of maps and lists are matched by the paths' wildcards (schema.MaskTree).
func MaskSecrets(t map[string]any, secrets []string) map[string]any {
	return schema.MaskTree(t, secrets)
}

// Flatten maps every leaf of t (anything but a non-empty map) to its dotted
// path; nil values are left out, as readers treat them as absent.
func Flatten(t map[string]any) map[string]any {
	out := make(map[string]any)
	flatten(t, "", out)
	return out
}

func flatten(m map[string]any, prefix string, out map[string]any) {
	for k, v := range m {
		p := join(prefix, k)
		switch v := v.(type) {
		case nil:
		case map[string]any:
			if len(v) == 0 {
				out[p] = v
				continue
			}
			flatten(v, p, out)
		default:
			out[p] = v
		}
	}
}

// Texts flattens t and renders every leaf as leaf text (codec.EncodeLeaf),
// the form in which values are written to etcd and compared.
func Texts(t map[string]any) (map[string]string, error) {
	flat := Flatten(t)
	out := make(map[string]string, len(flat))
	for p, v := range flat {
		s, err := codec.EncodeLeaf(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[p] = s
	}
	return out, nil
}

// Change is one path that differs between two trees.
type Change struct {
	Path     string
	Kind     config.ChangeKind
	Old, New string // leaf text; Mask for secrets
}

// Diff lists the paths whose leaf text differs from old to new, sorted,
// with the values of secret paths masked.
func Diff(old, new map[string]string, secrets []string) []Change {
	var out []Change
	for p, v := range new {
		ov, ok := old[p]
		switch {
		case !ok:
			out = append(out, Change{Path: p, Kind: config.Added, New: v})
		case ov != v:
			out = append(out, Change{Path: p, Kind: config.Changed, Old: ov, New: v})
		}
	}
	for p, v := range old {
		if _, ok := new[p]; !ok {
			out = append(out, Change{Path: p, Kind: config.Deleted, Old: v})
		}
	}
	for i := range out {
		if schema.HoldsSecret(secrets, out[i].Path) { // a leaf above a secret (JSON text) holds it whole
			if out[i].Old != "" {
				out[i].Old = Mask
			}
			if out[i].New != "" {
				out[i].New = Mask
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// KeyPath renders a data key (relative to P/data/) for people: a leaf key
// as its dotted config path ("db/port" → "db.port"), a document key as is
// ("labels.yaml").
func KeyPath(key string) string {
	if _, isDoc := codec.ForPath(key); isDoc {
		return key
	}
	return strings.ReplaceAll(key, "/", ".")
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// under reports whether path p is q or lies below q ("" is the root).
func under(p, q string) bool {
	return q == "" || p == q || strings.HasPrefix(p, q+".")
}
