package config

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// update is new content for one layer, delivered to the reload loop.
type update struct {
	layer    int                // index into Config.layers
	content  *providers.Content // the new content; with err, nil or only its revision
	err      error              // the layer could not read its new content
	rollout  *rolloutSeen       // instead of content: the rollout record changed (layer is the etcd layer's)
	received time.Time          // when the source delivered it
}

// start launches the watchers of every layer that can change, the status
// goroutine, and the reload loop that owns the layers from then on.
func (c *Config[T]) start() {
	if c.etcdSrc != nil {
		if c.opts.instance != nil || c.opts.snapshotFile != "" || c.opts.metrics != nil {
			c.startStatus()
		}
		if c.opts.watchEtcd && !c.etcdSrc.fromSnapshot {
			// Load has just read etcd: the watch counts as up from now
			// on, not from when its goroutine gets to run.
			c.etcd.Arm(c.etcdSrc.first)
		}
	}
	if c.instanceID != "" && c.etcdSrc != nil && c.opts.watchEtcd {
		ctx := c.runContext()
		c.sender(func() { c.watchRollout(ctx) })
	}
	for i, l := range c.layers {
		w, ok := l.src.(providers.Watcher)
		if !ok || !l.watch {
			continue
		}
		if i == c.etcdIdx && !c.etcdSrc.fromSnapshot {
			// The reload loop takes the etcd layer's updates itself, without
			// a goroutine in between, unless joining the shared watch needs
			// a read first.
			if sub, ok := c.etcd.Subscribe(c.etcdSrc.first); ok {
				c.etcdSub = sub
				continue
			}
		}
		ctx := c.runContext()
		c.sender(func() {
			err := w.Watch(ctx, func(content *providers.Content, err error) {
				c.send(ctx, update{layer: i, content: content, err: err, received: time.Now()})
			})
			if err != nil && ctx.Err() == nil {
				c.send(ctx, update{layer: i, err: fmt.Errorf("watch %s: %w", l.name, err), received: time.Now()})
			}
		})
	}
	if c.etcdSub == nil || c.updates != nil || c.opts.keyring != nil {
		c.runContext() // the loop waits on it, or hands it to the keyring
	}
	ctx := c.ctx // nil when the loop needs none: Close wakes it through etcdSub
	c.loopWG.Add(1)
	go func() {
		defer c.loopWG.Done()
		c.loopGID.Store(goid())
		c.loop(ctx)
	}()
}

// runContext returns the context that Close cancels, made on first use.
// Only start calls it, before the reload loop starts: a Config whose loop
// waits on its etcd subscription alone makes none.
func (c *Config[T]) runContext() context.Context {
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithCancel(context.Background())
	}
	return c.ctx
}

// sender starts fn on a goroutine of its own that sends updates to the
// reload loop.
func (c *Config[T]) sender(fn func()) {
	if c.updates == nil {
		c.updates = make(chan update)
	}
	c.goroutine(fn)
}

// startStatus starts the status goroutine once, unless Close was called.
// Until it runs, the reload loop's statuses wait in statusBox (the newest
// only).
func (c *Config[T]) startStatus() {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	if c.statusStarted || c.closed || c.etcdSrc == nil {
		return
	}
	c.statusStarted = true
	seed := !c.statusOn.Load() // the loop has let statuses go by
	c.enableStatus()
	if seed {
		c.seedStatus()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.statusCancel = cancel
	c.goroutine(func() { c.statusLoop(ctx) })
}

// goid returns the id of the calling goroutine, from the first line of its
// stack trace ("goroutine 42 [running]:"). Go offers no other way to know
// the current goroutine; Close needs it to tell a call from a subscriber
// (on the reload loop, which must not wait for itself) from a call on any
// other goroutine (which must wait for the running subscriber).
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}

func (c *Config[T]) goroutine(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// send hands u to the loop, giving up when ctx is done.
func (c *Config[T]) send(ctx context.Context, u update) {
	select {
	case c.updates <- u:
	case <-ctx.Done():
	}
}

// loop is the one goroutine that owns c.srcs and c.cur after Load: it
// applies updates one at a time, publishes snapshots and runs subscribers.
func (c *Config[T]) loop(ctx context.Context) {
	defer c.patcher.Reset() // waits for the copies it started
	var etcdReady, stop <-chan struct{}
	if c.etcdSub != nil {
		defer c.etcdSub.Close()
		etcdReady = c.etcdSub.Ready()
	}
	if ctx != nil && (c.etcdSub == nil || c.updates != nil) {
		// Else Close wakes the loop through the subscription: a
		// context's Done channel would be one more allocation per Config
		// for that alone.
		stop = ctx.Done()
	}
	for {
		select {
		case <-stop:
			return
		case u := <-c.updates:
			if c.closing.Load() {
				return // Close won the race with u
			}
			c.apply(u)
			c.settlePatcher()
		case <-etcdReady:
			if c.closing.Load() {
				return // Close
			}
			// One update per token: Next leaves a token while more wait,
			// so the other updates and Close get their turn in between.
			eu, ok := c.etcdSub.Next()
			if !ok {
				continue
			}
			content, err := c.etcdSrc.content(eu)
			c.apply(update{layer: c.etcdIdx, content: content, err: err, received: time.Now()})
			c.settlePatcher()
		}
	}
}

// settlePatcher ends the patcher's batch once an update is applied: when
// the snapshot now in force is the value the update patched, the maps it
// copied are copied again for the next change, now that nothing waits;
// else the batch is dropped.
func (c *Config[T]) settlePatcher() {
	if c.patchV != nil && c.snap.Load().Value == c.patchV {
		c.patcher.Commit()
	} else {
		c.patcher.Reset()
	}
	c.patchV = nil
}

// apply rebuilds the configuration with u's new content. A candidate that
// fails keeps the current snapshot; the layer keeps the new content anyway,
// so that the next update is judged against what the layers really hold. A
// layer that cannot be read keeps its previous content.
func (c *Config[T]) apply(u update) {
	if u.rollout != nil {
		c.applyRollout(u)
		return
	}
	if u.err != nil {
		err := fmt.Errorf("%w: %w", ErrSource, u.err)
		c.metrics.reload("rejected")
		if u.layer == c.etcdIdx && u.content != nil {
			if u.content.Raw != nil {
				// The keys are known even if their tree cannot be built:
				// the changes that follow apply to them.
				c.etcdRaw, c.etcdOdd, c.inSync = u.content.Raw, -1, false
				c.etcdStale = true // the tree keeps the keys before
			}
			c.rejected(u.content.Revision, err)
		}
		c.report(err)
		return
	}
	c.layers = slices.Clone(c.layers)
	old := c.snap.Load()
	if u.layer == c.etcdIdx && c.canary.overlay != nil && c.wantOverlay(u.content.Revision) == nil {
		c.canary.overlay = nil // the promotion's data has arrived
		c.etcdStale = true     // the layer's tree still carries the candidate: build it from the keys
	}
	var snap *Snapshot[T]
	var paths []string
	var err error
	if u.content.Changes != nil {
		snap, paths, err = c.applyChanges(u.layer, u.content, old)
	} else {
		l := &c.layers[u.layer]
		l.snapshot = false
		if u.layer == c.etcdIdx {
			c.etcdRaw, c.etcdOdd = u.content.Raw, -1 // a copy of the source's: the loop's own now
			if c.canary.overlay != nil {
				var ct *providers.Content
				if ct, err = c.etcdContent(u.content.Revision); err == nil {
					l.setContent(ct)
				}
			} else {
				ct := c.b.canonical(u.content, nil)
				if err = c.openContent(c.loopCtx(), ct, nil); err == nil {
					l.setContent(ct)
				}
			}
			c.etcdStale = err != nil
		} else {
			l.setContent(c.b.canonical(u.content, nil))
		}
		if err == nil {
			if snap, err = c.candidate(c.layers); err == nil {
				paths = diff(old.values, snap.values)
			}
		}
	}
	c.settle(u, old, snap, paths, err)
}

// rebuild builds the candidate from every layer after a change that only
// the reload loop knows of (the etcd layer became or stopped being a
// canary), and settles it.
func (c *Config[T]) rebuild(u update) {
	old := c.snap.Load()
	snap, err := c.candidate(c.layers)
	var paths []string
	if err == nil {
		paths = diff(old.values, snap.values)
	}
	c.settle(u, old, snap, paths, err)
}

// settle publishes snap, built for update u from the layers, and notifies
// the subscribers, or reports err and keeps old.
func (c *Config[T]) settle(u update, old, snap *Snapshot[T], paths []string, err error) {
	kind := c.layers[u.layer].kind
	etcdRev := int64(0) // the etcd revision the candidate was built for
	switch {
	case u.content != nil:
		etcdRev = u.content.Revision
	case c.etcdIdx >= 0:
		etcdRev = c.layers[c.etcdIdx].content.Revision
	}
	c.inSync = err == nil
	if err != nil {
		c.metrics.reload("rejected")
		if ov := c.canary.overlay; ov != nil {
			err = fmt.Errorf("config: candidate of rollout %s rejected, keeping revision %d: %w", ov.ID, old.Revision, err)
			c.canaryStatus(err)
		} else {
			err = fmt.Errorf("config: candidate from %s rejected, keeping revision %d: %w", kind, old.Revision, err)
		}
		if u.layer == c.etcdIdx {
			c.rejected(etcdRev, err)
		}
		c.report(err)
		return
	}
	resync := u.content != nil && u.content.Resync
	if len(paths) == 0 {
		snap.Value = old.Value // nothing a reader can see changed
	}
	// Published before its status is offered: see seedStatus.
	c.snap.Store(snap)
	c.published()
	if c.canary.rec != nil {
		c.canaryStatus(nil)
	}
	if len(paths) == 0 {
		c.metrics.reload("unchanged")
		c.metrics.observeLag(u.received)
		return
	}
	c.metrics.reload("applied")
	c.metrics.observeLag(u.received)
	c.notify(Change[T]{Old: old.Value, New: snap.Value, Revision: snap.Revision, From: old.Revision, Paths: paths, Source: kind, Resync: resync})
}

// rejected records that the etcd content at rev was rejected, for the
// instance record.
func (c *Config[T]) rejected(rev int64, err error) {
	cur := c.curStatus()
	if cur == nil {
		return
	}
	cur.rejectedRev, cur.rejectedErr = rev, err.Error()
	c.offer(*cur)
}

// published records that the snapshot just built from c.layers is in
// force, whatever layer's update caused it: the snapshot file and the
// instance record then describe the etcd content it was built from (which
// may be a revision that was rejected before and is valid now over a
// changed lower layer).
func (c *Config[T]) published() {
	if c.etcdIdx < 0 {
		return
	}
	l := c.layers[c.etcdIdx]
	// Degraded until content read from etcd (not the snapshot file) is in
	// force, however many revisions that takes.
	c.degraded.Store(l.snapshot)
	cur := c.curStatus()
	if cur == nil {
		return
	}
	rev := l.content.Revision
	if cur.data != nil && cur.data.Revision == rev && cur.fromSnapshot == l.snapshot && cur.rejectedRev != rev {
		return // nothing the status goroutine shows changed
	}
	cur.data = &etcdprov.Data{Revision: rev}
	if c.opts.snapshotFile != "" {
		kvs := c.etcdKVs()
		if c.etcdRaw != nil {
			kvs = maps.Clone(kvs) // the status goroutine writes it
		}
		cur.data.KVs = kvs
	}
	if l.snapshot {
		cur.data.Version = c.etcdSrc.first.Version
	}
	cur.fromSnapshot = l.snapshot
	if cur.rejectedRev == rev {
		cur.rejectedRev, cur.rejectedErr = 0, "" // applies now
	}
	c.offer(*cur)
}

// curStatus returns the status the reload loop offered last, an empty one
// when statuses are offered (statusOn) and none was yet, nil while they
// are not.
func (c *Config[T]) curStatus() *status {
	if c.cur == nil && c.statusOn.Load() {
		c.cur = &status{}
	}
	return c.cur
}
