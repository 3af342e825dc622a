package config

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/strataconf/strata/providers/env"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/providers/file"
	"github.com/strataconf/strata/schema"
)

// Config is a typed configuration bound to its layers. Get returns the
// current value from any goroutine without locking.
type Config[T any] struct {
	snap    atomic.Pointer[Snapshot[T]]
	opts    options
	log     *slog.Logger
	secrets []string // config paths of fields tagged secret

	// srcs is owned by Load until it returns, then by the reload loop.
	srcs     []*source
	etcd     *etcdprov.Provider
	files    map[string]*file.Provider // by path; safe for Read and Watch at once
	etcdData *etcdprov.Data            // the initial read; the watch starts after it

	onChange subscribers[func(Change[T])]
	onError  subscribers[func(error)]

	// Shared with Health and metrics.
	degraded   atomic.Bool                 // started from the snapshot file, etcd not reached yet
	healthUsed atomic.Bool                 // Health was called: keep the version current
	version    atomic.Int64                // release version in force; set by the status goroutine
	lastErr    atomic.Pointer[errorRecord] // the most recent reported error

	fromSnapshot bool        // Load used the snapshot file; read-only after Load
	cur          status      // owned by the reload loop
	statusCh     chan status // reload loop → status goroutine, latest only
	metrics      *metrics
	collectors   []prometheus.Collector

	updates   chan update
	ctx       context.Context // done once Close is called
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine but the reload loop
	loopGID   atomic.Int64   // the reload loop's goroutine id, set when it starts
	loopDone  chan struct{}  // closed when the reload loop has returned
	closeOnce sync.Once
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
	c.log = c.opts.logger
	c.secrets = schema.SecretPaths(typ)
	if c.opts.etcd != nil {
		if err := etcdprov.CheckPrefix(c.opts.etcdPrefix); err != nil {
			return nil, fmt.Errorf("config: WithEtcd: %w", err)
		}
		c.etcd = etcdprov.New(c.opts.etcd, c.opts.etcdPrefix)
	}

	srcs, err := c.readSources(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := c.candidate(srcs)
	if err != nil {
		return nil, err
	}
	if c.opts.publish && c.etcd != nil && !c.fromSnapshot {
		if err := c.publishSchema(ctx, srcs); err != nil {
			return nil, err
		}
	}
	if err := c.registerMetrics(); err != nil {
		return nil, fmt.Errorf("config: metrics: %w", err)
	}
	c.srcs = srcs
	c.snap.Store(snap)
	if c.etcdData != nil {
		c.version.Store(c.etcdData.Version)
		c.degraded.Store(c.fromSnapshot)
		c.statusCh = make(chan status, 1)
		c.cur = status{data: c.etcdData, fromSnapshot: c.fromSnapshot}
		c.offer(c.cur)
	}
	c.start(c.etcdData)
	return c, nil
}

// publishSchema stores T's JSON Schema at P/meta/schema if it differs,
// relaxed so that what the layers below etcd provide is not required of
// etcd.
func (c *Config[T]) publishSchema(ctx context.Context, srcs []*source) error {
	var provided []string
	for _, s := range srcs {
		if s.layer != LayerEtcd {
			provided = append(provided, sortedKeys(s.keys)...)
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
		c.cancel()
		c.wg.Wait()
		c.unregisterMetrics()
	})
	if goid() != c.loopGID.Load() {
		<-c.loopDone
	}
	return nil
}

// readSources builds and reads the configured layers in precedence order.
func (c *Config[T]) readSources(ctx context.Context) ([]*source, error) {
	order := c.opts.order
	if order == nil {
		order = DefaultOrder
	}
	configured := map[Layer]bool{
		LayerDefaults: c.opts.defaults != nil,
		LayerFile:     len(c.opts.files) > 0,
		LayerEnv:      c.opts.envSet,
		LayerEtcd:     c.etcd != nil,
	}
	for l, on := range configured {
		if on && !slices.Contains(order, l) {
			return nil, fmt.Errorf("config: layer %q is configured but missing from WithOrder(%v)", l, order)
		}
	}
	var srcs []*source
	for _, l := range order {
		if !configured[l] {
			continue
		}
		switch l {
		case LayerDefaults:
			s, err := c.readDefaults()
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, s)
		case LayerFile:
			c.files = make(map[string]*file.Provider)
			for _, path := range c.opts.files {
				p, err := file.New(path)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrSource, err)
				}
				c.files[path] = p
				s, err := readFile(p)
				if err != nil {
					return nil, err
				}
				srcs = append(srcs, s)
			}
		case LayerEnv:
			p := env.New(c.opts.envPrefix, env.WithEnviron(c.opts.environ))
			tree, vars := p.Read()
			srcs = append(srcs, &source{layer: LayerEnv, name: c.opts.envPrefix, tree: tree, keys: vars})
		case LayerEtcd:
			d, fromSnapshot, err := c.readEtcd(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSource, err)
			}
			c.etcdData, c.fromSnapshot = d, fromSnapshot
			s, err := etcdSource(c.etcd.Layout(), d)
			if err != nil {
				return nil, err
			}
			s.snapshot = fromSnapshot
			srcs = append(srcs, s)
		default:
			return nil, fmt.Errorf("config: unknown layer %q in WithOrder", l)
		}
	}
	return srcs, nil
}

func (c *Config[T]) readDefaults() (*source, error) {
	var d T
	switch v := c.opts.defaults.(type) {
	case T:
		d = v
	case *T:
		if v == nil {
			return nil, fmt.Errorf("config: WithDefaults got a nil *%s", reflect.TypeFor[T]())
		}
		d = *v
	default:
		return nil, fmt.Errorf("config: WithDefaults got %T, want %s or *%[2]s", c.opts.defaults, reflect.TypeFor[T]())
	}
	tree, err := codec.ToMap(d)
	if err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	return &source{layer: LayerDefaults, tree: tree, keys: flatKeys(tree, "")}, nil
}

func readFile(p *file.Provider) (*source, error) {
	tree, err := p.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return &source{layer: LayerFile, name: p.Path(), tree: tree, keys: flatKeys(tree, p.Path())}, nil
}

func etcdSource(l etcdprov.Layout, d *etcdprov.Data) (*source, error) {
	tree, keys, err := d.Tree(l)
	if err != nil {
		return nil, fmt.Errorf("%w: revision %d: %w", ErrSource, d.Revision, err)
	}
	return &source{layer: LayerEtcd, name: l.Prefix(), tree: tree, keys: keys, revision: d.Revision, data: d}, nil
}

// candidate merges srcs and binds and validates the result. It either
// returns a complete snapshot or an error; it publishes nothing.
func (c *Config[T]) candidate(srcs []*source) (*Snapshot[T], error) {
	var rev int64
	for _, s := range srcs {
		if s.layer == LayerEtcd {
			rev = s.revision
		}
	}
	m := merge(srcs)
	v := new(T)
	unused, err := codec.Bind(m.tree, v)
	if err != nil {
		return nil, invalidError(err, m.origins, rev, c.secrets)
	}
	if err := schema.Validate(v); err != nil {
		return nil, invalidError(err, m.origins, rev, c.secrets)
	}
	if len(unused) > 0 {
		switch c.opts.unknown {
		case UnknownFail:
			return nil, fmt.Errorf("%w: %s", ErrUnknownKeys, describePaths(unused, m.origins))
		case UnknownReport:
			c.log.Warn("config: keys match no field", "type", reflect.TypeFor[T]().String(), "keys", describePaths(unused, m.origins))
		}
	}
	return &Snapshot[T]{Value: v, Revision: rev, Origins: m.origins, Unknown: unused, Time: time.Now(), values: m.values, secrets: c.secrets}, nil
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
