//go:build faultsuite

package faultsuite

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// violations collects what the checks found, by kind ("watcher@m0 out of
// order"). Every violation counts; a few examples of each kind are kept.
type violations struct {
	n     int
	order []string // kinds in the order first seen
	kinds map[string]*kind
}

// kind is one kind of violation: how often it happened and its first
// examples.
type kind struct {
	n        int
	examples []string
}

// examplesPerKind bounds the examples kept of each kind.
const examplesPerKind = 3

func (v *violations) add(k, format string, args ...any) {
	v.n++
	if v.kinds == nil {
		v.kinds = map[string]*kind{}
	}
	kd := v.kinds[k]
	if kd == nil {
		kd = &kind{}
		v.kinds[k] = kd
		v.order = append(v.order, k)
	}
	kd.n++
	if len(kd.examples) < examplesPerKind {
		kd.examples = append(kd.examples, fmt.Sprintf(format, args...))
	}
}

// lines renders one line per kind: "kind (N times): example; example".
func (v *violations) lines() []string {
	var out []string
	for _, k := range v.order {
		kd := v.kinds[k]
		line := fmt.Sprintf("%s (%d times): %s", k, kd.n, strings.Join(kd.examples, "; "))
		if kd.n > len(kd.examples) {
			line += "; ..."
		}
		out = append(out, line)
	}
	return out
}

// final is the state of the prefix after the stream, read once every
// member is back.
type final struct {
	Value    *App  // bound and validated by the writer
	Version  int64 // newest release version
	Revision int64 // the revision it was read at: every watcher must end there
	DataRev  int64 // the newest mod revision of a data key
	History  []config.Release
}

// committed counts the writer releases after the seed release.
func (f *final) committed(seed int64) int {
	n := 0
	for _, r := range f.History {
		if !r.Unrecorded && r.Version > seed {
			n++
		}
	}
	return n
}

// readFinal reads the final value, version, revision and History.
func readFinal(ctx context.Context, c *Cluster, w *config.Writer[App], prefix string) (*final, error) {
	f := &final{}
	type got struct {
		v        *App
		ver, rev int64
	}
	g, err := retry(ctx, 10, func(ctx context.Context) (got, error) {
		v, ver, rev, err := w.Get(ctx)
		return got{v, ver, rev}, err
	})
	if err != nil {
		return nil, err
	}
	f.Value, f.Version, f.Revision = g.v, g.ver, g.rev
	f.History, err = retry(ctx, 10, func(ctx context.Context) ([]config.Release, error) { return w.History(ctx, 0) })
	if err != nil {
		return nil, err
	}
	resp, err := retry(ctx, 10, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.admin.Get(ctx, etcdprov.NewLayout(prefix).Data(), clientv3.WithPrefix(), clientv3.WithRev(f.Revision))
	})
	if err != nil {
		return nil, err
	}
	for _, kv := range resp.Kvs {
		f.DataRev = max(f.DataRev, kv.ModRevision)
	}
	return f, nil
}

// checkWrites checks the writer's side: every acknowledged write is in
// History with its revision and hash, the counter holds every acknowledged
// increment (and no more than were attempted), and the data is the newest
// release's.
func checkWrites(v *violations, seed int64, s *stream, f *final) {
	if f.DataRev != f.Revision {
		v.add("final revision", "the final revision %d is not the newest data revision %d: something wrote outside the prefix's data", f.Revision, f.DataRev)
	}
	byVersion := map[int64]config.Release{}
	for i, r := range f.History {
		if r.Unrecorded {
			if i == 0 {
				v.add("history", "History starts with an unrecorded change (the data differs from the newest release): %s", r.Message)
			}
			continue
		}
		byVersion[r.Version] = r
	}
	for n := seed; n <= f.Version; n++ {
		if _, ok := byVersion[n]; !ok {
			v.add("history", "History lacks release %d (newest %d)", n, f.Version)
		}
	}
	ackedVersion := map[int64]int{}
	lastStep := 0
	for _, a := range s.acked {
		if prev, ok := ackedVersion[a.rel.Version]; ok {
			v.add("acknowledged writes", "steps %d and %d were both acknowledged as release %d", prev, a.step, a.rel.Version)
		}
		ackedVersion[a.rel.Version] = a.step
		lastStep = a.step
		h, ok := byVersion[a.rel.Version]
		switch {
		case !ok:
			v.add("acknowledged writes", "acknowledged write of step %d (release %d, revision %d) is not in History", a.step, a.rel.Version, a.rel.Revision)
		case h.Revision != a.rel.Revision:
			v.add("acknowledged writes", "acknowledged write of step %d: release %d has revision %d in History, %d when acknowledged", a.step, a.rel.Version, h.Revision, a.rel.Revision)
		case h.Hash != a.rel.Hash:
			v.add("acknowledged writes", "acknowledged write of step %d: release %d has hash %s in History, %s when acknowledged", a.step, a.rel.Version, h.Hash, a.rel.Hash)
		}
	}
	committed := f.committed(seed)
	switch {
	case f.Value.Counter < len(s.acked):
		v.add("counter", "lost writes: counter is %d, %d increments were acknowledged", f.Value.Counter, len(s.acked))
	case f.Value.Counter != committed:
		v.add("counter", "counter is %d but %d releases followed the seed: an increment was applied twice or lost", f.Value.Counter, committed)
	case committed > len(s.acked)+len(s.failed):
		v.add("counter", "%d releases committed from %d attempted writes", committed, len(s.acked)+len(s.failed))
	}
	if f.Value.Seq < lastStep {
		v.add("final value", "seq is %d, but step %d was acknowledged", f.Value.Seq, lastStep)
	}
	if f.Value.Limit != validLimit {
		v.add("final value", "limit ends at %d, want %d (an invalid put committed after its fix?)", f.Value.Limit, validLimit)
	}
}

// checkWatcher checks one watcher: it ended at the final revision and
// value; the revisions it reported rose strictly and its counter never
// went back; it never applied an invalid configuration; it saw every
// acknowledged revision (or a resync past it); and it reported every
// invalid value to OnError and nothing else.
func checkWatcher(v *violations, w *watcher, f *final, s *stream) {
	snap := w.cfg.Snapshot()
	if snap.Revision != f.Revision {
		v.add(w.name+" convergence", "%s did not converge: at revision %d, the final revision is %d (health %+v)", w.name, snap.Revision, f.Revision, *w.cfg.Health().Etcd)
	}
	if *snap.Value != *f.Value {
		v.add(w.name+" convergence", "%s ended with %+v, etcd holds %+v", w.name, *snap.Value, *f.Value)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, msg := range w.invalid {
		v.add(w.name+" applied an invalid configuration", "%s", msg)
	}
	prevRev, prevCounter := w.startRev, -1
	for _, ch := range w.changes {
		if ch.rev <= prevRev {
			v.add(w.name+" revision order", "%s saw revision %d after revision %d (a revision twice or out of order)", w.name, ch.rev, prevRev)
		}
		if ch.new.Counter < prevCounter {
			v.add(w.name+" counter order", "%s saw the counter go back from %d to %d at revision %d", w.name, prevCounter, ch.new.Counter, ch.rev)
		}
		prevRev, prevCounter = max(prevRev, ch.rev), max(prevCounter, ch.new.Counter)
	}
	// first returns the first change at or after rev.
	first := func(rev int64) (seen, bool) {
		for _, ch := range w.changes {
			if ch.rev >= rev {
				return ch, true
			}
		}
		return seen{}, false
	}
	for _, a := range s.acked {
		if a.rel.Revision <= w.startRev {
			continue
		}
		ch, ok := first(a.rel.Revision)
		if !ok || (ch.rev != a.rel.Revision && !ch.resync) {
			v.add(w.name+" skipped revisions", "%s skipped acknowledged revision %d (step %d)", w.name, a.rel.Revision, a.step)
		}
	}
	resyncs := w.cfg.Health().Etcd.Resyncs
	badRevs := map[int64]bool{}
	for _, b := range s.bad {
		if b.rev == 0 || b.rev <= w.startRev {
			continue
		}
		badRevs[b.rev] = true
		// A resync after a compaction may legitimately jump over it.
		if w.rejected[b.rev] == 0 && resyncs == 0 {
			v.add(w.name+" OnError", "%s did not report the invalid value %q at revision %d (step %d) to OnError", w.name, b.value, b.rev, b.step)
		}
	}
	for rev, n := range w.rejected {
		if !badRevs[rev] {
			v.add(w.name+" OnError", "%s rejected revision %d, which holds no injected invalid value (%d times): %v", w.name, rev, n, w.firstErr[rev])
		} else if n > 1 {
			v.add(w.name+" OnError", "%s reported the invalid revision %d %d times (applied twice)", w.name, rev, n)
		}
	}
	for _, msg := range w.others {
		v.add(w.name+" OnError", "%s reported an unexpected error: %s", w.name, msg)
	}
}
