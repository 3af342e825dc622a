package config

import (
	"context"
	"fmt"
	"slices"

	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/providers/file"
)

// update is new content for one source, delivered to the reload loop.
type update struct {
	src    int                     // index into Config.srcs
	read   func() (*source, error) // builds the source's new content; runs on the loop
	resync bool
}

// start launches the watchers of every source that can change and the
// reload loop that owns the sources from then on.
func (c *Config[T]) start(etcdData *etcdprov.Data) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.updates = make(chan update)
	for i, s := range c.srcs {
		switch s.layer {
		case LayerEtcd:
			if !c.opts.watchEtcd {
				continue
			}
			l := c.etcd.Layout()
			c.goroutine(func() {
				_ = c.etcd.Watch(ctx, etcdData, func(u etcdprov.Update) {
					c.send(ctx, update{src: i, resync: u.Resync, read: func() (*source, error) {
						return etcdSource(l, u.Data)
					}})
				})
			})
		case LayerFile:
			if !c.opts.watchFiles {
				continue
			}
			path := s.name
			p, err := file.New(path)
			if err != nil {
				continue // Load read it with the same codec; cannot happen
			}
			c.goroutine(func() {
				err := p.Watch(ctx, func() {
					c.send(ctx, update{src: i, read: func() (*source, error) { return readFile(path) }})
				})
				if err != nil && ctx.Err() == nil {
					c.send(ctx, update{src: i, read: func() (*source, error) {
						return nil, fmt.Errorf("%w: watch %s: %w", ErrSource, path, err)
					}})
				}
			})
		}
	}
	c.goroutine(func() { c.loop(ctx) })
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

// loop is the one goroutine that owns c.srcs after Load: it applies
// updates one at a time, publishes snapshots and runs subscribers.
func (c *Config[T]) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-c.updates:
			c.apply(u)
		}
	}
}

// apply rebuilds the configuration with u's new content. A candidate that
// fails keeps the current snapshot; the source keeps the new content anyway,
// so that the next update is judged against what the layers really hold.
func (c *Config[T]) apply(u update) {
	layer := c.srcs[u.src].layer
	s, err := u.read()
	if err != nil {
		c.report(err)
		return
	}
	c.srcs = slices.Clone(c.srcs)
	c.srcs[u.src] = s
	old := c.snap.Load()
	snap, err := c.candidate(c.srcs)
	if err != nil {
		c.report(fmt.Errorf("config: candidate from %s rejected, keeping revision %d: %w", layer, old.Revision, err))
		return
	}
	paths := diff(old.values, snap.values)
	if len(paths) == 0 {
		snap.Value = old.Value // nothing a reader can see changed
		c.snap.Store(snap)
		return
	}
	c.snap.Store(snap)
	c.notify(Change[T]{Old: old.Value, New: snap.Value, Revision: snap.Revision, Paths: paths, Source: layer, Resync: u.resync})
}
