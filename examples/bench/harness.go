package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	kmaps "github.com/knadh/koanf/maps"
	kEtcd "github.com/knadh/koanf/providers/etcd/v2"
	"github.com/knadh/koanf/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/bigmap"
	"github.com/strataconf/strata/internal/etcdtest"
)

// Small is the small typed configuration of the latency, read and fan-out
// sections. Strata binds and validates it; koanf unmarshals into it.
type Small struct {
	A    int    `koanf:"a" validate:"min=0"`
	Name string `koanf:"name" validate:"required"`
	DB   struct {
		Host string `koanf:"host" validate:"required"`
		Port int    `koanf:"port" validate:"min=1,max=65535"`
	} `koanf:"db"`
}

// smallSeed is the content every Small prefix starts with, as leaf keys
// relative to P/data/.
var smallSeed = map[string]string{"a": "0", "name": "bench", "db/host": "db.internal", "db/port": "5432"}

// Wide is the start-up load target: one map of many leaves.
type Wide struct {
	Items map[string]int `koanf:"items"`
}

// WideBig is Wide with its map a bigmap.Map, which a change does not copy
// whole.
type WideBig struct {
	Items bigmap.Map[int] `koanf:"items"`
}

// Counter is the value of the CAS section.
type Counter struct {
	N int64 `koanf:"n"`
}

// bench is the shared state of one run: the embedded etcd, the client the
// sections share, and the goroutine baseline of the leak check.
type bench struct {
	opts      options
	etcd      *etcdtest.Cluster
	cli       *clientv3.Client
	endpoints []string
	progress  io.Writer // where settle describes a leak

	baseline int          // goroutines after etcd and the client started
	leaks    []leakRecord // one per section, in order
}

// leakRecord is the goroutine count after one section closed everything.
type leakRecord struct {
	section    string
	goroutines int
	ok         bool
}

// settle waits (bounded) until the goroutine count is back to the
// baseline after a section, and records the outcome.
func (b *bench) settle(section string) {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > b.baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	b.leaks = append(b.leaks, leakRecord{section: section, goroutines: n, ok: n <= b.baseline})
	if n > b.baseline {
		fmt.Fprintf(b.progress, "%s: %d goroutines, baseline %d; they are:\n", section, n, b.baseline)
		pprof.Lookup("goroutine").WriteTo(b.progress, 1)
	}
}

// seed writes leaves (relative to P/data/) under prefix in transactions of
// at most 100 operations and returns the revision of the last one.
func seed(ctx context.Context, cli *clientv3.Client, prefix string, leaves map[string]string) (int64, error) {
	keys := make([]string, 0, len(leaves))
	for k := range leaves {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var rev int64
	for len(keys) > 0 {
		batch := keys[:min(100, len(keys))]
		keys = keys[len(batch):]
		ops := make([]clientv3.Op, len(batch))
		for i, k := range batch {
			ops[i] = clientv3.OpPut(prefix+"/data/"+k, leaves[k])
		}
		resp, err := cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("seed %s: %w", prefix, err)
		}
		rev = resp.Header.Revision
	}
	return rev, nil
}

// koanfEtcd is koanf's etcd provider (github.com/knadh/koanf/providers/etcd/v2)
// reading the keys under P/data/, made into a koanf.Provider that returns the
// nested map koanf expects. The provider itself returns the etcd keys as
// they are ("/p/data/db/host": "..."), flat, which koanf can neither
// address by "db.host" nor unmarshal into a nested struct; Read strips the
// prefix and unflattens on "/" with koanf's own maps.Unflatten, the
// smallest adapter that lets koanf bind the same struct as Strata.
type koanfEtcd struct {
	p     *kEtcd.Etcd
	strip string
}

// newKoanfEtcd dials the provider's own client (the provider cannot be
// given one); Close closes it.
func newKoanfEtcd(endpoints []string, prefix string) (*koanfEtcd, error) {
	p, err := kEtcd.Provider(kEtcd.Config{
		Endpoints: endpoints,
		// Also the timeout of every Read: a zero value makes Read fail at once.
		DialTimeout: 5 * time.Second,
		Prefix:      true,
		Key:         prefix + "/data/",
	})
	if err != nil {
		return nil, fmt.Errorf("koanf etcd provider: %w", err)
	}
	return &koanfEtcd{p: p, strip: prefix + "/data/"}, nil
}

// Read implements koanf.Provider.
func (k *koanfEtcd) Read() (map[string]any, error) {
	flat, err := k.p.Read()
	if err != nil {
		return nil, err
	}
	rel := make(map[string]any, len(flat))
	for key, v := range flat {
		rel[strings.TrimPrefix(key, k.strip)] = v
	}
	return kmaps.Unflatten(rel, "/"), nil
}

// ReadBytes implements koanf.Provider (unsupported by the etcd provider).
func (k *koanfEtcd) ReadBytes() ([]byte, error) { return k.p.ReadBytes() }

// Watch is the provider's Watch.
func (k *koanfEtcd) Watch(cb func(event any, err error)) error { return k.p.Watch(cb) }

// load reads the prefix into a fresh koanf instance, as koanf's docs do on
// every watch event.
func (k *koanfEtcd) load() (*koanf.Koanf, error) {
	ko := koanf.New(".")
	if err := ko.Load(k, nil); err != nil {
		return nil, err
	}
	return ko, nil
}

// Close closes the provider's client, which also ends its watch goroutine.
// The provider has no Close and keeps its client in an unexported field, so
// without this every provider would leak a connection and, after Watch, a
// goroutine watching with context.Background() forever.
func (k *koanfEtcd) Close() error {
	f := reflect.ValueOf(k.p).Elem().FieldByName("client")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*clientv3.Client]() {
		return errors.New("koanf etcd provider: no client field to close (has the provider changed?)")
	}
	cli := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*clientv3.Client)
	return cli.Close()
}

// sink receives the values a subscriber observes, never blocking it, and
// remembers when the newest one arrived.
type sink struct {
	mu     sync.Mutex
	v      int
	t      time.Time
	notify chan struct{}
}

func newSink() *sink { return &sink{v: math.MinInt, notify: make(chan struct{}, 1)} }

// see records v, observed now.
func (s *sink) see(v int) {
	now := time.Now()
	s.mu.Lock()
	if v > s.v {
		s.v, s.t = v, now
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// wait returns when a value >= want was seen, or false after timeout.
func (s *sink) wait(want int, timeout time.Duration) (time.Time, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		v, t := s.v, s.t
		s.mu.Unlock()
		if v >= want {
			return t, true
		}
		select {
		case <-s.notify:
		case <-timer.C:
			return time.Time{}, false
		}
	}
}

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(d []time.Duration) dist {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// q returns the nearest-rank quantile p (0 < p <= 1).
func (d dist) q(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func (d dist) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// median returns the median of a small sample.
func median(d []time.Duration) time.Duration { return newDist(d).q(0.5) }

// itoa and atoi spare the sections the strconv noise.
func itoa(v int) string { return strconv.Itoa(v) }

func atoi(b []byte) int {
	v, err := strconv.Atoi(string(b))
	if err != nil {
		return math.MinInt
	}
	return v
}

// rotate returns the i-th rotation of xs, so that interleaved subjects take
// turns at going first.
func rotate[T any](xs []T, i int) []T {
	i %= len(xs)
	return append(slices.Clone(xs[i:]), xs[:i]...)
}
