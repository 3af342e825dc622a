package config

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
	"github.com/strataconf/strata/providers/env"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/providers/file"
	"github.com/strataconf/strata/providers/structs"
	"github.com/strataconf/strata/schema"
)

// Config is a typed configuration bound to its layers. Get returns the
// current value from any goroutine without locking.
type Config[T any] struct {
	snap atomic.Pointer[Snapshot[T]]
	opts options
	b    binder[T]

	// layers is owned by Load until it returns, then by the reload loop.
	layers    []layer
	etcd      *etcdprov.Provider // nil without an etcd layer
	etcdSrc   *etcdSource        // the etcd layer's source; nil without
	etcdIdx   int                // index of the etcd layer in layers; -1 without
	etcdRaw   map[string][]byte  // the etcd layer's keys and values, nil while its tree and keys stand for them (dropRaw); owned by the reload loop
	etcdOdd   int                // keys of etcdRaw that keep changes from being applied alone (oddKeys), -1 until counted; owned by the reload loop
	inSync    bool               // the snapshot is built from what the layers hold; owned by the reload loop
	etcdStale bool               // the etcd layer's tree lags etcdRaw (a change refused before it reached the tree); the next change builds it anew; owned by the reload loop
	patcher   codec.Patcher      // copies of the snapshot's large maps for the next change; owned by the reload loop
	patchV    *T                 // the value the last change patched, until the loop settles patcher
	canary    canaryState        // the rollout as this Config sees it; owned by the reload loop

	instanceID string // the instance record's id; empty without WithInstance

	onChange subscribers[func(Change[T])]
	onError  subscribers[func(error)]

	// Shared with Health and metrics.
	degraded   atomic.Bool                 // started from the snapshot file, etcd not reached yet
	healthUsed atomic.Bool                 // Health was called: keep the version current
	version    atomic.Int64                // release version in force; set by the status goroutine
	lastErr    atomic.Pointer[errorRecord] // the most recent reported error
	appHealth  atomic.Pointer[string]      // the failing WithHealthCheck's error; nil when it passes

	cur        *status                // what the status goroutine was last offered; made with the first offer; owned by the reload loop
	statusBox  atomic.Pointer[status] // reload loop → status goroutine: the newest status not yet taken
	statusWake chan struct{}          // a token when statusBox was filled; made, before statusOn, by enableStatus
	statusOn   atomic.Bool            // the status goroutine runs, or is about to: the reload loop offers statuses
	metrics    *metrics
	collectors []prometheus.Collector

	updates   chan update            // layer watchers → reload loop; nil when there are none
	etcdSub   *etcdprov.Subscription // the etcd layer's place in the shared watch, read by the reload loop; nil when a watcher goroutine sends its updates
	ctx       context.Context        // cancelled by Close; nil when nothing waits on it (runContext); written only by start
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine but the reload loop
	loopGID   atomic.Int64   // the reload loop's goroutine id, set when it starts
	loopWG    sync.WaitGroup // the reload loop
	closeOnce sync.Once

	// The status goroutine starts with Load when something needs it from
	// the start (an instance record, a snapshot file, metrics), else with
	// the first call of Health; statusMu orders that start with Close.
	statusMu      sync.Mutex
	statusStarted bool               // under statusMu
	closed        bool               // under statusMu: Close was called
	closing       atomic.Bool        // Close was called: read by the reload loop
	statusCancel  context.CancelFunc // under statusMu: ends the status goroutine
}

// Load reads every configured layer, merges them in order, binds the result
// to a new T and validates it. It returns a Config holding that first
// snapshot, or an error: ErrSource when a layer cannot be read (naming the
// file, variable, key or endpoints), ErrInvalid (an *InvalidError naming
// each failing path and where its value came from), or ErrUnknownKeys.
//
// ctx bounds the initial reads; an unreachable etcd fails within ctx's
// deadline or the provider's request timeout, whichever is earlier, unless
// WithStartup says otherwise. On success Load starts watching the etcd
// prefix and the files (see WithWatch); Close stops that.
func Load[T any](ctx context.Context, opts ...Option) (*Config[T], error) {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: Load needs a struct type, got %s", typ)
	}
	c := &Config[T]{opts: options{logger: slog.Default(), environ: os.Environ, watchEtcd: true, watchFiles: true}}
	for _, o := range opts {
		o(&c.opts)
	}
	c.b = newBinder[T]()
	if c.opts.instance != nil {
		host, _ := os.Hostname()
		c.instanceID = instanceID(c.opts.instance, host, os.Getpid())
	}
	c.etcdIdx = -1
	if c.opts.etcd != nil {
		if err := etcdprov.CheckPrefix(c.opts.etcdPrefix); err != nil {
			return nil, fmt.Errorf("config: WithEtcd: %w", err)
		}
		c.etcd = etcdprov.New(c.opts.etcd, c.opts.etcdPrefix)
		c.etcdSrc = &etcdSource{p: c.etcd, startup: c.opts.startup, snapshotFile: c.opts.snapshotFile, log: c.opts.logger,
			leaves: c.opts.keyring == nil} // a keyring opens values in the tree: the keys must be kept
	}

	layers, err := c.sources()
	if err != nil {
		return nil, err
	}
	for i := range layers {
		if err := c.read(ctx, &layers[i]); err != nil {
			return nil, err
		}
	}
	snap, err := c.candidate(layers)
	if err != nil {
		return nil, err
	}
	if c.opts.publish && c.etcd != nil && !c.etcdSrc.fromSnapshot {
		if err := c.publishSchema(ctx, layers); err != nil {
			return nil, err
		}
	}
	if err := c.registerMetrics(); err != nil {
		return nil, fmt.Errorf("config: metrics: %w", err)
	}
	c.layers = layers
	c.snap.Store(snap)
	c.inSync = true
	if c.etcdSrc != nil {
		first := c.etcdSrc.first
		// The loop owns first's keys from now on and changes them in place:
		// the etcd watcher copies them before it sends anything, and the
		// status goroutine gets its own copy.
		c.etcdRaw = first.KVs
		c.etcdOdd = -1 // counted at the first change
		if first.KVs == nil {
			c.etcdOdd = 0 // plain leaves only, read into the tree (ReadLeaves): see dropRaw
		}
		c.version.Store(first.Version)
		c.degraded.Store(c.etcdSrc.fromSnapshot)
		if c.opts.instance != nil || c.opts.snapshotFile != "" || c.opts.metrics != nil {
			// The status goroutine starts with the loop (start): it gets
			// this content first.
			c.enableStatus()
			c.cur = &status{data: &etcdprov.Data{Revision: first.Revision, Version: first.Version}, fromSnapshot: c.etcdSrc.fromSnapshot}
			if c.opts.snapshotFile != "" {
				c.cur.data.KVs = maps.Clone(c.etcdKVs())
			}
			c.offer(*c.cur)
		}
		first.KVs = nil // c.etcdRaw now; the watch needs only the revision
		if c.instanceID != "" && c.opts.watchEtcd && !c.etcdSrc.fromSnapshot {
			c.joinRollout(ctx)
		}
	}
	c.start()
	return c, nil
}

// publishSchema stores T's JSON Schema at P/meta/schema if it differs,
// relaxed so that what the layers below etcd provide is not required of
// etcd.
func (c *Config[T]) publishSchema(ctx context.Context, layers []layer) error {
	var provided []string
	for i, l := range layers {
		if i != c.etcdIdx {
			provided = append(provided, sortedKeys(l.content.Keys)...)
		}
	}
	doc, err := relaxedSchema(reflect.TypeFor[T](), provided)
	if err != nil {
		return err
	}
	key := c.etcd.Layout().Schema()
	ctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	// Write only when different, in one transaction, so that many
	// instances starting together do not churn the key.
	_, err = c.opts.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", string(doc))).
		Else(clientv3.OpPut(key, string(doc))).Commit()
	if err != nil {
		return fmt.Errorf("%w: publish schema to %s: %w", ErrSource, key, err)
	}
	return nil
}

// Get returns the current configuration. It never blocks and never
// allocates; the value must be treated as read-only.
func (c *Config[T]) Get() *T { return c.snap.Load().Value }

// Snapshot returns the current snapshot: the value, the etcd revision and
// the origin of every path.
func (c *Config[T]) Snapshot() *Snapshot[T] { return c.snap.Load() }

// Close stops every goroutine the Config started and waits for them,
// including a subscriber that is running, so no subscriber runs after it
// returns. Get keeps returning the last value. It is safe to call more than
// once and from any goroutine; the etcd client given to WithEtcd is not
// closed. Called from inside a subscriber, Close stops the Config and
// returns without waiting for that subscriber (it is the caller); no other
// subscriber runs after it.
func (c *Config[T]) Close() error {
	c.closeOnce.Do(func() {
		c.statusMu.Lock()
		c.closed = true
		statusCancel := c.statusCancel
		c.statusMu.Unlock()
		c.closing.Store(true)
		if c.cancel != nil {
			c.cancel()
		}
		if statusCancel != nil {
			statusCancel()
		}
		if c.etcdSub != nil {
			c.etcdSub.Wake() // the loop may wait on it alone
		}
		c.wg.Wait()
		c.unregisterMetrics()
	})
	if goid() != c.loopGID.Load() {
		c.loopWG.Wait()
	}
	return nil
}

// sources lists the configured layers in precedence order, unread.
func (c *Config[T]) sources() ([]layer, error) {
	order := c.opts.order
	if order == nil {
		order = DefaultOrder
	}
	byKind := make(map[Layer][]layer)
	if c.opts.defaults != nil {
		v, err := c.defaults()
		if err != nil {
			return nil, err
		}
		byKind[LayerDefaults] = []layer{{kind: LayerDefaults, src: structs.New(v)}}
	}
	for _, path := range c.opts.files {
		p, err := file.New(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSource, err)
		}
		byKind[LayerFile] = append(byKind[LayerFile], layer{kind: LayerFile, name: path, src: p, watch: c.opts.watchFiles})
	}
	if c.opts.envSet {
		byKind[LayerEnv] = []layer{{kind: LayerEnv, name: c.opts.envPrefix, src: env.New(c.opts.envPrefix, env.WithEnviron(c.opts.environ))}}
	}
	if c.etcdSrc != nil {
		byKind[LayerEtcd] = []layer{{kind: LayerEtcd, name: c.etcd.Layout().Prefix(), src: c.etcdSrc, watch: c.opts.watchEtcd}}
	}
	for k := range byKind {
		if !slices.Contains(order, k) {
			return nil, fmt.Errorf("config: layer %q is configured but missing from WithOrder(%v)", k, order)
		}
	}
	var layers []layer
	for _, k := range order {
		if !slices.Contains(DefaultOrder, k) {
			return nil, fmt.Errorf("config: unknown layer %q in WithOrder", k)
		}
		if k == LayerEtcd && c.etcdSrc != nil {
			c.etcdIdx = len(layers)
		}
		layers = append(layers, byKind[k]...)
	}
	return layers, nil
}

// read reads l's content, spelled canonically for T.
func (c *Config[T]) read(ctx context.Context, l *layer) error {
	content, err := l.src.Read(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSource, err)
	}
	if l.src != providers.Source(c.etcdSrc) {
		l.setContent(c.b.canonical(content, nil))
		return nil
	}
	lv := c.etcdSrc.leafKeys // content's keys when it has no Keys (ReadLeaves)
	c.etcdSrc.leafKeys = nil
	l.setContent(c.b.canonical(content, lv))
	if l.content.Keys == nil {
		l.leaves = lv // no key renamed: they still stand for the Keys
	}
	l.snapshot = c.etcdSrc.fromSnapshot
	return c.openContent(ctx, l.content, l.leaves)
}

// defaults returns the value given to WithDefaults as a T.
func (c *Config[T]) defaults() (T, error) {
	switch v := c.opts.defaults.(type) {
	case T:
		return v, nil
	case *T:
		if v == nil {
			return *new(T), fmt.Errorf("config: WithDefaults got a nil *%s", reflect.TypeFor[T]())
		}
		return *v, nil
	default:
		return *new(T), fmt.Errorf("config: WithDefaults got %T, want %s or *%[2]s", c.opts.defaults, reflect.TypeFor[T]())
	}
}

// candidate merges layers and binds and validates the result. It either
// returns a complete snapshot or an error; it publishes nothing.
func (c *Config[T]) candidate(layers []layer) (*Snapshot[T], error) {
	var rev int64
	for _, l := range layers {
		rev = max(rev, l.content.Revision) // the etcd layer's, if any
	}
	m := merge(layers)
	v, unused, err := c.b.bind(m.tree, m.origins, rev)
	if err != nil {
		return nil, err
	}
	if len(unused) > 0 {
		switch c.opts.unknown {
		case UnknownFail:
			return nil, fmt.Errorf("%w: %s", ErrUnknownKeys, describePaths(unused, m.origins))
		case UnknownReport:
			c.opts.logger.Warn("config: keys match no field", "type", reflect.TypeFor[T]().String(), "keys", describePaths(unused, m.origins))
		}
	}
	return &Snapshot[T]{Value: v, Revision: rev, Origins: m.origins, Unknown: unused, Time: time.Now(), values: lazyFlatValues(m.tree, m.origins), secrets: c.b.secrets}, nil
}

// describePaths renders paths with their origins: "a.b (etcd key /p/data/a/b), c (file x.yaml)".
func describePaths(paths []string, origins map[string]Origin) string {
	parts := make([]string, len(paths))
	for i, p := range paths {
		if o, ok := originOf(origins, p); ok {
			parts[i] = p + " (" + o.String() + ")"
		} else {
			parts[i] = p
		}
	}
	return strings.Join(parts, ", ")
}

// relaxedSchema generates the JSON Schema of t without requiring the
// provided paths.
func relaxedSchema(t reflect.Type, provided []string) ([]byte, error) {
	doc, err := schema.Generate(t)
	if err == nil && len(provided) > 0 {
		doc, err = schema.Relax(doc, provided)
	}
	if err != nil {
		return nil, fmt.Errorf("config: JSON Schema of %s: %w", t, err)
	}
	return doc, nil
}
