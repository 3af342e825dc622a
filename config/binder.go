package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// binder is what Load and Writer[T] know of T: which keys name its fields
// (whatever their case), which paths are secret, the defaults a writer
// judges etcd over, how a tree binds and validates, and how a failure is
// told without showing a secret. It is not modified after construction.
type binder[T any] struct {
	typ      reflect.Type
	secrets  []string       // config paths of fields tagged secret
	defaults map[string]any // Writer[T]: tree of WithWriterDefaults beneath every tree; nil without
}

func newBinder[T any]() binder[T] {
	typ := reflect.TypeFor[T]()
	return binder[T]{typ: typ, secrets: schema.SecretPaths(typ)}
}

// canonical returns c with every key that names a field of T but for case
// spelled as the field's key, in the tree and in the keys of its leaves, so
// that layers agree on which keys are the same (see codec.Canonical). When
// lv stands for c's Keys (nil; see layer.leaves), a renaming builds them
// from lv: the result's Keys are not nil then.
func (b binder[T]) canonical(c *providers.Content, lv *etcdprov.Leaves) *providers.Content {
	var moves [][2]string
	tree := codec.Canonical(c.Tree, b.typ, func(from, to string) { moves = append(moves, [2]string{from, to}) })
	out := *c
	out.Tree = tree
	if len(moves) > 0 {
		keys := c.Keys
		if keys == nil && lv != nil {
			keys = lv.Map()
		}
		out.Keys = maps.Clone(keys)
		for _, m := range moves {
			delete(out.Keys, m[0])
		}
		for _, m := range moves {
			if k, ok := keys[m[0]]; ok {
				out.Keys[m[1]] = k
			}
		}
	}
	return &out
}

// value returns v, given to option (WithDefaults, WithWriterDefaults), as
// a T: v is a T or a non-nil *T.
func (b binder[T]) value(option string, v any) (T, error) {
	switch v := v.(type) {
	case T:
		return v, nil
	case *T:
		if v != nil {
			return *v, nil
		}
		return *new(T), fmt.Errorf("config: %s got a nil *%s", option, b.typ)
	}
	return *new(T), fmt.Errorf("config: %s got %T, want %s or *%[3]s", option, v, b.typ)
}

// withDefaults returns b judging every tree over v's values.
func (b binder[T]) withDefaults(v T) (binder[T], error) {
	tree, err := codec.ToMap(v)
	if err != nil {
		return b, fmt.Errorf("config: WithWriterDefaults: %w", err)
	}
	b.defaults = tree
	return b, nil
}

// over returns tree, spelled canonically for T, merged over the defaults
// (just the canonical tree without defaults).
func (b binder[T]) over(tree map[string]any) map[string]any {
	tree = codec.Canonical(tree, b.typ, nil)
	if b.defaults == nil {
		return tree
	}
	return overlay(b.defaults, tree)
}

// lenient binds tree onto v, leaving out the values that do not bind, and
// returns the bind error (nil when everything bound).
func (b binder[T]) lenient(tree map[string]any, v *T) error {
	_, err := codec.Bind(tree, v)
	var be *codec.BindError
	if err == nil || !errors.As(err, &be) {
		return err
	}
	pruned, _ := codec.DeepCopy(tree).(map[string]any)
	for _, fe := range be.Fields {
		prune(pruned, fe.Path)
	}
	codec.Bind(pruned, v)
	return err
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
