package etcd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds of the shared watch (see Provider.Watch and Update).
const (
	// MaxPendingUpdates is how many updates may wait for one caller of
	// Watch (one whose fn is slower than the change rate) before they are
	// merged into one. WithMaxPending changes it for a provider.
	MaxPendingUpdates = 1024
	// MaxPendingBytes is how many bytes of keys and values (a Resync
	// counts its whole content) may wait for one caller of Watch behind
	// the oldest waiting update before the waiting updates are merged into
	// one. The oldest is left out so that an update already merged (or a
	// Resync), which may hold every key, does not make every later update
	// merge it again. WithMaxPending changes it for a provider.
	MaxPendingBytes = 64 << 20

	// ReplayUpdates and ReplayBytes bound the newest updates a shared
	// watch keeps for callers that join it later from an older revision:
	// a caller whose revision is older than the oldest kept update gets a
	// Resync (the prefix read again) instead.
	ReplayUpdates = 256
	ReplayBytes   = 8 << 20
)

// The registry of shared watches: one per client and data prefix, in the
// manner of go-zero's core/discov/internal/registry.go. A watch (hub) is
// created by the first caller of Provider.Watch for its client and prefix
// and ends when the last one leaves. Lock order: hubs, hub.mu, sub.mu;
// Provider.state.mu before hub.st.mu.
var hubs = struct {
	sync.Mutex
	m map[hubKey]*hub
}{m: make(map[hubKey]*hub)}

type hubKey struct {
	cli    *clientv3.Client
	prefix string // Layout.Data()
}

// hub is one etcd watch of a client and prefix, fanned out to the callers
// of Provider.Watch. Its goroutine (run) keeps draining clientv3's channel
// and never waits for a caller: each caller has a queue of its own (sub),
// bounded by merging (coalesce).
type hub struct {
	key    hubKey
	reader *Provider // reads the prefix after a compaction
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	st     watchState    // the stream's Watching, Reconnects, Resyncs, LastError

	mu        sync.Mutex
	subs      map[*sub]struct{}
	rev       int64   // revision of the newest update published, or the start
	ring      []entry // the newest updates, oldest first, the last at rev
	ringBytes int
	ringFrom  int64 // every update after ringFrom is in ring (or ring starts with a Resync)
}

// entry is an update and its size in bytes of keys and values.
type entry struct {
	u    Update
	size int
}

func newEntry(u Update) entry { return entry{u: u, size: updateSize(u)} }

func updateSize(u Update) int {
	n := 0
	if u.Resync != nil {
		for k, v := range u.Resync.KVs {
			n += len(k) + len(v)
		}
	}
	for _, ev := range u.Events {
		n += len(ev.Key) + len(ev.Value)
	}
	return n
}

// startHub starts the watch of key from revision from on; p lends its
// request timeout to the re-reads after compaction. The caller holds hubs.
func startHub(key hubKey, p *Provider, from int64) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		key:      key,
		reader:   &Provider{cli: p.cli, layout: p.layout, timeout: p.timeout},
		cancel:   cancel,
		done:     make(chan struct{}),
		subs:     make(map[*sub]struct{}),
		rev:      from,
		ringFrom: from,
	}
	// Watching from the start, as Arm has it: the caller has just read the
	// prefix, and the stream is about to open.
	h.st.s.Watching = true
	go h.run(ctx, from)
	return h
}

// covered reports whether every update after rev is still in the ring.
// The caller holds h.mu.
func (h *hub) covered(rev int64) bool {
	return rev >= h.ringFrom || (len(h.ring) > 0 && h.ring[0].u.Resync != nil)
}

// add registers s, which has applied revision s.last, and queues for it pre
// (a Resync read for it, or nil) and the updates of the ring it has not
// seen. It returns false, adding nothing, when the ring no longer holds
// every update after rev (s.last, or pre's revision). replayedResync is
// true when the ring's Resync was queued. The caller holds h.mu.
func (h *hub) add(s *sub, rev int64, pre *Update) (ok, replayedResync bool) {
	if !h.covered(rev) {
		return false, false
	}
	s.mu.Lock()
	if pre != nil {
		s.push(newEntry(*pre))
	}
	for _, e := range h.ring {
		if s.push(e) && e.u.Resync != nil {
			replayedResync = true
		}
	}
	s.mu.Unlock()
	h.subs[s] = struct{}{}
	return true, replayedResync
}

// publish hands u to every caller and keeps it for later ones.
func (h *hub) publish(u Update) {
	e := newEntry(u)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = u.Revision
	h.remember(e)
	for s := range h.subs {
		s.mu.Lock()
		s.push(e)
		s.mu.Unlock()
	}
}

// remember adds e to the ring, dropping the oldest updates beyond
// ReplayUpdates or ReplayBytes. A Resync makes every update before it
// useless. The caller holds h.mu.
func (h *hub) remember(e entry) {
	if e.u.Resync != nil {
		clear(h.ring)
		h.ring, h.ringBytes, h.ringFrom = h.ring[:0], 0, e.u.From
	}
	h.ring = append(h.ring, e)
	h.ringBytes += e.size
	for len(h.ring) > ReplayUpdates || (len(h.ring) > 0 && h.ringBytes > ReplayBytes) {
		old := h.ring[0]
		h.ring[0] = entry{}
		h.ring = h.ring[1:]
		h.ringBytes -= old.size
		h.ringFrom = old.u.Revision
	}
}

// sub is one caller's queue: filled by the hub's goroutine, emptied by the
// caller's, one update at a time.
type sub struct {
	maxN, maxBytes int
	ready          chan struct{} // a token when the queue may have grown

	mu    sync.Mutex
	q     []entry
	bytes int
	last  int64 // revision of the newest update queued, or the caller's start
}

func newSub(from int64, maxN, maxBytes int) *sub {
	if maxN <= 0 {
		maxN = MaxPendingUpdates
	}
	if maxBytes <= 0 {
		maxBytes = MaxPendingBytes
	}
	return &sub{maxN: maxN, maxBytes: maxBytes, ready: make(chan struct{}, 1), last: from}
}

// push queues e unless the caller has it already (its revision is at or
// below s.last), as the step from s.last, and merges the queue into one
// update once it passes the bounds. It never blocks. The caller holds s.mu.
func (s *sub) push(e entry) bool {
	if e.u.Revision <= s.last {
		return false
	}
	e.u.From = s.last // a caller that skipped updates follows its own revision
	s.last = e.u.Revision
	s.q = append(s.q, e)
	s.bytes += e.size
	if len(s.q) > 1 && (len(s.q) > s.maxN || s.bytes-s.q[0].size > s.maxBytes) {
		m := newEntry(coalesce(s.q))
		clear(s.q)
		s.q = append(s.q[:0], m)
		s.bytes = m.size
	}
	s.signal()
	return true
}

// signal leaves a token in ready, unless one is there.
func (s *sub) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the oldest queued update, waiting for one; false when ctx
// is done.
func (s *sub) next(ctx context.Context) (Update, bool) {
	for {
		if ctx.Err() != nil {
			return Update{}, false
		}
		if u, ok := s.pop(); ok {
			return u, true
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return Update{}, false
		}
	}
}

// pop returns the oldest queued update without waiting; false when none
// is queued. When more are queued behind it, ready has a token.
func (s *sub) pop() (Update, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return Update{}, false
	}
	e := s.q[0]
	s.q[0] = entry{}
	s.q = s.q[1:]
	if len(s.q) == 0 {
		s.q = nil // let go of the array a backlog grew
	} else {
		s.signal()
	}
	s.bytes -= e.size
	return e.u, true
}

// coalesce merges consecutive updates into one from the first's From to
// the last's Revision: each key once with its last change (a delete stays
// a delete), sorted by key; from the last Resync on, a Resync of the
// content at the last revision.
func coalesce(q []entry) Update {
	out := Update{From: q[0].u.From, Revision: q[len(q)-1].u.Revision}
	start := 0
	var base *Data
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].u.Resync != nil {
			base, start = q[i].u.Resync, i+1
			break
		}
	}
	idx := make(map[string]int)
	var evs []Event
	for _, e := range q[start:] {
		for _, ev := range e.u.Events {
			if i, ok := idx[ev.Key]; ok {
				evs[i] = ev
				continue
			}
			idx[ev.Key] = len(evs)
			evs = append(evs, ev)
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Key < evs[j].Key })
	switch {
	case base == nil:
		out.Events = evs
	case len(evs) == 0:
		out.Resync = base
	default:
		out.Resync = base.Apply(Update{Revision: out.Revision, Events: evs})
	}
	return out
}

// run is the hub's goroutine: it follows the prefix from revision from on
// until ctx is done, re-opening a failed watch from the last published
// revision with backoff, and re-reading the prefix once after a
// compaction.
func (h *hub) run(ctx context.Context, from int64) {
	defer close(h.done)
	// A watcher of its own, over a gRPC watch client that reports when a
	// stream breaks and when a new one answers (see observedWatchClient).
	cli := h.key.cli
	w := clientv3.NewWatchFromWatchClient(observedWatchClient{pb.NewWatchClient(cli.ActiveConnection()), h}, cli)
	defer w.Close()
	rev := from
	backoff := NewBackoff(minBackoff, maxBackoff)
	for {
		err := h.watchOnce(ctx, w, &rev, backoff)
		if ctx.Err() != nil {
			h.st.update(func(s *WatchState) { s.Watching = false })
			return
		}
		h.st.mu.Lock()
		h.st.s.Watching = false
		h.st.setError(err)
		h.st.broken = h.st.broken || !errors.Is(err, rpctypes.ErrCompacted)
		h.st.mu.Unlock()
		if errors.Is(err, rpctypes.ErrCompacted) {
			d, err := h.reader.readRetry(ctx, backoff, &h.st)
			if err != nil {
				return // ctx is done
			}
			u := Update{From: rev, Revision: d.Revision, Resync: d}
			rev = d.Revision
			h.st.update(func(s *WatchState) { s.Resyncs++ })
			h.publish(u)
			continue
		}
		if !backoff.Sleep(ctx) {
			return
		}
	}
}

// watchOnce runs one watch stream from *rev+1 until it fails.
func (h *hub) watchOnce(ctx context.Context, w clientv3.Watcher, rev *int64, backoff *Backoff) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// No WithProgressNotify: the resume revision only ever advances to the
	// revision of events actually published, so that a progress
	// notification sent ahead of its events (etcd issue 15220, in older
	// servers) cannot make the watch skip them.
	wch := w.Watch(wctx, h.key.prefix, clientv3.WithPrefix(), clientv3.WithRev(*rev+1))
	h.st.update(func(s *WatchState) { s.Watching = true })
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("watch from revision %d: %w (compacted at %d)", *rev+1, rpctypes.ErrCompacted, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return h.reader.wrap(fmt.Sprintf("watch %s from revision %d", h.key.prefix, *rev+1), err)
		}
		backoff.Reset()
		evs := resp.Events
		for len(evs) > 0 {
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			if r <= *rev { // already published (a resumed stream may repeat)
				evs = evs[n:]
				continue
			}
			u := Update{From: *rev, Revision: r, Events: make([]Event, 0, n)}
			for _, ev := range evs[:n] {
				if ev.Type == clientv3.EventTypeDelete {
					u.Events = append(u.Events, Event{Key: string(ev.Kv.Key), Deleted: true})
				} else {
					u.Events = append(u.Events, Event{Key: string(ev.Kv.Key), Value: ev.Kv.Value})
				}
			}
			*rev = r
			h.publish(u)
			evs = evs[n:]
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return h.reader.wrap("watch "+h.key.prefix, errWatchClosed)
}

// readRetry reads the prefix until it succeeds or ctx is done, recording
// each failure in st.
func (p *Provider) readRetry(ctx context.Context, backoff *Backoff, st *watchState) (*Data, error) {
	for {
		d, err := p.Read(ctx)
		if err == nil {
			return d, nil
		}
		st.mu.Lock()
		st.setError(err)
		st.mu.Unlock()
		if !backoff.Sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// join registers a caller of p.Watch that has applied revision from with
// the shared watch of p's client and prefix, starting the watch if there
// is none. When the watch has moved on beyond its ring since from, it
// reads the prefix for the caller (a Resync) and joins from there.
func (p *Provider) join(ctx context.Context, from int64) (*hub, *sub, error) {
	s := newSub(from, p.maxPending, p.maxPendingBytes)
	rev := from
	var pre *Update
	var backoff *Backoff
	for {
		if h := p.tryJoin(s, rev, pre); h != nil {
			return h, s, nil
		}
		if backoff == nil {
			backoff = NewBackoff(minBackoff, maxBackoff)
		}
		d, err := p.readRetry(ctx, backoff, &p.state)
		if err != nil {
			return nil, nil, err
		}
		pre, rev = &Update{From: from, Revision: d.Revision, Resync: d}, d.Revision
	}
}

// tryJoin registers s, which has applied revision rev (pre's, when pre is
// a Resync read for it), with the shared watch, starting the watch if
// there is none. It returns nil when the watch has moved on beyond its
// ring since rev.
func (p *Provider) tryJoin(s *sub, rev int64, pre *Update) *hub {
	key := hubKey{cli: p.cli, prefix: p.layout.Data()}
	hubs.Lock()
	defer hubs.Unlock()
	h := hubs.m[key]
	if h == nil {
		h = startHub(key, p, rev)
		hubs.m[key] = h
	}
	h.mu.Lock()
	ok, replayed := h.add(s, rev, pre)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	h.st.mu.Lock()
	base := hubCounts{reconnects: h.st.s.Reconnects, resyncs: h.st.s.Resyncs, errs: h.st.errs}
	h.st.mu.Unlock()
	p.state.mu.Lock()
	p.state.hub, p.state.base = h, base
	if pre != nil || replayed {
		p.state.s.Resyncs++
	}
	p.state.mu.Unlock()
	return h
}

// leave unregisters s. The last caller to leave ends the watch and waits
// for its goroutine to return. p's state keeps what the watch counted.
func (p *Provider) leave(h *hub, s *sub) {
	hubs.Lock()
	h.mu.Lock()
	delete(h.subs, s)
	last := len(h.subs) == 0
	h.mu.Unlock()
	if last {
		delete(hubs.m, h.key)
	}
	hubs.Unlock()
	if last {
		h.cancel()
		<-h.done
	}
	p.state.mu.Lock()
	if p.state.hub == h {
		p.state.s = p.state.merged()
		p.state.hub = nil
	}
	p.state.s.Watching = false
	p.state.mu.Unlock()
}

// hubCounts are a hub's counters when a provider joined it.
type hubCounts struct {
	reconnects, resyncs, errs int64
}

// merged is the provider's state with the counters its shared watch added
// since the provider joined it. The caller holds w.mu.
func (w *watchState) merged() WatchState {
	s := w.s
	h := w.hub
	if h == nil {
		return s
	}
	h.st.mu.Lock()
	hs, errs := h.st.s, h.st.errs
	h.st.mu.Unlock()
	s.Watching = hs.Watching
	s.Reconnects += hs.Reconnects - w.base.reconnects
	s.Resyncs += hs.Resyncs - w.base.resyncs
	if errs > w.base.errs && (s.LastError == nil || !hs.LastErrorTime.Before(s.LastErrorTime)) {
		s.LastError, s.LastErrorTime = hs.LastError, hs.LastErrorTime
	}
	return s
}

// setError records err as the last error. The caller holds w.mu.
func (w *watchState) setError(err error) {
	w.s.LastError, w.s.LastErrorTime = err, time.Now()
	w.errs++
}
