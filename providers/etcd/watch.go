package etcd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Update is one step of the watched data: the changes since the previous
// step, never the whole content (a change costs what it changes), except
// after a compaction.
type Update struct {
	// From is the revision the update follows: the Revision of the
	// previous update, or the revision Watch started from.
	From int64
	// Revision is the etcd revision of the data after the update.
	Revision int64
	// Events are the changes to data keys after From up to Revision, each
	// key at most once, as one etcd revision (one transaction) holds them.
	Events []Event
	// Resync, when not nil, is the whole content of the prefix re-read
	// after etcd compacted the history the watch needed: the change since
	// From may span many revisions, and Events is empty.
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
	// Resyncs counts re-reads of the prefix after compaction.
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

// watchState is shared between the watching goroutine (writer) and State
// (readers).
type watchState struct {
	mu     sync.Mutex
	s      WatchState
	broken bool // a stream failed; the next one to answer is a reconnect
}

func (w *watchState) update(fn func(*WatchState)) {
	w.mu.Lock()
	fn(&w.s)
	w.mu.Unlock()
}

// State returns the state of the provider's watch.
func (p *Provider) State() WatchState {
	p.state.mu.Lock()
	s := p.state.s
	p.state.mu.Unlock()
	if s.Watching && !p.Connected() {
		s.Watching = false // the stream waits for a connection that is down
	}
	return s
}

// Connected reports whether the client's connection to etcd is up (or
// idle, ready to connect). clientv3 hides a broken connection behind
// retries; this is how Health sees it.
func (p *Provider) Connected() bool {
	conn := p.cli.ActiveConnection()
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
// repeating a revision. When the history it needs was compacted away it
// re-reads the prefix and calls fn once with Resync set.
//
// A failed or closed watch channel is not silence: the watch is opened again
// from the last applied revision with jittered exponential backoff, and
// the failure is recorded in State. Watch requires a leader, so a member cut
// off from the cluster makes the client move on. fn runs on Watch's
// goroutine; while it runs no further events are applied.
func (p *Provider) Watch(ctx context.Context, from *Data, fn func(Update)) error {
	rev := from.Revision
	p.state.update(func(s *WatchState) { s.Revision = rev })
	// A watcher of its own, over a gRPC watch client that reports when a
	// stream breaks and when a new one answers (see observedWatchClient).
	w := clientv3.NewWatchFromWatchClient(observedWatchClient{pb.NewWatchClient(p.cli.ActiveConnection()), p}, p.cli)
	defer w.Close()
	backoff := NewBackoff(minBackoff, maxBackoff)
	for {
		err := p.watchOnce(ctx, w, &rev, fn, backoff)
		if ctx.Err() != nil {
			p.state.update(func(s *WatchState) { s.Watching = false })
			return ctx.Err()
		}
		p.state.mu.Lock()
		p.state.s.Watching = false
		p.state.s.LastError, p.state.s.LastErrorTime = err, time.Now()
		p.state.broken = p.state.broken || !errors.Is(err, rpctypes.ErrCompacted)
		p.state.mu.Unlock()
		if errors.Is(err, rpctypes.ErrCompacted) {
			d, err := p.resync(ctx, backoff)
			if err != nil {
				return err // ctx is done
			}
			from := rev
			rev = d.Revision
			p.state.update(func(s *WatchState) { s.Resyncs++; s.Revision = rev })
			fn(Update{From: from, Revision: rev, Resync: d})
			continue
		}
		if !backoff.Sleep(ctx) {
			return ctx.Err()
		}
	}
}

// watchOnce runs one watch stream from *rev+1 until it fails.
func (p *Provider) watchOnce(ctx context.Context, w clientv3.Watcher, rev *int64, fn func(Update), backoff *Backoff) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// No WithProgressNotify: the resume revision only ever advances to the
	// revision of events actually applied, so that a progress notification
	// sent ahead of its events (etcd issue 15220, in older servers) cannot
	// make the watch skip them.
	wch := w.Watch(wctx, p.layout.Data(), clientv3.WithPrefix(), clientv3.WithRev(*rev+1))
	p.state.update(func(s *WatchState) { s.Watching = true })
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("watch from revision %d: %w (compacted at %d)", *rev+1, rpctypes.ErrCompacted, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return p.wrap(fmt.Sprintf("watch %s from revision %d", p.layout.Data(), *rev+1), err)
		}
		backoff.Reset()
		evs := resp.Events
		for len(evs) > 0 {
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			if r <= *rev { // already applied (a resumed stream may repeat)
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
			p.state.update(func(s *WatchState) { s.Revision = r })
			fn(u)
			evs = evs[n:]
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return p.wrap("watch "+p.layout.Data(), errWatchClosed)
}

// resync re-reads the prefix until it succeeds or ctx is done.
func (p *Provider) resync(ctx context.Context, backoff *Backoff) (*Data, error) {
	for {
		d, err := p.Read(ctx)
		if err == nil {
			return d, nil
		}
		p.state.update(func(s *WatchState) { s.LastError, s.LastErrorTime = err, time.Now() })
		if !backoff.Sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// observedWatchClient is the gRPC watch client under the provider's
// clientv3 watcher. clientv3 re-opens a broken watch stream by itself (after
// a member restart, say) and tells its caller nothing; through this client
// the provider sees the stream break and the new one answer, and counts a
// reconnect.
type observedWatchClient struct {
	pb.WatchClient
	p *Provider
}

// Watch opens a stream.
func (c observedWatchClient) Watch(ctx context.Context, opts ...grpc.CallOption) (pb.Watch_WatchClient, error) {
	if !c.p.Connected() {
		// The connection is down as the stream opens (a member restarting
		// before the first stream was opened): the stream that answers
		// is a reconnect.
		c.p.state.mu.Lock()
		c.p.state.broken = true
		c.p.state.mu.Unlock()
	}
	s, err := c.WatchClient.Watch(ctx, opts...)
	if err != nil {
		if ctx.Err() == nil {
			// The member went away before the stream opened: the stream
			// that opens next is a reconnect too.
			c.p.state.mu.Lock()
			c.p.state.broken = true
			c.p.state.mu.Unlock()
		}
		return s, err
	}
	return &observedStream{Watch_WatchClient: s, ctx: ctx, p: c.p}, nil
}

// observedStream is one watch stream; clientv3 calls Recv from one
// goroutine.
type observedStream struct {
	pb.Watch_WatchClient
	ctx      context.Context // canceled when clientv3 closes the stream itself
	p        *Provider
	answered bool
}

// Recv receives a response, noting the stream's first answer and its
// failure.
func (s *observedStream) Recv() (*pb.WatchResponse, error) {
	resp, err := s.Watch_WatchClient.Recv()
	st := &s.p.state
	switch {
	case err != nil && s.ctx.Err() == nil:
		err := s.p.wrap("watch stream "+s.p.layout.Data(), err)
		st.mu.Lock()
		st.s.Watching = false
		st.s.LastError, st.s.LastErrorTime = err, time.Now()
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
