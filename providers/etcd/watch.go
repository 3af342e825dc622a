package etcd

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Update is one step of the watched data: the changes since the previous
// step, never the whole content (a change costs what it changes), except
// after a compaction.
//
// A caller of Watch that keeps up gets one Update per etcd revision (one
// transaction) that touches a data key: From is the Revision of the update
// before, and Events are that revision's changes, each key once. A caller
// whose fn is slower than the change rate has updates waiting for it; while
// at most MaxPendingUpdates updates wait, and those behind the oldest hold
// at most MaxPendingBytes bytes of keys and values (WithMaxPending changes
// both), it still gets them one by one. When the waiting updates pass
// either bound they
// are merged into one Update from the first one's From to the last one's
// Revision: Events holds each key changed in that range once, with its
// last change (a delete stays a delete, also for a key created and deleted
// in the range), sorted by key; when one of them was a Resync, the merged
// update is a Resync of the content at Revision. Either way an Update
// never holds part of a transaction, its From is the Revision of the update
// the caller got before (or the revision it started from), and revisions
// only increase: applied in order, the updates give exactly the content at
// each Revision. What waits for a caller is so bounded by the bounds plus
// one merged update, which names each key at most once.
//
// Events and Resync are shared with the other callers watching the same
// client and prefix: fn must not modify them.
type Update struct {
	// From is the revision the update follows: the Revision of the
	// previous update, or the revision Watch started from.
	From int64
	// Revision is the etcd revision of the data after the update.
	Revision int64
	// Events are the changes to data keys after From up to Revision, each
	// key at most once: one etcd revision (one transaction), or, for a
	// caller that fell behind, all the revisions in From..Revision merged.
	Events []Event
	// Resync, when not nil, is the whole content of the prefix at
	// Revision: read again after etcd compacted the history the watch
	// needed, or for a caller that joined a shared watch after the updates
	// it needed had left the watch's memory (see ReplayUpdates). The
	// change since From may span many revisions, and Events is empty.
	Resync *Data
}

// Event is the change of one data key.
type Event struct {
	// Key is the full etcd key.
	Key string
	// Value is the new value; nil for a delete.
	Value []byte
	// Deleted is true when the key was deleted.
	Deleted bool
}

// Apply returns the data after u: Resync itself, or d with u's events
// applied, as a new Data (d is not modified; its Version is kept only when
// u changed nothing). It copies every key: for callers that want the whole
// content at each step.
func (d *Data) Apply(u Update) *Data {
	if u.Resync != nil {
		return u.Resync
	}
	kvs := maps.Clone(d.KVs)
	if kvs == nil {
		kvs = make(map[string][]byte, len(u.Events))
	}
	for _, ev := range u.Events {
		if ev.Deleted {
			delete(kvs, ev.Key)
		} else {
			kvs[ev.Key] = ev.Value
		}
	}
	return &Data{Revision: u.Revision, KVs: kvs}
}

// WatchState describes a running watch, for health checks and metrics.
// Callers of Watch that share a client and a prefix share one etcd watch
// stream: Watching, Reconnects, Resyncs and LastError describe that
// stream (the counters and the error from when the provider joined it on),
// Revision the provider's own progress.
type WatchState struct {
	// Watching is true while a watch stream is open, has not failed, and
	// the client's connection is up.
	Watching bool
	// Revision is the last revision applied; the watch resumes after it.
	Revision int64
	// Reconnects counts watch streams that answered again after the
	// previous one failed: a broken connection, a restarted member, a lost
	// leader. clientv3 re-opens a broken stream by itself, without a word
	// to its caller; those re-opens are counted too.
	Reconnects int64
	// Resyncs counts re-reads of the prefix after compaction (and for a
	// caller that joined a shared watch after the updates it needed had
	// left the watch's memory).
	Resyncs int64
	// LastError is the most recent failure, nil if there was none.
	LastError error
	// LastErrorTime is when LastError happened.
	LastErrorTime time.Time
}

// errWatchClosed reports a watch channel that closed without an error.
var errWatchClosed = errors.New("watch channel closed")

// Backoff bounds between watch retries.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// watchState is a provider's state, or a shared watch's (hub.st): written
// by the watching goroutines, read by State.
type watchState struct {
	mu     sync.Mutex
	s      WatchState
	broken bool  // a stream failed; the next one to answer is a reconnect (a hub's)
	errs   int64 // errors recorded (a hub's)

	hub  *hub      // the shared watch a provider has joined, nil when none
	base hubCounts // the hub's counters when the provider joined it
}

func (w *watchState) update(fn func(*WatchState)) {
	w.mu.Lock()
	fn(&w.s)
	w.mu.Unlock()
}

// State returns the state of the provider's watch.
func (p *Provider) State() WatchState {
	p.state.mu.Lock()
	s := p.state.merged()
	p.state.mu.Unlock()
	if s.Watching && !p.Connected() {
		s.Watching = false // the stream waits for a connection that is down
	}
	return s
}

// Connected reports whether the client's connection to etcd is up (or
// idle, ready to connect). clientv3 hides a broken connection behind
// retries; this is how Health sees it.
func (p *Provider) Connected() bool { return connected(p.cli) }

func connected(cli *clientv3.Client) bool {
	conn := cli.ActiveConnection()
	if conn == nil {
		return false
	}
	switch conn.GetState() {
	case connectivity.Ready, connectivity.Idle:
		return true
	}
	return false
}

// Arm marks the watch as running from from.Revision on, ahead of a call of
// Watch on another goroutine: from now on State reports Watching (while the
// connection is up), so that between a successful Read and the start of
// the watch there is no moment in which the watch looks down.
func (p *Provider) Arm(from *Data) {
	p.state.update(func(s *WatchState) { s.Watching, s.Revision = true, from.Revision })
}

// Watch follows the prefix from from.Revision+1 until ctx is done and
// returns ctx's error. For every etcd revision that touches a data key it
// calls fn once with that revision's changes (all events of one revision,
// one transaction, arrive together), in revision order, never skipping or
// repeating a revision; a caller that falls behind gets merged updates (see
// Update). When the history it needs was compacted away it re-reads the
// prefix and calls fn once with Resync set.
//
// The calls of Watch, of any providers, that share a client and a data
// prefix share one etcd watch stream, started by the first and ended when
// the last returns (before it returns). Its updates are queued for each
// caller, so a slow fn delays no other caller and the stream keeps being
// read. A caller that joins with a from older than the stream's newest
// update gets the updates it missed, kept by the stream (ReplayUpdates,
// ReplayBytes), or, when they are gone, a Resync read for it; one that
// joins ahead of the stream skips the updates up to from.
//
// A failed or closed watch is not silence: the watch is opened again
// from the last revision it delivered with jittered exponential backoff,
// and the failure is recorded in State. Watch requires a leader, so a
// member cut off from the cluster makes the client move on. fn runs on
// Watch's goroutine, one update at a time.
func (p *Provider) Watch(ctx context.Context, from *Data, fn func(Update)) error {
	p.state.update(func(s *WatchState) { s.Revision = from.Revision })
	h, s, err := p.join(ctx, from.Revision)
	if err != nil {
		p.state.update(func(s *WatchState) { s.Watching = false })
		return err // ctx is done
	}
	defer p.leave(h, s)
	for {
		u, ok := s.next(ctx)
		if !ok {
			return ctx.Err()
		}
		p.state.update(func(s *WatchState) { s.Revision = u.Revision })
		fn(u)
	}
}

// Subscription is a caller's place in the shared watch of its provider's
// client and prefix, for a caller that waits on other channels too and so
// cannot give Watch a goroutine of its own. It gets what Watch's fn gets,
// in the same order (see Update), when it asks: Ready has a token while
// updates may be waiting, and Next takes them one at a time. A
// Subscription is used by one goroutine; Close leaves the watch.
type Subscription struct {
	p *Provider
	h *hub
	s *sub
}

// Subscribe joins the shared watch of p's client and prefix as a caller
// that has applied from, as Watch does, but without waiting: ok is false,
// and nothing is started, when joining needs a read of the prefix (the
// watch has moved on beyond what it keeps since from.Revision); Watch
// does that read.
func (p *Provider) Subscribe(from *Data) (sub *Subscription, ok bool) {
	s := newSub(from.Revision, p.maxPending, p.maxPendingBytes)
	h := p.tryJoin(s, from.Revision, nil)
	if h == nil {
		return nil, false
	}
	p.state.update(func(st *WatchState) { st.Revision = from.Revision })
	return &Subscription{p: p, h: h, s: s}, true
}

// Ready has a token when updates may be waiting for Next. Next takes them
// all, one call each, until it returns false.
func (s *Subscription) Ready() <-chan struct{} { return s.s.ready }

// Next returns the oldest waiting update, without waiting; false when
// there is none. When more wait behind it, Ready has a token again.
func (s *Subscription) Next() (Update, bool) {
	u, ok := s.s.pop()
	if ok {
		s.p.state.update(func(st *WatchState) { st.Revision = u.Revision })
	}
	return u, ok
}

// Wake puts a token in Ready (unless one is there), for a goroutine that
// waits on Ready to look at something else: its owner stopping it, say.
// Next then returns what waits, or false. Wake is safe from any goroutine.
func (s *Subscription) Wake() { s.s.signal() }

// Close leaves the shared watch; the last caller to leave ends it and
// waits for its goroutine to return.
func (s *Subscription) Close() { s.p.leave(s.h, s.s) }

// observedWatchClient is the gRPC watch client under a shared watch's
// clientv3 watcher. clientv3 re-opens a broken watch stream by itself
// (after a member restart, say) and tells its caller nothing; through this
// client the watch sees the stream break and the new one answer, and
// counts a reconnect.
type observedWatchClient struct {
	pb.WatchClient
	h *hub
}

// Watch opens a stream.
func (c observedWatchClient) Watch(ctx context.Context, opts ...grpc.CallOption) (pb.Watch_WatchClient, error) {
	st := &c.h.st
	if !connected(c.h.key.cli) {
		// The connection is down as the stream opens (a member restarting
		// before the first stream was opened): the stream that answers
		// is a reconnect.
		st.mu.Lock()
		st.broken = true
		st.mu.Unlock()
	}
	s, err := c.WatchClient.Watch(ctx, opts...)
	if err != nil {
		if ctx.Err() == nil {
			// The member went away before the stream opened: the stream
			// that opens next is a reconnect too.
			st.mu.Lock()
			st.broken = true
			st.mu.Unlock()
		}
		return s, err
	}
	return &observedStream{Watch_WatchClient: s, ctx: ctx, h: c.h}, nil
}

// observedStream is one watch stream; clientv3 calls Recv from one
// goroutine.
type observedStream struct {
	pb.Watch_WatchClient
	ctx      context.Context // canceled when clientv3 closes the stream itself
	h        *hub
	answered bool
}

// Recv receives a response, noting the stream's first answer and its
// failure.
func (s *observedStream) Recv() (*pb.WatchResponse, error) {
	resp, err := s.Watch_WatchClient.Recv()
	st := &s.h.st
	switch {
	case err != nil && s.ctx.Err() == nil:
		err := s.h.reader.wrap("watch stream "+s.h.key.prefix, err)
		st.mu.Lock()
		st.s.Watching = false
		st.setError(err)
		st.broken = true
		st.mu.Unlock()
	case err == nil && !s.answered:
		s.answered = true
		st.mu.Lock()
		if st.broken {
			st.broken = false
			st.s.Reconnects++
		}
		st.s.Watching = true
		st.mu.Unlock()
	}
	return resp, err
}
