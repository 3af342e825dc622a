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
// that, but for Load handing first's keys over to the reload loop (after
// which first holds only the revision and the version).
type etcdSource struct {
	p            *etcdprov.Provider
	startup      StartupPolicy
	snapshotFile string
	log          *slog.Logger
	leaves       bool // read with ReadLeaves: a prefix of plain leaves needs no KVs

	first        *etcdprov.Data   // what Read returned; Watch starts after it
	fromSnapshot bool             // first came from the snapshot file
	leafKeys     *etcdprov.Leaves // the keys of the content Read returned without Keys, until Load takes them (see layer.leaves)
}

// Read reads the prefix under the start-up policy. The content of a prefix
// of plain leaves read with ReadLeaves has no Keys: s.leafKeys lists them.
func (s *etcdSource) Read(ctx context.Context) (*providers.Content, error) {
	d, fromSnapshot, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	s.first, s.fromSnapshot = d, fromSnapshot
	if ct, lv, ok := d.Leaves(); ok {
		s.leafKeys = lv
		return ct, nil
	}
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
			d, err = s.readNow(rctx)
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
		d, err = s.readNow(rctx)
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
		d, err = s.readNow(ctx)
		return d, false, err
	}
}

// readNow reads the prefix once, with ReadLeaves when s.leaves.
func (s *etcdSource) readNow(ctx context.Context) (*etcdprov.Data, error) {
	if s.leaves {
		return s.p.ReadLeaves(ctx)
	}
	return s.p.Read(ctx)
}

// Watch follows the prefix from the revision Read returned. After a start
// from the snapshot file it first reads etcd until it answers and hands
// that content over as one change, then watches from there.
//
// Every revision is handed over as Changes, one per key, with the path of
// each plain leaf key; the reload loop keeps the keys (Config.etcdRaw) and
// decides whether the changes can be applied alone. A re-read after
// compaction is handed over whole, as a Resync.
func (s *etcdSource) Watch(ctx context.Context, fn func(*providers.Content, error)) error {
	from := s.first
	if s.fromSnapshot {
		b := etcdprov.NewBackoff(100*time.Millisecond, 5*time.Second)
		for {
			d, err := s.p.Read(ctx)
			if err == nil {
				from = d
				fn(d.Content(s.p.Layout()))
				break
			}
			if !b.Sleep(ctx) {
				return ctx.Err()
			}
		}
	}
	return s.p.Watch(ctx, from, func(u etcdprov.Update) { fn(s.content(u)) })
}

// content turns an update of the watch into the layer's new content:
// Changes, one per key, with the path of each plain leaf key, or, for a
// Resync, the whole content.
func (s *etcdSource) content(u etcdprov.Update) (*providers.Content, error) {
	l := s.p.Layout()
	if u.Resync != nil {
		c, err := (&etcdprov.Data{Revision: u.Revision, KVs: maps.Clone(u.Resync.KVs)}).Content(l)
		c.Resync = true
		return c, err
	}
	changes := make([]providers.Change, len(u.Events))
	for i, ev := range u.Events {
		ch := providers.Change{Key: ev.Key, Removed: ev.Deleted}
		if e, err := l.Parse(ev.Key); err == nil && e.Codec == nil && e.Path != "" {
			ch.Path = e.Path
		}
		if !ev.Deleted {
			ch.Value, ch.Raw = string(ev.Value), ev.Value
		}
		changes[i] = ch
	}
	return &providers.Content{Revision: u.Revision, Changes: changes}, nil
}

// oddKeys counts the keys of an etcd layer that keep its changes from
// being applied alone: keys that are not plain leaves (documents, keys
// that do not fit the layout) and leaf keys with leaf keys beneath them.
func oddKeys(l etcdprov.Layout, kvs map[string][]byte) int {
	leaves := make(map[string]bool, len(kvs))
	odd := 0
	for k := range kvs {
		e, err := l.Parse(k)
		if err != nil || e.Codec != nil || e.Path == "" {
			odd++
			continue
		}
		leaves[e.Path] = true
	}
	seen := map[string]bool{}
	for p := range leaves {
		for q := parentPath(p); q != ""; q = parentPath(q) {
			if leaves[q] && !seen[q] {
				seen[q] = true
				odd++
			}
		}
	}
	return odd
}

// parentPath returns the dotted path above p, "" at the top.
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i]
}
