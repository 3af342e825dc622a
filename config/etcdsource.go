package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	d := from
	return s.p.Watch(ctx, from, func(u etcdprov.Update) {
		d = d.Apply(u)
		c, err := d.Content(l)
		c.Resync = u.Resync != nil
		fn(c, err)
	})
}
