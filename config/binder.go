package config

import (
	"maps"
	"reflect"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
	"github.com/strataconf/strata/schema"
)

// binder is what Load and Writer[T] know of T: which keys name its fields
// (whatever their case), which paths are secret, how a tree binds and
// validates, and how a failure is told without showing a secret. It holds
// no mutable state.
type binder[T any] struct {
	typ     reflect.Type
	secrets []string // config paths of fields tagged secret
}

func newBinder[T any]() binder[T] {
	typ := reflect.TypeFor[T]()
	return binder[T]{typ: typ, secrets: schema.SecretPaths(typ)}
}

// canonical returns c with every key that names a field of T but for case
// spelled as the field's key, in the tree and in the keys of its leaves, so
// that layers agree on which keys are the same (see codec.Canonical).
func (b binder[T]) canonical(c *providers.Content) *providers.Content {
	var moves [][2]string
	tree := codec.Canonical(c.Tree, b.typ, func(from, to string) { moves = append(moves, [2]string{from, to}) })
	out := *c
	out.Tree = tree
	if len(moves) > 0 {
		out.Keys = maps.Clone(c.Keys)
		for _, m := range moves {
			delete(out.Keys, m[0])
		}
		for _, m := range moves {
			if k, ok := c.Keys[m[0]]; ok {
				out.Keys[m[1]] = k
			}
		}
	}
	return &out
}

// bind binds tree to a new T and validates it. A failure is an
// *InvalidError naming each path, where its value came from (origins) and
// the etcd revision rev, with secret values masked. unused lists the paths
// of tree that match no field.
func (b binder[T]) bind(tree map[string]any, origins map[string]Origin, rev int64) (v *T, unused []string, err error) {
	v = new(T)
	unused, err = codec.Bind(tree, v)
	if err != nil {
		return nil, nil, b.invalid(err, origins, rev)
	}
	if err := schema.Validate(v); err != nil {
		return nil, nil, b.invalid(err, origins, rev)
	}
	return v, unused, nil
}

// invalid shapes a bind or validation error for people: an *InvalidError
// with secret values masked.
func (b binder[T]) invalid(err error, origins map[string]Origin, rev int64) error {
	return invalidError(err, origins, rev, b.secrets)
}
