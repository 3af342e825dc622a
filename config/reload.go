package config

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// update is new content for one source, delivered to the reload loop.
type update struct {
	src      int                     // index into Config.srcs
	read     func() (*source, error) // builds the source's new content; runs on the loop
	resync   bool                    // the etcd watch re-read the prefix after compaction
	received time.Time               // when the source delivered it
	revision int64                   // etcd revision of the content; etcd only
}

// start launches the watchers of every source that can change, the status
// goroutine, and the reload loop that owns the sources from then on.
func (c *Config[T]) start(etcdData *etcdprov.Data) {
	ctx, cancel := context.WithCancel(context.Background())
	c.ctx, c.cancel = ctx, cancel
	c.updates = make(chan update)
	c.loopDone = make(chan struct{})
	for i, s := range c.srcs {
		switch s.layer {
		case LayerEtcd:
			c.goroutine(func() { c.statusLoop(ctx) })
			if !c.opts.watchEtcd {
				continue
			}
			if !c.fromSnapshot {
				// Load has just read etcd: the watch counts as up from
				// now on, not from when its goroutine gets to run.
				c.etcd.Arm(etcdData)
			}
			c.goroutine(func() { c.watchEtcd(ctx, i, etcdData) })
		case LayerFile:
			if !c.opts.watchFiles {
				continue
			}
			path := s.name
			p := c.files[path]
			c.goroutine(func() {
				err := p.Watch(ctx, func() {
					c.send(ctx, update{src: i, received: time.Now(), read: func() (*source, error) { return readFile(p) }})
				})
				if err != nil && ctx.Err() == nil {
					c.send(ctx, update{src: i, read: func() (*source, error) {
						return nil, fmt.Errorf("%w: watch %s: %w", ErrSource, path, err)
					}})
				}
			})
		}
	}
	go func() {
		defer close(c.loopDone)
		c.loopGID.Store(goid())
		c.loop(ctx)
	}()
}

// watchEtcd follows the etcd prefix. After a start from the snapshot file it
// first reads etcd until it answers and hands that content over as one
// update, then watches from there.
func (c *Config[T]) watchEtcd(ctx context.Context, src int, from *etcdprov.Data) {
	l := c.etcd.Layout()
	if c.fromSnapshot {
		backoff := 100 * time.Millisecond
		for {
			d, err := c.etcd.Read(ctx)
			if err == nil {
				from = d
				c.send(ctx, update{src: src, received: time.Now(), revision: d.Revision,
					read: func() (*source, error) { return etcdSource(l, d) }})
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
	_ = c.etcd.Watch(ctx, from, func(u etcdprov.Update) {
		c.send(ctx, update{src: src, resync: u.Resync, received: time.Now(), revision: u.Data.Revision, read: func() (*source, error) {
			return etcdSource(l, u.Data)
		}})
	})
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
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-c.updates:
			if ctx.Err() != nil {
				return // Close won the race with u
			}
			c.apply(u)
		}
	}
}

// apply rebuilds the configuration with u's new content. A candidate that
// fails keeps the current snapshot; the source keeps the new content anyway,
// so that the next update is judged against what the layers really hold. A
// source that cannot be read keeps its previous content.
func (c *Config[T]) apply(u update) {
	layer := c.srcs[u.src].layer
	s, err := u.read()
	if err != nil {
		c.metrics.reload("rejected")
		if layer == LayerEtcd {
			c.rejected(u.revision, err)
		}
		c.report(err)
		return
	}
	c.srcs = slices.Clone(c.srcs)
	c.srcs[u.src] = s
	old := c.snap.Load()
	snap, err := c.candidate(c.srcs)
	if err != nil {
		c.metrics.reload("rejected")
		err = fmt.Errorf("config: candidate from %s rejected, keeping revision %d: %w", layer, old.Revision, err)
		if s.layer == LayerEtcd {
			c.rejected(s.revision, err)
		}
		c.report(err)
		return
	}
	c.published()
	paths := diff(old.values, snap.values)
	if len(paths) == 0 {
		snap.Value = old.Value // nothing a reader can see changed
		c.snap.Store(snap)
		c.metrics.reload("unchanged")
		c.metrics.observeLag(u.received)
		return
	}
	c.snap.Store(snap)
	c.metrics.reload("applied")
	c.metrics.observeLag(u.received)
	c.notify(Change[T]{Old: old.Value, New: snap.Value, Revision: snap.Revision, Paths: paths, Source: layer, Resync: u.resync})
}

// rejected records that the etcd content at rev was rejected, for the
// instance record.
func (c *Config[T]) rejected(rev int64, err error) {
	c.cur.rejectedRev, c.cur.rejectedErr = rev, err.Error()
	c.offer(c.cur)
}

// published records that the snapshot just built from c.srcs is in force,
// whatever layer's update caused it: the snapshot file and the instance
// record then describe the etcd content it was built from (which may be a
// revision that was rejected before and is valid now over a changed lower
// layer).
func (c *Config[T]) published() {
	for _, s := range c.srcs {
		if s.layer != LayerEtcd {
			continue
		}
		// Degraded until content read from etcd (not the snapshot file)
		// is in force, however many revisions that takes.
		c.degraded.Store(s.snapshot)
		if c.cur.data == s.data && c.cur.fromSnapshot == s.snapshot && c.cur.rejectedRev != s.revision {
			return // nothing the status goroutine shows changed
		}
		c.cur.data, c.cur.fromSnapshot = s.data, s.snapshot
		if c.cur.rejectedRev == s.revision {
			c.cur.rejectedRev, c.cur.rejectedErr = 0, "" // applies now
		}
		c.offer(c.cur)
	}
}
