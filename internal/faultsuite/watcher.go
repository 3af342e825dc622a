//go:build faultsuite

package faultsuite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/schema"
)

// watcher is a Config on one member's client that records every change
// and every error it reports.
type watcher struct {
	name     string
	cfg      *config.Config[App]
	startRev int64 // the revision Load read

	mu       sync.Mutex
	changes  []seen
	invalid  []string        // each Change.New that failed validation
	rejected map[int64]int   // *config.InvalidError reports by revision
	others   []string        // any other error reported
	firstErr map[int64]error // the first report of each revision
}

// seen is one Change as a subscriber saw it.
type seen struct {
	rev      int64
	resync   bool
	old, new App
}

// newWatcher loads a Config of prefix through a client of member m alone.
// Its subscriber validates every new value (schema.Validate).
func newWatcher(ctx context.Context, t testing.TB, c *Cluster, m *Member, prefix string) (*watcher, error) {
	cli := c.Client(t, m.ClientURL)
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := config.Load[App](lctx, config.WithEtcd(cli, prefix), config.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("load %s through %s: %w", prefix, m.Name, err)
	}
	t.Cleanup(func() { _ = cfg.Close() })
	w := &watcher{name: "watcher@" + m.Name, cfg: cfg, startRev: cfg.Snapshot().Revision,
		rejected: map[int64]int{}, firstErr: map[int64]error{}}
	cfg.OnChange(func(ch config.Change[App]) {
		w.mu.Lock()
		w.changes = append(w.changes, seen{rev: ch.Revision, resync: ch.Resync, old: *ch.Old, new: *ch.New})
		if err := schema.Validate(ch.New); err != nil {
			w.invalid = append(w.invalid, fmt.Sprintf("%+v at revision %d: %v", *ch.New, ch.Revision, err))
		}
		w.mu.Unlock()
	})
	cfg.OnError(func(err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var ie *config.InvalidError
		if errors.As(err, &ie) {
			w.rejected[ie.Revision]++
			if _, ok := w.firstErr[ie.Revision]; !ok {
				w.firstErr[ie.Revision] = err
			}
			return
		}
		w.others = append(w.others, err.Error())
	})
	return w, nil
}

// rejections counts the invalid candidates the watcher reported.
func (w *watcher) rejections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, k := range w.rejected {
		n += k
	}
	return n
}

// waitConverged waits, at most d, until every watcher's snapshot is at
// revision rev.
func waitConverged(ctx context.Context, ws []*watcher, rev int64, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		done := true
		for _, w := range ws {
			if w.cfg.Snapshot().Revision != rev {
				done = false
			}
		}
		if done || !sleep(ctx, 20*time.Millisecond) {
			return
		}
	}
}
