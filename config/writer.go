package config

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/schema"
)

// Writer changes the configuration of type T under one prefix. Every write
// is validated whole (bound to T over the writer's defaults and checked
// with its validate tags) before anything reaches etcd, and committed in one
// transaction that fails if anything changed since it was read, together
// with a release record. Each commit also publishes T's JSON Schema at
// P/meta/schema when it differs. A Writer is safe for concurrent use.
type Writer[T any] struct {
	raw       *RawWriter
	defaults  map[string]any // tree of WithWriterDefaults, nil without
	secrets   []string
	schemaDoc []byte
	initErr   error
}

// NewWriter returns a writer of prefix through cli. The client stays the
// caller's.
func NewWriter[T any](cli *clientv3.Client, prefix string, opts ...WriterOption) *Writer[T] {
	typ := reflect.TypeFor[T]()
	w := &Writer[T]{raw: NewRawWriter(cli, prefix, opts...), secrets: schema.SecretPaths(typ)}
	if typ.Kind() != reflect.Struct {
		w.initErr = fmt.Errorf("config: NewWriter needs a struct type, got %s", typ)
		return w
	}
	if d := w.raw.opts.defaults; d != nil {
		var v T
		switch d := d.(type) {
		case T:
			v = d
		case *T:
			if d != nil {
				v = *d
			}
		default:
			w.initErr = fmt.Errorf("config: WithWriterDefaults got %T, want %s", d, typ)
			return w
		}
		w.defaults, w.initErr = codec.ToMap(v)
	}
	if w.initErr == nil {
		w.schemaDoc, w.initErr = relaxedSchema(typ, flatPaths(w.defaults))
	}
	w.raw.check = w.check
	w.raw.secretsOf = func(*state) []string { return w.secrets }
	w.raw.extraOps = func(st *state) []clientv3.Op {
		if bytes.Equal(st.schema, w.schemaDoc) {
			return nil
		}
		return []clientv3.Op{clientv3.OpPut(w.raw.layout.Schema(), string(w.schemaDoc))}
	}
	return w
}

// flatPaths lists the leaf paths of a tree.
func flatPaths(tree map[string]any) []string {
	flat := make(map[string]any)
	flatten(tree, "", flat)
	return sortedKeys(flat)
}

// Raw returns the untyped writer beneath w; its writes are validated as T.
func (w *Writer[T]) Raw() *RawWriter { return w.raw }

// Schema returns the JSON Schema of T that w publishes.
func (w *Writer[T]) Schema() []byte { return bytes.Clone(w.schemaDoc) }

// PublishSchema stores T's JSON Schema at P/meta/schema now, without
// waiting for the next write.
func (w *Writer[T]) PublishSchema(ctx context.Context) error {
	if w.initErr != nil {
		return w.initErr
	}
	return w.raw.PublishSchema(ctx, w.schemaDoc)
}

// Get returns the configuration as etcd holds it (over the writer's
// defaults), with the newest release version and the revision it was read
// at.
func (w *Writer[T]) Get(ctx context.Context) (v *T, version, revision int64, err error) {
	if w.initErr != nil {
		return nil, 0, 0, w.initErr
	}
	st, err := w.raw.read(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	v, err = w.bind(st.content)
	if err != nil {
		return nil, 0, 0, err
	}
	return v, st.version, st.revision, nil
}

// Update reads the configuration at revision R, applies fn to it, validates
// the result and commits only the leaves fn changed. When another write
// commits first, Update re-reads and re-runs fn (fn must be safe to run more
// than once), up to WithMaxAttempts times; then, or at once with
// ExpectVersion, it fails with ErrConflict. An error from fn aborts the
// write and is returned as is.
func (w *Writer[T]) Update(ctx context.Context, fn func(*T) error, opts ...WriteOption) (*Release, error) {
	if w.initErr != nil {
		return nil, w.initErr
	}
	return w.raw.write(ctx, func(st *state) (Content, error) { return w.apply(st, fn) }, 0, opts)
}

// Replace makes the configuration equal v: changed leaves are written,
// leaves v no longer has are deleted.
func (w *Writer[T]) Replace(ctx context.Context, v *T, opts ...WriteOption) (*Release, error) {
	if v == nil {
		return nil, fmt.Errorf("config: Replace with a nil value")
	}
	return w.Update(ctx, func(t *T) error { *t = *v; return nil }, opts...)
}

// Set writes the leaf at a dotted config path ("db.pool") as text, after
// validating the whole result as T.
func (w *Writer[T]) Set(ctx context.Context, configPath, value string, opts ...WriteOption) (*Release, error) {
	if w.initErr != nil {
		return nil, w.initErr
	}
	return w.raw.Set(ctx, configPath, value, opts...)
}

// Delete removes the leaf at a dotted config path (and the leaves beneath
// it), after validating the result: the path falls back to the layers
// below etcd.
func (w *Writer[T]) Delete(ctx context.Context, configPath string, opts ...WriteOption) (*Release, error) {
	if w.initErr != nil {
		return nil, w.initErr
	}
	return w.raw.Delete(ctx, configPath, opts...)
}

// History lists the newest limit releases, newest first; see
// RawWriter.History.
func (w *Writer[T]) History(ctx context.Context, limit int) ([]Release, error) {
	return w.raw.History(ctx, limit)
}

// Rollback writes a new release whose content equals release n's, after
// validating it as T (the type may have changed since). It works after etcd
// compacted release n's revision.
func (w *Writer[T]) Rollback(ctx context.Context, n int64, opts ...WriteOption) (*Release, error) {
	if w.initErr != nil {
		return nil, w.initErr
	}
	return w.raw.Rollback(ctx, n, opts...)
}

// apply computes the content after fn: the leaves whose text changed are
// written, the leaves that disappeared are deleted, everything else (other
// keys, documents) stays as it is.
func (w *Writer[T]) apply(st *state, fn func(*T) error) (Content, error) {
	cur, err := w.bind(st.content)
	if err != nil {
		return nil, fmt.Errorf("config: the current configuration does not bind, fix it with Set, Delete or Rollback: %w", err)
	}
	next, _ := w.bind(st.content) // an independent copy
	if err := fn(next); err != nil {
		return nil, err
	}
	before, err := codec.Leaves(cur)
	if err != nil {
		return nil, fmt.Errorf("config: render current configuration: %w", err)
	}
	after, err := codec.Leaves(next)
	if err != nil {
		return nil, fmt.Errorf("config: render new configuration: %w", err)
	}
	c := maps.Clone(st.content)
	for p, v := range after {
		if before[p] != v {
			key, err := leafKey(p)
			if err != nil {
				return nil, err
			}
			c[key] = v
		}
	}
	for p := range before {
		if _, ok := after[p]; ok {
			continue
		}
		key, err := leafKey(p)
		if err != nil {
			return nil, err
		}
		if _, ok := c[key]; !ok {
			return nil, fmt.Errorf("config: cannot remove %s: it is not a leaf key in etcd (it comes from a document key or the defaults)", p)
		}
		delete(c, key)
	}
	// What readers will bind must be what fn made.
	back, err := w.bind(c)
	if err != nil {
		return nil, err
	}
	got, err := codec.Leaves(back)
	if err != nil {
		return nil, err
	}
	if !maps.Equal(got, after) {
		for _, p := range sortedKeys(after) {
			if got[p] != after[p] {
				return nil, fmt.Errorf("config: %s cannot be stored as leaf keys (it reads back differently); map keys must not contain '.' or '/'", p)
			}
		}
		return nil, fmt.Errorf("config: the new configuration reads back differently from etcd")
	}
	return c, nil
}

// check binds content over the defaults and validates it as T.
func (w *Writer[T]) check(c Content) error {
	_, err := w.bind(c)
	return err
}

// bind builds T from content over the writer's defaults and validates it.
func (w *Writer[T]) bind(c Content) (*T, error) {
	tree, origins, err := w.raw.tree(c)
	if err != nil {
		return nil, err
	}
	if w.defaults != nil {
		merged := make(map[string]any)
		mergeInto(merged, w.defaults)
		mergeInto(merged, tree)
		tree = merged
	}
	v := new(T)
	if _, err := codec.Bind(tree, v); err != nil {
		return nil, invalidError(err, origins, 0, w.secrets)
	}
	if err := schema.Validate(v); err != nil {
		return nil, invalidError(err, origins, 0, w.secrets)
	}
	return v, nil
}
