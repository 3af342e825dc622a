package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/canary"
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
	opts   rawWriterOptions
	// check adds a check before the schema's (Writer[T] binds and
	// validates T); tree and origins describe the etcd layer.
	check func(tree map[string]any, origins map[string]Origin) error
	// secretsOf returns the secret paths for masking, given the state.
	secretsOf func(*state) []string
	// extraOps adds operations to each commit (Writer[T] publishes its
	// schema where none is published).
	extraOps func(*state) []clientv3.Op

	caches *cacheHolder // the writer's copy of its prefix, once it wrote

	mu            sync.Mutex // guards newest and checkpointDue
	newest        *record    // the newest release record this writer has seen
	checkpointDue bool       // a checkpoint could not be written: the next write stores one
}

// NewRawWriter returns a writer of prefix through cli. The client stays the
// caller's. It fails when prefix is not an absolute key path
// ("/strata/payments/prod") or cli is nil.
func NewRawWriter(cli *clientv3.Client, prefix string, opts ...RawWriterOption) (*RawWriter, error) {
	o := rawWriterOptions{commitOptions: defaultCommitOptions()}
	for _, opt := range opts {
		opt.applyRaw(&o)
	}
	return newRawWriter(cli, prefix, o)
}

// newRawWriter returns a RawWriter with options o; NewWriter builds its
// own from its commit options.
func newRawWriter(cli *clientv3.Client, prefix string, o rawWriterOptions) (*RawWriter, error) {
	if cli == nil {
		return nil, errors.New("config: NewRawWriter needs an etcd client")
	}
	if err := etcdprov.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	w := &RawWriter{cli: cli, layout: etcdprov.NewLayout(prefix), opts: o, caches: &cacheHolder{}}
	w.secretsOf = w.schemaSecrets
	runtime.AddCleanup(w, (*cacheHolder).collected, w.caches)
	return w, nil
}

// Close stops the watch that keeps the writer's copy of its prefix
// current. A writer keeps that copy from its second write on, so that a
// write commits in one transaction with work that grows with its change;
// a writer that is not closed stops it when it is garbage collected. The
// writer stays usable after Close: each write then reads the prefix first.
func (w *RawWriter) Close() error {
	w.caches.close()
	return nil
}

// keepCache makes the writer's cache from st, a full read, unless the
// writer has one that is current. Only writers without a keyring keep
// one: a keyring needs the opened content, which is not cached.
func (w *RawWriter) keepCache(st *state, hash *contentHasher) {
	if w.opts.keyring == nil {
		w.caches.renew(func() *writerCache {
			if hash == nil {
				hash = newContentHasher(st.content)
			}
			return newWriterCache(w.cli, w.layout.Data(), st, hash)
		})
	}
}

// state is what one write read, at one etcd revision.
type state struct {
	revision   int64
	version    int64
	versionRev int64            // mod revision of the version key; 0 if absent
	content    Content          // as stored: secret values sealed (see plain)
	plain      Content          // content with every sealed value opened; content itself without a keyring
	unopened   map[string]error // keys whose sealed value could not be opened (they stay sealed in plain)
	modRevs    map[string]int64 // data key (relative) → mod revision
	schema     []byte           // published JSON Schema, nil if none
	schemaRev  int64            // its mod revision; 0 if none
	prev       *record          // the record of release version; nil if none
	rollout    *canary.Record   // the rollout record; nil if none
	rolloutRev int64            // its mod revision; 0 if none
	// done is set when a release record holds the write's id: it committed
	// in an earlier attempt, as this release.
	done *Release
	// cache is set when the state comes from the writer's cache; locked
	// when it aliases the cache's maps and holds its lock (see begin).
	cache   *writerCache
	locked  bool
	dataRev int64  // the data keys are as of this revision (the cache may be behind revision)
	hash    string // the tree hash of content, once known
}

// unlock releases the cache a locked state holds.
func (st *state) unlock() {
	if st.locked {
		st.locked = false
		st.cache.unlock()
	}
}

// dataRevision returns the revision the state's data keys are as of.
func (st *state) dataRevision() int64 {
	if st.dataRev > 0 {
		return st.dataRev
	}
	return st.revision
}

// baseHash returns the hash of the state's content in the format of hash
// like (a release record's), so that the two compare.
func (st *state) baseHash(like string) string {
	if st.hash != "" && !strings.HasPrefix(like, flatHashPrefix) {
		return st.hash
	}
	return hashLike(st.content, like)
}

// writeFind names an earlier commit of write id that a read looks for:
// the release record of version (a commit of it whose answer was lost), or
// with scan the retained records (a write sent again with WriteID).
type writeFind struct {
	id      string
	version int64
	scan    bool
}

// read gets data, version, schema and the rollout record (and the records
// find names) in one read-only transaction, so they belong to one
// revision; then the newest release record, from the cache when it is
// still the newest.
func (w *RawWriter) read(ctx context.Context, find writeFind) (*state, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	ops := []clientv3.Op{
		clientv3.OpGet(w.layout.Data(), clientv3.WithPrefix()),
		clientv3.OpGet(w.layout.Version()),
		clientv3.OpGet(w.layout.Schema()),
		clientv3.OpGet(w.layout.Rollout()),
	}
	switch {
	case find.id == "":
	case find.version > 0:
		ops = append(ops, clientv3.OpGet(w.layout.Release(find.version)))
	case find.scan:
		ops = append(ops, clientv3.OpGet(w.layout.Releases(), clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(w.opts.retention))))
	}
	resp, err := w.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, w.wrap("read "+w.layout.Prefix(), err)
	}
	st := &state{revision: resp.Header.Revision, content: Content{}, modRevs: map[string]int64{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		k, _ := w.layout.RelKey(string(kv.Key))
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
		st.schema, st.schemaRev = kvs[0].Value, kvs[0].ModRevision
	}
	if kvs := resp.Responses[3].GetResponseRange().Kvs; len(kvs) > 0 {
		st.rolloutRev = kvs[0].ModRevision
		rec, err := canary.Decode(kvs[0].Value)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w (abort it with strata rollout abort, or delete the key)", w.layout.Rollout(), err)
		}
		st.rollout = rec
	}
	if len(resp.Responses) > 4 {
		for _, kv := range resp.Responses[4].GetResponseRange().Kvs {
			if rec, err := decodeRecord(string(kv.Key), kv.Value); err == nil && rec.WriteID == find.id {
				st.done = rec.release(kv.CreateRevision)
				return st, nil
			}
		}
	}
	if err := w.readNewest(ctx, st); err != nil {
		return nil, err
	}
	st.plain, st.unopened = w.open(ctx, st.content)
	return st, nil
}

// readNewest sets st.prev to the newest release record. Without a version
// key (a new prefix, or the key was deleted around the writer) the newest
// record key decides, so that no release record is ever overwritten.
func (w *RawWriter) readNewest(ctx context.Context, st *state) error {
	if st.versionRev == 0 {
		resp, err := w.cli.Get(ctx, w.layout.Releases(), clientv3.WithPrefix(), clientv3.WithRev(st.revision),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1), clientv3.WithKeysOnly())
		if err != nil {
			return w.wrap("read releases", err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		n, ok := w.layout.ParseRelease(string(resp.Kvs[0].Key))
		if !ok {
			return fmt.Errorf("config: release key %s is not numbered", resp.Kvs[0].Key)
		}
		st.version = n
	}
	if st.version == 0 {
		return nil
	}
	w.mu.Lock()
	cached := w.newest
	w.mu.Unlock()
	if cached != nil && cached.Version == st.version {
		st.prev = cached
		return nil
	}
	rec, _, err := w.recordAt(ctx, st.version, st.revision)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, errCorruptRecord) {
			// Retention or a hand edit removed it, or it does not decode
			// (History marks it): the next release anchors anew.
			return nil
		}
		return err
	}
	st.prev = rec
	w.remember(rec)
	return nil
}

// remember caches rec when it is the newest record seen.
func (w *RawWriter) remember(rec *record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.newest == nil || rec.Version >= w.newest.Version {
		w.newest = rec
	}
}

// recordAt reads release record n (at revision rev; 0: the newest) and
// returns it with its mod revision.
func (w *RawWriter) recordAt(ctx context.Context, n, rev int64) (*record, int64, error) {
	key := w.layout.Release(n)
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := w.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, 0, w.wrap("read release", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("config: release %d of %s: %w", n, w.layout.Prefix(), ErrNotFound)
	}
	rec, err := decodeRecord(key, resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, err
	}
	return rec, resp.Kvs[0].CreateRevision, nil
}

// wrap names the client's endpoints in an error from etcd.
func (w *RawWriter) wrap(op string, err error) error {
	return etcdprov.Wrap(op, w.cli.Endpoints(), err)
}

// Read returns the current content, the newest release version and the
// etcd revision they were read at.
func (w *RawWriter) Read(ctx context.Context) (c Content, version, revision int64, err error) {
	st, err := w.read(ctx, writeFind{})
	if err != nil {
		return nil, 0, 0, err
	}
	return st.plain, st.version, st.revision, nil
}

// Schema returns the JSON Schema published at P/meta/schema, or ErrNotFound.
func (w *RawWriter) Schema(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Get(ctx, w.layout.Schema())
	if err != nil {
		return nil, w.wrap("read schema", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("config: no schema published at %s: %w", w.layout.Schema(), ErrNotFound)
	}
	return resp.Kvs[0].Value, nil
}

// PublishSchema stores doc (a JSON Schema) at P/meta/schema as a release:
// it checks that doc compiles and that the current configuration, if any,
// satisfies it (unless the writer was made WithoutSchemaCheck), and commits the
// schema with a release record (Release.Schema names it) in one guarded
// transaction, so History shows when the rules changed. Publishing the
// schema already in force writes nothing. DryRun checks only.
func (w *RawWriter) PublishSchema(ctx context.Context, doc []byte, opts ...WriteOption) (*Release, error) {
	if _, err := schema.Compile(doc); err != nil {
		return nil, fmt.Errorf("config: schema does not compile: %w", err)
	}
	opts = append([]WriteOption{Message("publish schema"), func(o *writeOptions) { o.schema = doc }}, opts...)
	return w.write(ctx, func(st *state) (Content, error) { return maps.Clone(st.plain), nil }, 0, opts)
}

// Replace makes the content exactly c: keys not in c are deleted.
func (w *RawWriter) Replace(ctx context.Context, c Content, opts ...WriteOption) (*Release, error) {
	return w.write(ctx, func(*state) (Content, error) { return maps.Clone(c), nil }, 0, opts)
}

// Modify applies fn to a copy of the current content and writes the
// result. fn may run more than once when the write loses a race.
func (w *RawWriter) Modify(ctx context.Context, fn func(Content) error, opts ...WriteOption) (*Release, error) {
	return w.write(ctx, func(st *state) (Content, error) {
		c := maps.Clone(st.plain)
		if err := fn(c); err != nil {
			return nil, err
		}
		return c, nil
	}, 0, opts)
}

// Set writes the leaf at a dotted config path ("db.port") as text. It
// refuses, with ErrInvalid, a leaf where etcd holds leaves beneath the path
// (db/host under db) or a leaf above it (db for db.port): one would shadow
// the other. Delete those first, or use Modify. It also refuses Mask
// ("******") as a value: that is how a secret is shown (a path without a
// schema may be secret too).
func (w *RawWriter) Set(ctx context.Context, configPath, value string, opts ...WriteOption) (*Release, error) {
	key, err := leafKey(configPath)
	if err != nil {
		return nil, err
	}
	if value == Mask {
		return nil, fmt.Errorf("config: %s is how a secret is shown, not a value: refusing to store it at %s (set the real value; to keep the current one, leave the path alone): %w", Mask, configPath, ErrInvalid)
	}
	return w.writeEdit(ctx, func(st *state) ([]KeyChange, error) {
		var shadow []string
		if st.locked {
			shadow = st.cache.shadowed(key)
		} else {
			shadow = st.plain.Shadowing(key)
		}
		if len(shadow) > 0 {
			return nil, fmt.Errorf("config: a leaf at %s and the key(s) %s cannot both be held: one would hide the other; delete %s first: %w",
				configPath, strings.Join(shadow, ", "), strings.Join(shadow, ", "), ErrInvalid)
		}
		old, had := st.plain[key]
		switch {
		case !had:
			return []KeyChange{{Key: key, Kind: Added, New: value}}, nil
		case old != value:
			return []KeyChange{{Key: key, Kind: Changed, Old: old, New: value}}, nil
		}
		return nil, nil
	}, opts)
}

// Shadowing lists the keys of c that a leaf at data key key (relative to
// P/data/, "db/port") would hide or be hidden by: leaves beneath it and
// above it, and documents mounted at it or beneath it ("db.yaml", or
// "a/b.yaml" for a leaf at "a"). A leaf beneath a document's mount path
// is not listed: it overrides the value inside the document.
func (c Content) Shadowing(key string) []string {
	var out []string
	for k := range c {
		if ext := path.Ext(k); ext != "" {
			if d := strings.TrimSuffix(k, ext); d == key || strings.HasPrefix(d, key+"/") {
				out = append(out, k)
			}
			continue
		}
		if strings.HasPrefix(k, key+"/") || strings.HasPrefix(key, k+"/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Delete removes the leaf at a dotted config path and every leaf beneath
// it. It fails with ErrNotFound when there is none.
func (w *RawWriter) Delete(ctx context.Context, configPath string, opts ...WriteOption) (*Release, error) {
	key, err := leafKey(configPath)
	if err != nil {
		return nil, err
	}
	return w.writeEdit(ctx, func(st *state) ([]KeyChange, error) {
		var keys []string
		if st.locked {
			keys = st.cache.beneath(key)
		} else {
			keys = st.plain.beneath(key)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("config: no leaf key at %s: %w", configPath, ErrNotFound)
		}
		sort.Strings(keys)
		changes := make([]KeyChange, len(keys))
		for i, k := range keys {
			changes[i] = KeyChange{Key: k, Kind: Deleted, Old: st.plain[k]}
		}
		return changes, nil
	}, opts)
}

// beneath lists key, if c holds it, and the keys of c beneath it.
func (c Content) beneath(key string) []string {
	var out []string
	for k := range c {
		if k == key || strings.HasPrefix(k, key+"/") {
			out = append(out, k)
		}
	}
	return out
}

// leafKey maps a dotted config path to its leaf key relative to P/data/
// (etcdprov.LeafRel).
func leafKey(configPath string) (string, error) {
	key, err := etcdprov.LeafRel(configPath)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return key, nil
}

// validate checks the whole candidate content before anything is written:
// Writer[T]'s check, then the schema (given with WithSchema, else the
// published one). Both judge the etcd layer as an overlay: see Writer.
func (w *RawWriter) validate(st *state, c Content) error {
	doc := w.opts.schema
	if doc == nil {
		doc = st.schema
	}
	if w.opts.noSchema {
		doc = nil
	}
	if w.check == nil && doc == nil {
		return nil
	}
	tree, origins, err := w.tree(c)
	if err != nil {
		return err
	}
	if w.check != nil {
		if err := w.check(tree, origins); err != nil {
			return err
		}
	}
	if doc == nil {
		return nil
	}
	sch, err := schema.Compile(doc)
	if err != nil {
		return fmt.Errorf("config: schema of %s does not compile: %w", w.layout.Prefix(), err)
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
		d.KVs[w.layout.DataKey(k)] = []byte(v)
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
	if doc == nil && st != nil {
		doc = st.schema
	}
	if doc != nil {
		if sch, err := schema.Compile(doc); err == nil {
			secrets = append(secrets, sch.SecretPaths()...)
		}
	}
	return secrets
}

// mask returns a copy of changes with the values of secret paths hidden.
// A document key is masked whole when a secret lies inside it.
func mask(secrets []string, changes []KeyChange) []KeyChange {
	if len(changes) == 0 {
		return changes
	}
	out := make([]KeyChange, len(changes))
	copy(out, changes)
	if len(secrets) == 0 {
		return out
	}
	for i := range out {
		if keyIsSecret(secrets, out[i].Key) {
			if out[i].Old != "" {
				out[i].Old = Mask
			}
			if out[i].New != "" {
				out[i].New = Mask
			}
		}
	}
	return out
}

// keyIsSecret reports whether a data key (relative) holds a secret value.
func keyIsSecret(secrets []string, key string) bool {
	p := strings.TrimSuffix(key, path.Ext(key))
	p = strings.ReplaceAll(p, "/", ".")
	if schema.HoldsSecret(secrets, p) { // a leaf above a secret (JSON text) holds it whole
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
