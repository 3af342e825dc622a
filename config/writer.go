package config

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/schema"
)

// Writer changes the configuration of type T under one prefix.
//
// The etcd layer is judged as an overlay: applications merge it over their
// defaults, files and environment, which the writer does not see. Before
// anything reaches etcd, a write must leave the etcd layer such that
//
//   - every value it holds binds to its field of T (type, parse), and
//     satisfies that field's validate rules;
//   - a rule that fails only at a path etcd does not set is not an error,
//     unless something says that nothing below etcd provides that path: the
//     writer's defaults (WithWriterDefaults: then T is validated whole over
//     them), or the JSON Schema published at P/meta/schema (an application's
//     WithPublishSchema relaxes it by its own lower layers, so its required
//     lists name what nothing below provides), which the etcd layer must
//     satisfy as it does for RawWriter and the strata CLI.
//
// The commit is one transaction that fails if anything changed since the
// configuration was read, and records a release. Where no schema is
// published, the commit publishes T's (relaxed by the writer's defaults, or
// with nothing required when there are none), so that RawWriter and the
// CLI check what T checks. A Writer is safe for concurrent use.
type Writer[T any] struct {
	raw       *RawWriter
	b         binder[T] // with the tree of WithWriterDefaults, if given
	schemaDoc []byte
}

// NewWriter returns a writer of prefix through cli. The client stays the
// caller's. It fails when T is not a struct, prefix is not an absolute key
// path ("/strata/payments/prod"), the defaults are not a T, or T's JSON
// Schema cannot be generated.
func NewWriter[T any](cli *clientv3.Client, prefix string, opts ...WriterOption) (*Writer[T], error) {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: NewWriter needs a struct type, got %s", typ)
	}
	o := writerOptions{commit: defaultCommitOptions()}
	for _, opt := range opts {
		opt.applyWriter(&o)
	}
	// The raw writer beneath gets the commit options only: T, not a
	// schema given to it, decides what is valid.
	raw, err := newRawWriter(cli, prefix, rawWriterOptions{commitOptions: o.commit})
	if err != nil {
		return nil, err
	}
	w := &Writer[T]{raw: raw, b: newBinder[T]()}
	provided := fieldPaths(typ, "", map[reflect.Type]bool{})
	if o.defaults != nil {
		v, err := w.b.value("WithWriterDefaults", o.defaults)
		if err != nil {
			return nil, err
		}
		if w.b, err = w.b.withDefaults(v); err != nil {
			return nil, err
		}
		provided = flatPaths(w.b.defaults)
	}
	if w.schemaDoc, err = relaxedSchema(typ, provided); err != nil {
		return nil, err
	}
	w.raw.check = w.check
	w.raw.secretsOf = func(*state) []string { return w.b.secrets }
	w.raw.extraOps = func(st *state) []clientv3.Op {
		if st.schema != nil {
			return nil
		}
		return []clientv3.Op{clientv3.OpPut(w.raw.layout.Schema(), string(w.schemaDoc))}
	}
	return w, nil
}

// fieldPaths lists the config paths of every field of struct type t, the
// fields of nested structs included.
func fieldPaths(t reflect.Type, prefix string, seen map[reflect.Type]bool) []string {
	if seen[t] {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var out []string
	for _, f := range codec.Fields(t) {
		p := f.Key
		if prefix != "" {
			p = prefix + "." + f.Key
		}
		out = append(out, p)
		ft := f.Struct.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			out = append(out, fieldPaths(ft, p, seen)...)
		}
	}
	return out
}

// flatPaths lists the leaf paths of a tree.
func flatPaths(tree map[string]any) []string {
	flat := make(map[string]any)
	flatten(tree, "", flat)
	return sortedKeys(flat)
}

// Close stops the watch that keeps the writer's copy of its prefix
// current; see RawWriter.Close.
func (w *Writer[T]) Close() error { return w.raw.Close() }

// Raw returns the untyped writer beneath w; its writes are validated as T.
func (w *Writer[T]) Raw() *RawWriter { return w.raw }

// Schema returns the JSON Schema of T that w publishes.
func (w *Writer[T]) Schema() []byte { return bytes.Clone(w.schemaDoc) }

// PublishSchema stores T's JSON Schema (see Schema) at P/meta/schema now,
// replacing the one published, if any, as a release; see
// RawWriter.PublishSchema.
func (w *Writer[T]) PublishSchema(ctx context.Context, opts ...WriteOption) (*Release, error) {
	return w.raw.PublishSchema(ctx, w.schemaDoc, opts...)
}

// Get returns the configuration as etcd holds it (over the writer's
// defaults), with the newest release version and the revision it was read
// at. It fails with an *InvalidError when a value etcd holds does not bind
// to its field; values that break a validate rule are returned as they are.
func (w *Writer[T]) Get(ctx context.Context) (v *T, version, revision int64, err error) {
	st, err := w.raw.read(ctx, writeFind{})
	if err != nil {
		return nil, 0, 0, err
	}
	v, err = w.current(st.plain)
	if err != nil {
		return nil, 0, 0, err
	}
	return v, st.version, st.revision, nil
}

// Update reads the configuration at revision R, applies fn to it, validates
// the result and commits only the leaves fn changed. When another write
// commits first, Update re-reads and re-runs fn (fn must be safe to run more
// than once), up to WithMaxAttempts times; then, or at once with
// ExpectVersion or ExpectRevision, it fails with ErrConflict. An error from
// fn aborts the write and is returned as is. fn gets the values etcd holds
// over the writer's defaults; a value in etcd that does not bind is left at
// its default, and unless fn sets it, the write fails with ErrInvalid.
func (w *Writer[T]) Update(ctx context.Context, fn func(*T) error, opts ...WriteOption) (*Release, error) {
	return w.raw.write(ctx, func(st *state) (Content, error) { return w.apply(st, fn, false) }, 0, opts)
}

// Replace makes the configuration equal v: every leaf of v that differs
// from what etcd holds is written, including values equal to the writer's
// defaults, and leaves v no longer has (map entries, slice elements) are
// deleted. A zero value at a path etcd does not hold is not written (the
// layers below keep providing it); write it with Set to override them.
func (w *Writer[T]) Replace(ctx context.Context, v *T, opts ...WriteOption) (*Release, error) {
	if v == nil {
		return nil, fmt.Errorf("config: Replace with a nil value")
	}
	return w.raw.write(ctx, func(st *state) (Content, error) {
		return w.apply(st, func(t *T) error { *t = *v; return nil }, true)
	}, 0, opts)
}

// Set writes the leaf at a dotted config path ("db.pool") as text, after
// validating the result.
func (w *Writer[T]) Set(ctx context.Context, configPath, value string, opts ...WriteOption) (*Release, error) {
	return w.raw.Set(ctx, configPath, value, opts...)
}

// Delete removes the leaf at a dotted config path (and the leaves beneath
// it), after validating the result: the path falls back to the layers
// below etcd.
func (w *Writer[T]) Delete(ctx context.Context, configPath string, opts ...WriteOption) (*Release, error) {
	return w.raw.Delete(ctx, configPath, opts...)
}

// History lists the newest limit releases, newest first; see
// RawWriter.History.
func (w *Writer[T]) History(ctx context.Context, limit int) ([]Release, error) {
	return w.raw.History(ctx, limit)
}

// Release returns release n and its content; see RawWriter.Release.
func (w *Writer[T]) Release(ctx context.Context, n int64) (*Release, Content, error) {
	return w.raw.Release(ctx, n)
}

// Rollback writes a new release whose content equals release n's, after
// validating it as T (the type may have changed since). It works after etcd
// compacted release n's revision.
func (w *Writer[T]) Rollback(ctx context.Context, n int64, opts ...WriteOption) (*Release, error) {
	return w.raw.Rollback(ctx, n, opts...)
}

// apply computes the content after fn: the leaves whose text changed are
// written, the leaves that disappeared are deleted, everything else (other
// keys, documents) stays as it is. With exact (Replace), the leaves are
// compared with what etcd alone holds, so a value equal to a default is
// written too; else with the values fn was given.
func (w *Writer[T]) apply(st *state, fn func(*T) error, exact bool) (Content, error) {
	cur, _ := w.current(st.plain) // a value that does not bind stays at its default
	next, _ := w.current(st.plain)
	if err := fn(next); err != nil {
		return nil, err
	}
	over := w.b.over
	if exact {
		over = func(tree map[string]any) map[string]any { return tree }
		cur = new(T)
		if tree, _, err := w.raw.tree(st.plain); err == nil {
			w.b.lenient(codec.Canonical(tree, w.b.typ, nil), cur)
		}
	}
	before, err := codec.Leaves(cur)
	if err != nil {
		return nil, fmt.Errorf("config: render current configuration: %w", err)
	}
	after, err := codec.Leaves(next)
	if err != nil {
		return nil, fmt.Errorf("config: render new configuration: %w", err)
	}
	c := maps.Clone(st.plain)
	for _, p := range sortedKeys(after) {
		if old, held := before[p]; held && old == after[p] {
			continue
		}
		key, err := leafKey(p)
		if err != nil {
			return nil, err
		}
		// A leaf replaces what etcd held beneath it (a slice stored as
		// index keys tags/0, tags/1 becomes one JSON text).
		for k := range c {
			if strings.HasPrefix(k, key+"/") {
				delete(c, k)
			}
		}
		c[key] = after[p]
	}
	for p := range before {
		if _, ok := after[p]; ok {
			continue
		}
		key, err := leafKey(p)
		if err != nil {
			return nil, err
		}
		n := 0
		for k := range c {
			if k == key || strings.HasPrefix(k, key+"/") { // tags/0, tags/1 for tags
				delete(c, k)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("config: cannot remove %s: it is not a leaf key in etcd (it comes from a document key or the defaults)", p)
		}
	}
	// What readers will bind must be what fn made.
	tree, _, err := w.raw.tree(c)
	if err != nil {
		return nil, err
	}
	back := new(T)
	if _, err := codec.Bind(over(tree), back); err != nil {
		return c, nil // validate reports it, naming the key
	}
	got, err := codec.Leaves(back)
	if err != nil {
		return nil, err
	}
	for _, p := range sortedKeys(after) {
		if got[p] != after[p] {
			return nil, fmt.Errorf("config: %s cannot be stored as leaf keys (it reads back differently); map keys must not contain '.' or '/'", p)
		}
	}
	return c, nil
}

// current binds content over the defaults, leniently: a value that does
// not bind is left as the defaults have it, and reported.
func (w *Writer[T]) current(c Content) (*T, error) {
	v := new(T)
	tree, origins, err := w.raw.tree(c)
	if err != nil {
		tree, origins = map[string]any{}, nil
	}
	if berr := w.b.lenient(w.b.over(tree), v); berr != nil {
		return v, w.b.invalid(berr, origins, 0)
	}
	return v, err
}

// check applies the overlay rule to the etcd layer's tree (see Writer).
func (w *Writer[T]) check(tree map[string]any, origins map[string]Origin) error {
	v := new(T)
	if _, err := codec.Bind(w.b.over(tree), v); err != nil {
		return w.b.invalid(err, origins, 0)
	}
	err := schema.Validate(v)
	var ve *schema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		if err != nil {
			return w.b.invalid(err, origins, 0)
		}
		return nil
	}
	if w.b.defaults == nil { // judge only what etcd sets
		kept := &schema.ValidationError{}
		for _, fe := range ve.Fields {
			if etcdSets(origins, fe.Path) {
				kept.Fields = append(kept.Fields, fe)
			}
		}
		if len(kept.Fields) == 0 {
			return nil
		}
		ve = kept
	}
	return w.b.invalid(ve, origins, 0)
}

// etcdSets reports whether the etcd layer provides the value at a
// validation path ("servers[0].host", "labels[env]"): the path itself, a
// path beneath it, or a leaf above it that holds it whole (JSON text).
func etcdSets(origins map[string]Origin, vpath string) bool {
	p := strings.ToLower(dotted(vpath))
	for o := range origins {
		o = strings.ToLower(o)
		if o == p || strings.HasPrefix(o, p+".") || strings.HasPrefix(p, o+".") {
			return true
		}
	}
	return false
}

// prune removes the value at a dotted path from tree.
func prune(tree map[string]any, path string) {
	segs := strings.Split(path, ".")
	m := tree
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
	delete(m, segs[len(segs)-1])
}
