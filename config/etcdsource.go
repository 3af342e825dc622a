package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// etcdSource is the etcd layer as a providers.Watcher: the provider, read
// under the start-up policy (which may fall back to the snapshot file),
// and watched from the revision read. Read runs once, in Load, before Watch
// starts on its own goroutine; first and fromSnapshot are not written after
// that.
type etcdSource struct {
	p            *etcdprov.Provider
	startup      StartupPolicy
	snapshotFile string
	log          *slog.Logger

	first        *etcdprov.Data // what Read returned; Watch starts after it
	fromSnapshot bool           // first came from the snapshot file
}

// Read reads the prefix under the start-up policy.
func (s *etcdSource) Read(ctx context.Context) (*providers.Content, error) {
	d, fromSnapshot, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	s.first, s.fromSnapshot = d, fromSnapshot
	return d.Content(s.p.Layout())
}

// read reads the prefix under the start-up policy. fromSnapshot is true
// when the data came from the snapshot file.
func (s *etcdSource) read(ctx context.Context) (d *etcdprov.Data, fromSnapshot bool, err error) {
	switch s.startup.kind {
	case startWait:
		deadline := time.Now().Add(s.startup.wait)
		b := etcdprov.NewBackoff(50*time.Millisecond, time.Second)
		for {
			rctx, cancel := context.WithDeadline(ctx, deadline)
			d, err = s.p.Read(rctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				return d, false, err
			}
			wait := b.Next()
			if time.Now().Add(wait).After(deadline) {
				return nil, false, err
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, false, err
			}
		}
	case startSnapshot:
		if s.snapshotFile == "" {
			return nil, false, errors.New("config: FromSnapshot needs WithSnapshotFile")
		}
		// Leave time for the snapshot within the caller's deadline.
		try := etcdprov.DefaultRequestTimeout
		if dl, ok := ctx.Deadline(); ok {
			try = min(try, time.Until(dl)/2)
		}
		rctx, cancel := context.WithTimeout(ctx, try)
		d, err = s.p.Read(rctx)
		cancel()
		if err == nil {
			return d, false, nil
		}
		snap, serr := readSnapshotFile(s.snapshotFile, s.p.Layout())
		if serr != nil {
			return nil, false, fmt.Errorf("%w; and no usable snapshot: %w", err, serr)
		}
		s.log.Warn("config: etcd unreachable, starting from snapshot", "file", s.snapshotFile,
			"revision", snap.Revision, "version", snap.Version, "err", err)
		return snap, true, nil
	default:
		d, err = s.p.Read(ctx)
		return d, false, err
	}
}

// Watch follows the prefix from the revision Read returned. After a start
// from the snapshot file it first reads etcd until it answers and hands
// that content over as one change, then watches from there.
//
// A revision that only sets or removes plain leaf keys (no document keys in
// the prefix, no leaf key above or below another) is handed over as
// Changes; any other, and every one after a content that could not be read,
// as the whole content.
func (s *etcdSource) Watch(ctx context.Context, fn func(*providers.Content, error)) error {
	l := s.p.Layout()
	from := s.first
	if s.fromSnapshot {
		b := etcdprov.NewBackoff(100*time.Millisecond, 5*time.Second)
		for {
			d, err := s.p.Read(ctx)
			if err == nil {
				from = d
				fn(d.Content(l))
				break
			}
			if !b.Sleep(ctx) {
				return ctx.Err()
			}
		}
	}
	kvs := maps.Clone(from.KVs)
	if kvs == nil {
		kvs = make(map[string][]byte)
	}
	sh := newShape(l, kvs)
	_, err := from.Content(l)
	synced := err == nil // the last content handed over was read whole
	return s.p.Watch(ctx, from, func(u etcdprov.Update) {
		if u.Resync == nil && synced {
			if changes, ok := sh.apply(l, u.Events); ok {
				for _, ev := range u.Events {
					if ev.Deleted {
						delete(kvs, ev.Key)
					} else {
						kvs[ev.Key] = ev.Value
					}
				}
				fn(&providers.Content{Revision: u.Revision, Changes: changes}, nil)
				return
			}
		}
		if u.Resync != nil {
			kvs = maps.Clone(u.Resync.KVs)
		} else {
			for _, ev := range u.Events {
				if ev.Deleted {
					delete(kvs, ev.Key)
				} else {
					kvs[ev.Key] = ev.Value
				}
			}
		}
		sh = newShape(l, kvs)
		c, err := (&etcdprov.Data{Revision: u.Revision, KVs: maps.Clone(kvs)}).Content(l)
		c.Resync = u.Resync != nil
		synced = err == nil
		fn(c, err)
	})
}

// shape is what the etcd source knows of the layout of the keys it
// watches: enough to tell a revision that sets or removes plain leaves
// from one that changes the shape of the tree. It belongs to Watch's
// goroutine.
type shape struct {
	plain  bool            // only leaf keys that parse, none above or below another
	leaves map[string]bool // config paths of the leaf keys
	inner  map[string]int  // config path → leaf keys beneath it
}

func newShape(l etcdprov.Layout, kvs map[string][]byte) *shape {
	sh := &shape{plain: true, leaves: make(map[string]bool, len(kvs)), inner: make(map[string]int)}
	for k := range kvs {
		e, err := l.Parse(k)
		if err != nil || e.Codec != nil || e.Path == "" {
			sh.plain = false
			return sh
		}
		sh.leaves[e.Path] = true
		for p := parentPath(e.Path); p != ""; p = parentPath(p) {
			sh.inner[p]++
		}
	}
	for p := range sh.leaves {
		if sh.inner[p] > 0 {
			sh.plain = false // a leaf key with keys beneath it
		}
	}
	return sh
}

// apply turns the events of one revision into Changes, and reports false
// (leaving sh to be rebuilt) when one of them changes the tree's shape.
func (sh *shape) apply(l etcdprov.Layout, events []etcdprov.Event) ([]providers.Change, bool) {
	if !sh.plain {
		return nil, false
	}
	changes := make([]providers.Change, 0, len(events))
	for _, ev := range events {
		e, err := l.Parse(ev.Key)
		if err != nil || e.Codec != nil || e.Path == "" || sh.inner[e.Path] > 0 {
			return nil, false
		}
		for p := parentPath(e.Path); p != ""; p = parentPath(p) {
			if sh.leaves[p] {
				return nil, false
			}
		}
		if ev.Deleted {
			if !sh.leaves[e.Path] {
				return nil, false
			}
			delete(sh.leaves, e.Path)
			for p := parentPath(e.Path); p != ""; p = parentPath(p) {
				if sh.inner[p]--; sh.inner[p] == 0 {
					delete(sh.inner, p)
				}
			}
			changes = append(changes, providers.Change{Path: e.Path, Key: ev.Key, Removed: true})
			continue
		}
		if !sh.leaves[e.Path] {
			sh.leaves[e.Path] = true
			for p := parentPath(e.Path); p != ""; p = parentPath(p) {
				sh.inner[p]++
			}
		}
		changes = append(changes, providers.Change{Path: e.Path, Key: ev.Key, Value: string(ev.Value), Raw: ev.Value})
	}
	return changes, true
}

// parentPath returns the dotted path above p, "" at the top.
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i]
}
