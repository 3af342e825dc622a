package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// RawWriter writes the content of one prefix without knowing its Go type:
// key by key, checked against a JSON Schema (by default the one published
// at P/meta/schema), in versioned compare-and-swap transactions that each
// record a release. Writer[T] is built on it; the strata CLI uses it
// directly. A RawWriter is safe for concurrent use.
type RawWriter struct {
	cli    *clientv3.Client
	layout etcdprov.Layout
	opts   writerOptions
	// check replaces the schema check (Writer[T] binds and validates T).
	check func(Content) error
	// secretsOf returns the secret paths for masking, given the state.
	secretsOf func(*state) []string
	// extraOps adds operations to each commit (Writer[T] publishes its
	// schema).
	extraOps func(*state) []clientv3.Op
}

// NewRawWriter returns a writer of prefix through cli. The client stays the
// caller's.
func NewRawWriter(cli *clientv3.Client, prefix string, opts ...WriterOption) *RawWriter {
	o := writerOptions{retention: DefaultRetention, maxAttempts: DefaultMaxAttempts, timeout: etcdprov.DefaultRequestTimeout}
	for _, fn := range opts {
		fn(&o)
	}
	w := &RawWriter{cli: cli, layout: etcdprov.NewLayout(prefix), opts: o}
	w.secretsOf = w.schemaSecrets
	return w
}

// state is what one write read, at one etcd revision.
type state struct {
	revision   int64
	version    int64
	versionRev int64 // mod revision of the version key; 0 if absent
	content    Content
	modRevs    map[string]int64 // data key (relative) → mod revision
	schema     []byte           // published JSON Schema, nil if none
}

// read gets data, version and schema in one read-only transaction, so they
// belong to one revision.
func (w *RawWriter) read(ctx context.Context) (*state, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Txn(ctx).Then(
		clientv3.OpGet(w.layout.Data(), clientv3.WithPrefix()),
		clientv3.OpGet(w.layout.Version()),
		clientv3.OpGet(w.layout.Schema()),
	).Commit()
	if err != nil {
		return nil, w.wrap("read "+w.layout.Prefix(), err)
	}
	st := &state{revision: resp.Header.Revision, content: Content{}, modRevs: map[string]int64{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		k := strings.TrimPrefix(string(kv.Key), w.layout.Data())
		st.content[k] = string(kv.Value)
		st.modRevs[k] = kv.ModRevision
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		v, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("config: guard key %s holds %q, not a version number", w.layout.Version(), kvs[0].Value)
		}
		st.version, st.versionRev = v, kvs[0].ModRevision
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		st.schema = kvs[0].Value
	}
	return st, nil
}

func (w *RawWriter) wrap(op string, err error) error {
	return fmt.Errorf("etcd [%s]: %s: %w", strings.Join(w.cli.Endpoints(), ","), op, err)
}

// Read returns the current content, the newest release version and the
// etcd revision they were read at.
func (w *RawWriter) Read(ctx context.Context) (c Content, version, revision int64, err error) {
	st, err := w.read(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	return st.content, st.version, st.revision, nil
}

// Schema returns the JSON Schema published at P/meta/schema, or ErrNotFound.
func (w *RawWriter) Schema(ctx context.Context) ([]byte, error) {
	st, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	if st.schema == nil {
		return nil, fmt.Errorf("config: no schema published at %s: %w", w.layout.Schema(), ErrNotFound)
	}
	return st.schema, nil
}

// PublishSchema stores doc (a JSON Schema) at P/meta/schema after checking
// that it compiles.
func (w *RawWriter) PublishSchema(ctx context.Context, doc []byte) error {
	if _, err := schema.Compile(doc); err != nil {
		return fmt.Errorf("config: schema does not compile: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	if _, err := w.cli.Put(ctx, w.layout.Schema(), string(doc)); err != nil {
		return w.wrap("publish schema", err)
	}
	return nil
}

// Replace makes the content exactly c: keys not in c are deleted.
func (w *RawWriter) Replace(ctx context.Context, c Content, opts ...WriteOption) (*Release, error) {
	return w.write(ctx, func(*state) (Content, error) { return maps.Clone(c), nil }, 0, opts)
}

// Modify applies fn to a copy of the current content and writes the
// result. fn may run more than once when the write loses a race.
func (w *RawWriter) Modify(ctx context.Context, fn func(Content) error, opts ...WriteOption) (*Release, error) {
	return w.write(ctx, func(st *state) (Content, error) {
		c := maps.Clone(st.content)
		if err := fn(c); err != nil {
			return nil, err
		}
		return c, nil
	}, 0, opts)
}

// Set writes the leaf at a dotted config path ("db.port") as text.
func (w *RawWriter) Set(ctx context.Context, configPath, value string, opts ...WriteOption) (*Release, error) {
	key, err := leafKey(configPath)
	if err != nil {
		return nil, err
	}
	return w.Modify(ctx, func(c Content) error { c[key] = value; return nil }, opts...)
}

// Delete removes the leaf at a dotted config path and every leaf beneath
// it. It fails with ErrNotFound when there is none.
func (w *RawWriter) Delete(ctx context.Context, configPath string, opts ...WriteOption) (*Release, error) {
	key, err := leafKey(configPath)
	if err != nil {
		return nil, err
	}
	return w.Modify(ctx, func(c Content) error {
		n := 0
		for k := range c {
			if k == key || strings.HasPrefix(k, key+"/") {
				delete(c, k)
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("config: no leaf key at %s: %w", configPath, ErrNotFound)
		}
		return nil
	}, opts...)
}

// leafKey maps a dotted config path to its leaf key relative to P/data/.
func leafKey(configPath string) (string, error) {
	if configPath == "" || strings.Contains(configPath, "/") {
		return "", fmt.Errorf("config: %q is not a config path (dotted, like db.port)", configPath)
	}
	for _, s := range strings.Split(configPath, ".") {
		if s == "" {
			return "", fmt.Errorf("config: %q has an empty path segment", configPath)
		}
	}
	return strings.ReplaceAll(configPath, ".", "/"), nil
}

// History lists the newest limit entries, newest first (limit <= 0: all
// that retention kept). When the data differs from the newest release, the
// list starts with an Unrecorded entry naming the keys changed around the
// writer; it counts towards limit.
func (w *RawWriter) History(ctx context.Context, limit int) ([]Release, error) {
	st, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithRev(st.revision)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	rctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Get(rctx, w.layout.Releases(), opts...)
	if err != nil {
		return nil, w.wrap("read releases", err)
	}
	out := make([]Release, 0, len(resp.Kvs)+1)
	var newest Content = Content{}
	for i, kv := range resp.Kvs {
		r, err := decodeRecord(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			newest = r.Content
		}
		out = append(out, *r.release(kv.ModRevision))
	}
	if (len(resp.Kvs) > 0 || len(st.content) > 0) && newest.Hash() != st.content.Hash() {
		changes := diffContent(newest, st.content)
		var rev int64
		for i := range changes {
			changes[i].Old, changes[i].New = "", ""
			rev = max(rev, st.modRevs[changes[i].Key])
		}
		if rev == 0 {
			rev = st.revision // only deletes: their revision is not kept
		}
		u := Release{Version: st.version, Revision: rev, Hash: st.content.Hash(), Changes: changes, Unrecorded: true,
			Message: fmt.Sprintf("%d key(s) changed outside the writer", len(changes))}
		out = append([]Release{u}, out...)
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
	}
	return out, nil
}

// Release returns release n and its full content, or ErrNotFound when it
// never existed or retention removed it.
func (w *RawWriter) Release(ctx context.Context, n int64) (*Release, Content, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	key := releaseKey(w.layout.Releases(), n)
	resp, err := w.cli.Get(ctx, key)
	if err != nil {
		return nil, nil, w.wrap("read release", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, fmt.Errorf("config: release %d of %s: %w", n, w.layout.Prefix(), ErrNotFound)
	}
	r, err := decodeRecord(key, resp.Kvs[0].Value)
	if err != nil {
		return nil, nil, err
	}
	return r.release(resp.Kvs[0].ModRevision), r.Content, nil
}

// Rollback writes a new release whose content equals release n's. It
// works from the release record alone, so it does not need etcd's history
// of that revision (which compaction may have removed).
func (w *RawWriter) Rollback(ctx context.Context, n int64, opts ...WriteOption) (*Release, error) {
	_, content, err := w.Release(ctx, n)
	if err != nil {
		return nil, err
	}
	opts = append([]WriteOption{Message(fmt.Sprintf("rollback to release %d", n))}, opts...)
	return w.write(ctx, func(*state) (Content, error) { return maps.Clone(content), nil }, n, opts)
}

// errRetry marks a commit that lost a race and may be re-run.
var errRetry = errors.New("retry")

// write is the one path every write takes: read at revision R, compute the
// next content, validate it whole, and commit it with a release record in
// one transaction guarded by the version key and by no data key having
// changed since R. A lost race re-runs next (up to maxAttempts) unless
// ExpectVersion was given.
func (w *RawWriter) write(ctx context.Context, next func(*state) (Content, error), rollbackOf int64, opts []WriteOption) (*Release, error) {
	var wo writeOptions
	for _, o := range opts {
		o(&wo)
	}
	backoff := time.Millisecond
	for attempt := 1; ; attempt++ {
		rel, err := w.attempt(ctx, next, rollbackOf, wo)
		if !errors.Is(err, errRetry) {
			return rel, err
		}
		var ce *ConflictError
		errors.As(err, &ce)
		if wo.expectSet || wo.expectRev > 0 || attempt >= w.opts.maxAttempts {
			return nil, ce
		}
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return nil, fmt.Errorf("config: write gave up after %d attempts: %w (%w)", attempt, ctx.Err(), ce)
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func (w *RawWriter) attempt(ctx context.Context, next func(*state) (Content, error), rollbackOf int64, wo writeOptions) (*Release, error) {
	st, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	if wo.expectSet && st.version != wo.expect {
		return nil, &ConflictError{Expected: wo.expect, Current: st.version}
	}
	since := st.revision // the guard: no data key modified after this revision
	if wo.expectRev > 0 {
		for k, r := range st.modRevs {
			if r > wo.expectRev {
				return nil, &ConflictError{Expected: st.version, Current: st.version,
					Reason: fmt.Sprintf("data key %s changed at revision %d, after revision %d", k, r, wo.expectRev)}
			}
		}
		since = min(since, wo.expectRev)
	}
	c, err := next(st)
	if err != nil {
		return nil, err
	}
	if err := w.validate(st, c); err != nil {
		return nil, err
	}
	changes := diffContent(st.content, c)
	w.mask(st, changes)
	rel := &Release{Version: st.version + 1, Author: wo.author, Message: wo.message, Time: time.Now().UTC(),
		Hash: c.Hash(), RollbackOf: rollbackOf, Changes: changes, DryRun: wo.dryRun}
	if wo.dryRun {
		return rel, nil
	}
	if len(changes) == 0 {
		return &Release{Version: st.version, Revision: st.revision, Hash: c.Hash()}, nil
	}

	rec := record{Version: rel.Version, Author: rel.Author, Message: rel.Message, Time: rel.Time, Hash: rel.Hash,
		RollbackOf: rollbackOf, Content: c}
	for _, ch := range changes {
		rec.Changes = append(rec.Changes, KeyChange{Key: ch.Key, Kind: ch.Kind})
	}
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("config: encode release record: %w", err)
	}
	var ops []clientv3.Op
	for _, ch := range changes {
		if ch.Kind == Deleted {
			ops = append(ops, clientv3.OpDelete(w.layout.Data()+ch.Key))
		} else {
			ops = append(ops, clientv3.OpPut(w.layout.Data()+ch.Key, c[ch.Key]))
		}
	}
	ops = append(ops,
		clientv3.OpPut(w.layout.Version(), strconv.FormatInt(rel.Version, 10)),
		clientv3.OpPut(releaseKey(w.layout.Releases(), rel.Version), string(recJSON)))
	if keep := int64(w.opts.retention); rel.Version > keep {
		ops = append(ops, clientv3.OpDelete(releaseKey(w.layout.Releases(), 0),
			clientv3.WithRange(releaseKey(w.layout.Releases(), rel.Version-keep+1))))
	}
	if w.extraOps != nil {
		ops = append(ops, w.extraOps(st)...)
	}
	guard := clientv3.Compare(clientv3.ModRevision(w.layout.Version()), "=", st.versionRev)
	unchanged := clientv3.Compare(clientv3.ModRevision(w.layout.Data()), "<", since+1).WithPrefix()

	tctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(guard, unchanged).Then(ops...).Else(clientv3.OpGet(w.layout.Version())).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrTooManyOps) {
			return nil, w.wrap(fmt.Sprintf("commit of %d key changes", len(changes)), fmt.Errorf("%w (raise etcd's --max-txn-ops or split the change)", err))
		}
		return nil, w.wrap("commit", err)
	}
	if !resp.Succeeded {
		cur := st.version
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cur, _ = strconv.ParseInt(string(kvs[0].Value), 10, 64)
		}
		return nil, fmt.Errorf("%w: %w", errRetry, &ConflictError{Expected: st.version, Current: cur})
	}
	rel.Revision = resp.Header.Revision
	return rel, nil
}

// validate checks the whole candidate content before anything is written.
func (w *RawWriter) validate(st *state, c Content) error {
	if w.check != nil {
		return w.check(c)
	}
	if w.opts.noSchema {
		return nil
	}
	doc := w.opts.schema
	if doc == nil {
		doc = st.schema
	}
	if doc == nil {
		return nil
	}
	sch, err := schema.Compile(doc)
	if err != nil {
		return fmt.Errorf("config: schema of %s does not compile: %w", w.layout.Prefix(), err)
	}
	tree, origins, err := w.tree(c)
	if err != nil {
		return err
	}
	if err := sch.Check(tree); err != nil {
		return invalidError(err, origins, 0, sch.SecretPaths())
	}
	return nil
}

// tree builds the configuration tree of content c, as readers will.
func (w *RawWriter) tree(c Content) (map[string]any, map[string]Origin, error) {
	d := &etcdprov.Data{KVs: make(map[string][]byte, len(c))}
	for k, v := range c {
		d.KVs[w.layout.Data()+k] = []byte(v)
	}
	tree, keys, err := d.Tree(w.layout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	origins := make(map[string]Origin, len(keys))
	for p, k := range keys {
		origins[p] = Origin{Layer: LayerEtcd, Key: k}
	}
	return tree, origins, nil
}

// schemaSecrets are the secret paths of the schema in force plus those
// given with WithSecretPaths.
func (w *RawWriter) schemaSecrets(st *state) []string {
	secrets := w.opts.secrets
	doc := w.opts.schema
	if doc == nil {
		doc = st.schema
	}
	if doc != nil {
		if sch, err := schema.Compile(doc); err == nil {
			secrets = append(secrets, sch.SecretPaths()...)
		}
	}
	return secrets
}

// mask hides the values of secret paths in changes. A document key is
// masked whole when a secret lies inside it.
func (w *RawWriter) mask(st *state, changes []KeyChange) {
	secrets := w.secretsOf(st)
	if len(secrets) == 0 {
		return
	}
	for i := range changes {
		if keyIsSecret(secrets, changes[i].Key) {
			if changes[i].Old != "" {
				changes[i].Old = Mask
			}
			if changes[i].New != "" {
				changes[i].New = Mask
			}
		}
	}
}

// keyIsSecret reports whether a data key (relative) holds a secret value.
func keyIsSecret(secrets []string, key string) bool {
	p := strings.TrimSuffix(key, path.Ext(key))
	p = strings.ReplaceAll(p, "/", ".")
	if schema.IsSecret(secrets, p) {
		return true
	}
	if path.Ext(key) != "" { // a document: secret if any secret lies inside
		for _, s := range secrets {
			if p == "" || strings.HasPrefix(s, p+".") {
				return true
			}
		}
	}
	return false
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
