package config

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"time"
)

// Change is one applied change of the configuration, delivered to OnChange
// subscribers.
type Change[T any] struct {
	// Old and New are the previous and the new value; both are read-only.
	Old, New *T
	// Revision is the etcd revision of the new value; 0 without etcd.
	Revision int64
	// From is the etcd revision of the old value: the change covers the
	// revisions after From up to Revision. That is one transaction as a
	// rule; more when candidates in between were rejected, after a Resync,
	// or when the Config fell behind and the revisions waiting for it were
	// merged (README, "A slow subscriber").
	From int64
	// Paths lists the config paths whose values differ, sorted: added,
	// changed and removed ones (a removed key falls back to a lower layer
	// or to the zero value).
	Paths []string
	// Source is the layer whose update caused the change.
	Source Layer
	// Resync is true when the etcd watch lost its history (compaction) and
	// the change was found by re-reading the prefix: it may span many
	// revisions.
	Resync bool
}

// subscribers is a copy-on-write list of callbacks. The reload loop reads
// it without locking; OnChange and OnError replace it under mu.
type subscribers[F any] struct {
	mu   sync.Mutex
	next int
	list []subscriber[F]
}

type subscriber[F any] struct {
	id int
	fn F
}

func (s *subscribers[F]) add(fn F) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	id := s.next
	s.list = append(slices.Clip(s.list), subscriber[F]{id: id, fn: fn})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.list = slices.DeleteFunc(slices.Clone(s.list), func(x subscriber[F]) bool { return x.id == id })
	}
}

func (s *subscribers[F]) snapshot() []subscriber[F] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list
}

// OnChange registers fn to be called after every applied change, with the
// old and the new value. Subscribers run one at a time, in the order they
// were registered, on the Config's reload goroutine, in revision order: a
// slow subscriber delays later changes but loses none. A panic in fn is
// recovered and reported to OnError subscribers. fn may call Close: Close
// then returns without waiting for fn, and no subscriber runs after fn.
// The returned function unsubscribes; it is safe to call more than once.
func (c *Config[T]) OnChange(fn func(Change[T])) (unsubscribe func()) {
	return c.onChange.add(fn)
}

// OnError registers fn to be called with every error the Config meets after
// Load: a rejected candidate (an *InvalidError naming the path, rule and
// revision; the previous value stays in force), an unreadable source, a
// subscriber panic. It runs on the reload goroutine and follows the rules
// of OnChange. The returned function unsubscribes.
func (c *Config[T]) OnError(fn func(error)) (unsubscribe func()) {
	return c.onError.add(fn)
}

// OnChangeOf registers fn to be called only when the projection pick of the
// configuration changes (compared with reflect.DeepEqual), with the old and
// the new projection. It follows the rules of OnChange.
func OnChangeOf[T, P any](c *Config[T], pick func(*T) P, fn func(old, new P)) (unsubscribe func()) {
	return c.OnChange(func(ch Change[T]) {
		o, n := pick(ch.Old), pick(ch.New)
		if !reflect.DeepEqual(o, n) {
			fn(o, n)
		}
	})
}

// notify runs every change subscriber, recovering panics.
func (c *Config[T]) notify(ch Change[T]) {
	start := time.Now()
	defer func() { c.metrics.observeSubscribers(time.Since(start)) }()
	for _, s := range c.onChange.snapshot() {
		if c.closing.Load() {
			return // closed, possibly by the previous subscriber
		}
		if err := c.call(func() { s.fn(ch) }); err != nil {
			c.report(fmt.Errorf("config: OnChange subscriber at revision %d: %w", ch.Revision, err))
		}
	}
}

// report logs err and passes it to every error subscriber.
func (c *Config[T]) report(err error) {
	c.lastErr.Store(&errorRecord{msg: err.Error(), time: time.Now()})
	c.opts.logger.Error("config: error", "type", reflect.TypeFor[T]().String(), "err", err)
	for _, s := range c.onError.snapshot() {
		if c.closing.Load() {
			return
		}
		if perr := c.call(func() { s.fn(err) }); perr != nil {
			c.opts.logger.Error("config: OnError subscriber", "err", perr)
		}
	}
}

func (c *Config[T]) call(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
			c.opts.logger.Error("config: subscriber panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	fn()
	return nil
}

// diff lists the paths whose values differ between two flat views.
func diff(old, new *flatValues) []string {
	var paths []string
	new.each(func(p string, v any) {
		if ov, ok := old.get(p); !ok || !reflect.DeepEqual(ov, v) {
			paths = append(paths, p)
		}
	})
	old.each(func(p string, _ any) {
		if _, ok := new.get(p); !ok {
			paths = append(paths, p)
		}
	})
	sort.Strings(paths)
	return paths
}
