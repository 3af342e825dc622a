package etcd_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/internal/etcdtest"
	"github.com/strataconf/strata/providers/etcd"
)

// caller is one call of Provider.Watch on its own goroutine. Its fn checks
// the contract on every update: From is the previous Revision, revisions
// increase, no key twice; it applies the update to its own copy of the
// content.
type caller struct {
	p      *etcd.Provider
	cancel context.CancelFunc
	done   chan error
	slow   time.Duration
	before func(etcd.Update)        // called first, outside mu
	check  func(etcd.Update) string // an extra check, under mu: "" or a violation

	mu         sync.Mutex
	rev        int64
	kvs        map[string][]byte
	revs       []int64 // the Revision of every update, when keep
	keep       bool
	updates    int
	resyncs    int
	merged     int // updates that covered more than one transaction (checked by the test)
	violations []string
}

func startCaller(t *testing.T, cli *clientv3.Client, prefix string, from *etcd.Data, keep bool, opts ...etcd.Option) *caller {
	t.Helper()
	return newCaller(t, cli, prefix, from, keep, opts...).run(from)
}

// newCaller returns a caller to be set up and run.
func newCaller(t *testing.T, cli *clientv3.Client, prefix string, from *etcd.Data, keep bool, opts ...etcd.Option) *caller {
	t.Helper()
	c := &caller{
		p:    etcd.New(cli, prefix, opts...),
		done: make(chan error, 1),
		rev:  from.Revision,
		kvs:  maps.Clone(from.KVs),
		keep: keep,
	}
	c.cancel = func() {}
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *caller) run(from *etcd.Data) *caller {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- c.p.Watch(ctx, from, c.fn) }()
	return c
}

func (c *caller) fn(u etcd.Update) {
	if c.before != nil {
		c.before(u)
	}
	if c.slow > 0 {
		time.Sleep(c.slow)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if u.From != c.rev || u.Revision <= u.From {
		c.violations = append(c.violations, fmt.Sprintf("update %d..%d after revision %d", u.From, u.Revision, c.rev))
	}
	seen := make(map[string]bool, len(u.Events))
	for _, ev := range u.Events {
		if seen[ev.Key] {
			c.violations = append(c.violations, fmt.Sprintf("revision %d: key %s twice", u.Revision, ev.Key))
		}
		seen[ev.Key] = true
	}
	if u.Resync != nil {
		c.resyncs++
		if len(u.Events) != 0 || u.Resync.Revision != u.Revision {
			c.violations = append(c.violations, fmt.Sprintf("resync at %d: %d events, data at %d", u.Revision, len(u.Events), u.Resync.Revision))
		}
		c.kvs = maps.Clone(u.Resync.KVs)
	}
	for _, ev := range u.Events {
		if ev.Deleted {
			delete(c.kvs, ev.Key)
		} else {
			c.kvs[ev.Key] = ev.Value
		}
	}
	if c.check != nil {
		if v := c.check(u); v != "" {
			c.violations = append(c.violations, v)
		}
	}
	c.rev = u.Revision
	c.updates++
	if c.keep {
		c.revs = append(c.revs, u.Revision)
	}
}

// stop ends the call and waits for Watch to return.
func (c *caller) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil && err != context.Canceled {
			t.Errorf("Watch returned %v", err)
		}
		c.done <- err // for a second stop
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10 s of its ctx ending")
	}
}

func (c *caller) revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

func (c *caller) verify(t *testing.T, name string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Fatalf("%s: %d violations, first: %s", name, len(c.violations), c.violations[0])
	}
}

// waitUntil polls cond every 5 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitRevision(t *testing.T, cs []*caller, rev int64) {
	t.Helper()
	for i, c := range cs {
		waitUntil(t, 30*time.Second, fmt.Sprintf("caller %d at revision %d (is at %d)", i, rev, c.revision()), func() bool { return c.revision() >= rev })
	}
}

// gauge returns the value of a gauge of the embedded servers (registered
// with prometheus.DefaultRegisterer by etcd's mvcc package).
func gauge(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

const (
	watcherTotal = "etcd_debugging_mvcc_watcher_total"
	streamTotal  = "etcd_debugging_mvcc_watch_stream_total"
)

// txn writes keys (relative to prefix's data) with value in one
// transaction and returns its revision.
func txn(t *testing.T, cli *clientv3.Client, prefix, value string, keys ...string) int64 {
	t.Helper()
	l := etcd.NewLayout(prefix)
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpPut(l.LeafKey(k), value)
	}
	resp, err := cli.Txn(context.Background()).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func read(t *testing.T, cli *clientv3.Client, prefix string) *etcd.Data {
	t.Helper()
	d, err := etcd.New(cli, prefix).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameKVs(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}

// Fifty callers of Watch on one client and prefix open one etcd watch (the
// server counts one watcher and one stream more, not fifty), and every one
// of them sees every revision after its own start, in order, each
// transaction whole.
func TestSharedWatchOneEtcdWatch(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/shared/one"
	txn(t, cli, prefix, "0", "a", "b", "c")
	watchers, streams := gauge(t, watcherTotal), gauge(t, streamTotal)

	d0 := read(t, cli, prefix)
	var cs []*caller
	for range 25 {
		cs = append(cs, startCaller(t, cli, prefix, d0, true))
	}
	var revs []int64
	for i := range 10 {
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+1), "a", "b", "c"))
	}
	// Twenty-five more join at a later revision, while the watch runs.
	d1 := read(t, cli, prefix)
	for range 25 {
		cs = append(cs, startCaller(t, cli, prefix, d1, true))
	}
	for i := range 10 {
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+11), "a", "b", "c"))
	}
	waitRevision(t, cs, revs[len(revs)-1])

	if got := gauge(t, watcherTotal) - watchers; got != 1 {
		t.Errorf("the server counts %v more watchers, want 1", got)
	}
	if got := gauge(t, streamTotal) - streams; got != 1 {
		t.Errorf("the server counts %v more watch streams, want 1", got)
	}
	if n := etcd.HubCount(); n != 1 {
		t.Errorf("%d shared watches, want 1", n)
	}
	final := read(t, cli, prefix)
	for i, cl := range cs {
		cl.verify(t, fmt.Sprintf("caller %d", i))
		want := revs[:]
		if i >= 25 {
			want = revs[10:]
		}
		cl.mu.Lock()
		if fmt.Sprint(cl.revs) != fmt.Sprint(want) {
			t.Fatalf("caller %d saw revisions %v, want %v", i, cl.revs, want)
		}
		if !sameKVs(cl.kvs, final.KVs) {
			t.Fatalf("caller %d has %q, etcd %q", i, cl.kvs, final.KVs)
		}
		cl.mu.Unlock()
		if st := cl.p.State(); !st.Watching || st.Revision != revs[len(revs)-1] {
			t.Fatalf("caller %d state %+v", i, st)
		}
	}
	for _, cl := range cs {
		cl.stop(t)
	}
	if n := etcd.HubCount(); n != 0 {
		t.Fatalf("%d shared watches after every caller left", n)
	}
	waitUntil(t, 10*time.Second, "the server's watcher gone", func() bool { return gauge(t, watcherTotal) == watchers })
}

// A caller that joins a running watch from an older revision gets the
// revisions it missed from the watch's ring; one older than the ring gets
// a Resync read for it, then the revisions after it.
func TestSharedWatchJoinerReplay(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/shared/join"
	txn(t, cli, prefix, "0", "k")
	d0 := read(t, cli, prefix)
	first := startCaller(t, cli, prefix, d0, true)
	var revs []int64
	for i := range 100 {
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+1), "k", fmt.Sprintf("k%d", i%7)))
	}
	waitRevision(t, []*caller{first}, revs[99])

	// Joins 100 revisions late: replayed from the ring.
	late := startCaller(t, cli, prefix, d0, true)
	waitRevision(t, []*caller{late}, revs[99])
	late.verify(t, "late")
	late.mu.Lock()
	if fmt.Sprint(late.revs) != fmt.Sprint(revs) || late.resyncs != 0 {
		t.Fatalf("late joiner saw %d resyncs and revisions %v, want %v", late.resyncs, late.revs, revs)
	}
	late.mu.Unlock()
	if st := late.p.State(); st.Resyncs != 0 {
		t.Fatalf("late joiner's state %+v", st)
	}

	// Joins more than ReplayUpdates revisions late: a Resync.
	for i := range etcd.ReplayUpdates + 10 {
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+101), "k"))
	}
	waitRevision(t, []*caller{first, late}, revs[len(revs)-1])
	older := startCaller(t, cli, prefix, d0, true)
	waitRevision(t, []*caller{older}, revs[len(revs)-1])
	next := txn(t, cli, prefix, "end", "k", "k1")
	waitRevision(t, []*caller{first, late, older}, next)
	final := read(t, cli, prefix)
	older.mu.Lock()
	if older.resyncs != 1 || len(older.revs) != 2 || older.revs[0] < revs[len(revs)-1] || older.revs[1] != next {
		t.Fatalf("older joiner: %d resyncs, revisions %v (last put before it %d, after %d)", older.resyncs, older.revs, revs[len(revs)-1], next)
	}
	older.mu.Unlock()
	if st := older.p.State(); st.Resyncs != 1 || st.Revision != next {
		t.Fatalf("older joiner's state %+v", st)
	}
	for name, cl := range map[string]*caller{"first": first, "late": late, "older": older} {
		cl.verify(t, name)
		cl.mu.Lock()
		if !sameKVs(cl.kvs, final.KVs) {
			t.Fatalf("%s has %q, etcd %q", name, cl.kvs, final.KVs)
		}
		cl.mu.Unlock()
	}
	first.mu.Lock()
	if n := len(first.revs); n != len(revs)+1 {
		t.Fatalf("first caller saw %d revisions, want %d", n, len(revs)+1)
	}
	first.mu.Unlock()
}

// A caller of Watch at 10 ms per update under 5,000 quick transactions of
// three 8 KiB values: the updates waiting for it are merged past
// MaxPendingUpdates, so the heap stays bounded; it gets the final content,
// revisions only increase, and no update holds part of a transaction. A
// fast caller on the same watch keeps getting one update per transaction.
func TestSharedWatchSlowCaller(t *testing.T) {
	clientTestNoLeaks(t)
	// A short in-memory raft log, so that the server's heap does not hold
	// every value written (by default it keeps thousands of entries).
	c := etcdtest.New(t, etcdtest.WithConfig(func(cfg *embed.Config) {
		cfg.SnapshotCount = 200
		cfg.SnapshotCatchUpEntries = 100
	}))
	cli := c.Client(t)
	const (
		prefix  = "/shared/slow"
		txns    = 5000
		writers = 4
		valSize = 8 << 10
		// The bound: what may wait for the slow caller
		// (MaxPendingUpdates transactions of 24 KiB: 24 MiB), the ring
		// (ReplayBytes: 8 MiB), their garbage and the server's heap. Were
		// the backlog not bounded, 5,000 transactions of 24 KiB (117 MiB)
		// would wait, less the few hundred taken.
		heapBound = 64 << 20
	)
	groups := func(u etcd.Update) string {
		// Writer w writes keys g<w>/a, g<w>/b and g<w>/c together: in any
		// update the three are all present with one value, or absent.
		vals := make(map[string]map[string]string)
		for _, ev := range u.Events {
			rel := strings.TrimPrefix(ev.Key, etcd.NewLayout(prefix).Data())
			g, k, _ := strings.Cut(rel, "/")
			if vals[g] == nil {
				vals[g] = make(map[string]string)
			}
			vals[g][k] = string(ev.Value[:min(len(ev.Value), 16)])
		}
		for g, kv := range vals {
			if len(kv) != 3 || kv["a"] != kv["b"] || kv["b"] != kv["c"] {
				return fmt.Sprintf("revision %d..%d: half a transaction in %s: %q", u.From, u.Revision, g, kv)
			}
		}
		return ""
	}
	d0 := read(t, cli, prefix)
	slow := startCaller(t, cli, prefix, d0, false)
	slow.slow, slow.check = 10*time.Millisecond, func(u etcd.Update) string {
		if v := groups(u); v != "" {
			return v
		}
		if len(u.Events) > 3 {
			slow.merged++ // under slow.mu
		}
		return ""
	}
	fast := startCaller(t, cli, prefix, d0, false)
	fast.check = func(u etcd.Update) string {
		if len(u.Events) != 3 {
			return fmt.Sprintf("fast caller: %d events at %d", len(u.Events), u.Revision)
		}
		return groups(u)
	}

	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	var peak uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				metrics.Read(sample)
				peak = max(peak, sample[0].Value.Uint64())
			}
		}
	}()

	pad := strings.Repeat("x", valSize-16)
	var wg sync.WaitGroup
	var last [writers]int64
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			l := etcd.NewLayout(prefix)
			for i := w; i < txns; i += writers {
				v := fmt.Sprintf("%016d", i) + pad
				resp, err := cli.Txn(context.Background()).Then(
					clientv3.OpPut(l.LeafKey(fmt.Sprintf("g%d/a", w)), v),
					clientv3.OpPut(l.LeafKey(fmt.Sprintf("g%d/b", w)), v),
					clientv3.OpPut(l.LeafKey(fmt.Sprintf("g%d/c", w)), v),
				).Commit()
				if err != nil {
					errs <- err
					return
				}
				last[w] = resp.Header.Revision
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	wrote := time.Since(start)
	final := read(t, cli, prefix)
	waitRevision(t, []*caller{fast}, final.Revision)
	// The slow caller has at most MaxPendingUpdates updates of 10 ms
	// waiting: about 10 s.
	waitUntil(t, 60*time.Second, "the slow caller at the final revision", func() bool { return slow.revision() >= final.Revision })
	close(stopSampling)
	<-sampled

	slow.mu.Lock()
	updates, merged := slow.updates, slow.merged
	slow.mu.Unlock()
	t.Logf("%d transactions in %v; slow caller: %d updates (%d merged); live heap %d MiB before, peak %d MiB",
		txns, wrote.Round(time.Millisecond), updates, merged, before>>20, peak>>20)
	if peak > heapBound {
		t.Fatalf("live heap peaked at %d MiB, bound %d MiB", peak>>20, heapBound>>20)
	}
	if merged == 0 || updates >= txns {
		t.Fatalf("slow caller: %d updates, %d merged: the backlog was never merged", updates, merged)
	}
	slow.verify(t, "slow")
	fast.verify(t, "fast")
	slow.mu.Lock()
	defer slow.mu.Unlock()
	if !sameKVs(slow.kvs, final.KVs) || slow.rev != final.Revision {
		t.Fatalf("slow caller at %d with %d keys; etcd at %d with %d", slow.rev, len(slow.kvs), final.Revision, len(final.KVs))
	}
	fast.mu.Lock()
	if fast.updates != txns {
		t.Errorf("fast caller: %d updates, want %d", fast.updates, txns)
	}
	fast.mu.Unlock()
}

// Callers leaving one by one: the others keep getting updates; when the
// last leaves, the shared watch ends before its Watch returns, no goroutine
// is left, and the server's watcher is gone.
func TestSharedWatchEndsWithLastCaller(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/shared/leave"
	d0 := read(t, cli, prefix)
	watchers := gauge(t, watcherTotal)
	idle := goleak.IgnoreCurrent() // the cluster's and the client's goroutines
	var cs []*caller
	for range 5 {
		cs = append(cs, startCaller(t, cli, prefix, d0, false))
	}
	for len(cs) > 0 {
		rev := txn(t, cli, prefix, fmt.Sprint(len(cs)), "k")
		waitRevision(t, cs, rev)
		if n := etcd.HubCount(); n != 1 {
			t.Fatalf("%d callers: %d shared watches", len(cs), n)
		}
		cs[0].stop(t)
		cs[0].verify(t, "leaving caller")
		if st := cs[0].p.State(); st.Watching || st.Revision != rev {
			t.Fatalf("state after leaving: %+v", st)
		}
		cs = cs[1:]
	}
	if n := etcd.HubCount(); n != 0 {
		t.Fatalf("%d shared watches after the last caller left", n)
	}
	goleak.VerifyNone(t, idle)
	waitUntil(t, 10*time.Second, "the server's watcher gone", func() bool { return gauge(t, watcherTotal) == watchers })

	// A new caller starts a new shared watch.
	cl := startCaller(t, cli, prefix, read(t, cli, prefix), false)
	rev := txn(t, cli, prefix, "again", "k")
	waitRevision(t, []*caller{cl}, rev)
	cl.stop(t)
	goleak.VerifyNone(t, idle)
}

// A compaction past the shared watch's revision while its member is down:
// the watch reads the prefix once and every caller gets one Resync; each
// provider counts it, and the reconnect, in its State.
func TestSharedWatchCompaction(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.NewCluster(t, 3)
	a, b := c.Members[0], c.Members[1]
	watcherCli := c.ClientFor(t, a)
	writerCli := c.ClientFor(t, b)
	const prefix = "/shared/compaction"
	txn(t, writerCli, prefix, "1", "a", "b")
	d0 := read(t, watcherCli, prefix)
	var cs []*caller
	for range 3 {
		cs = append(cs, startCaller(t, watcherCli, prefix, d0, true))
	}
	rev := txn(t, writerCli, prefix, "2", "a")
	waitRevision(t, cs, rev)

	a.Stop(t)
	txn(t, writerCli, prefix, "3", "a")
	txn(t, writerCli, prefix, "4", "b", "c")
	last := txn(t, writerCli, prefix, "5", "c")
	c.Compact(t, last)
	a.Restart(t)
	waitRevision(t, cs, last)
	after := txn(t, writerCli, prefix, "6", "a")
	waitRevision(t, cs, after)
	final := read(t, writerCli, prefix)
	for i, cl := range cs {
		cl.verify(t, fmt.Sprintf("caller %d", i))
		cl.mu.Lock()
		if cl.resyncs != 1 || len(cl.revs) != 3 || cl.revs[0] != rev || cl.revs[2] != after || !sameKVs(cl.kvs, final.KVs) {
			t.Fatalf("caller %d: %d resyncs, revisions %v (put %d, compacted at %d, put %d), content %q",
				i, cl.resyncs, cl.revs, rev, last, after, cl.kvs)
		}
		cl.mu.Unlock()
		waitUntil(t, 10*time.Second, "the reconnect counted", func() bool { return cl.p.State().Reconnects >= 1 })
		if st := cl.p.State(); st.Resyncs != 1 || st.Revision != after || st.LastError == nil || !st.Watching {
			t.Fatalf("caller %d state %+v", i, st)
		}
	}
}

// What a caller that falls behind sees, exactly: with WithMaxPending(4, 0)
// and its fn held while ten transactions pass, the fifth waiting update
// merges the queue into one, the ninth merges again, and the tenth waits
// behind it: two updates, 1..9 merged (each key once, sorted, its last
// value) and the tenth alone. A caller that keeps up gets all ten.
func TestWatchMaxPendingMerges(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/shared/merge"
	l := etcd.NewLayout(prefix)
	d0 := read(t, cli, prefix)
	held, gate := make(chan struct{}), make(chan struct{})
	slow := newCaller(t, cli, prefix, d0, true, etcd.WithMaxPending(4, 0))
	var got []etcd.Update // under slow.mu
	slow.before = func(u etcd.Update) {
		if u.Revision > d0.Revision+1 {
			return
		}
		close(held)
		select {
		case <-gate:
		case <-time.After(30 * time.Second):
		}
	}
	slow.check = func(u etcd.Update) string {
		got = append(got, u)
		return ""
	}
	slow.run(d0)
	fast := startCaller(t, cli, prefix, d0, true)
	first := txn(t, cli, prefix, "0", "a")
	if first != d0.Revision+1 {
		t.Fatalf("first write at %d, read at %d", first, d0.Revision)
	}
	<-held
	var revs []int64
	for i := range 10 {
		keys := []string{"a", fmt.Sprintf("k%d", i%3)}
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+1), keys...))
	}
	if _, err := cli.Delete(context.Background(), l.LeafKey("k1")); err != nil {
		t.Fatal(err)
	}
	last := read(t, cli, prefix).Revision
	// The fast caller has the last revision: the slow one's queue too.
	waitRevision(t, []*caller{fast}, last)
	close(gate)
	waitRevision(t, []*caller{slow}, last)
	slow.verify(t, "slow")
	fast.verify(t, "fast")

	slow.mu.Lock()
	defer slow.mu.Unlock()
	ev := func(k, v string) etcd.Event { return etcd.Event{Key: l.LeafKey(k), Value: []byte(v)} }
	want := []etcd.Update{
		{From: d0.Revision, Revision: first, Events: []etcd.Event{ev("a", "0")}},
		// Transactions 1..9 (values 1..9; k0 written by 1, 4 and 7, k1 by
		// 2, 5, 8, k2 by 3, 6, 9), merged past the bound twice.
		{From: first, Revision: revs[8], Events: []etcd.Event{ev("a", "9"), ev("k0", "7"), ev("k1", "8"), ev("k2", "9")}},
		{From: revs[8], Revision: revs[9], Events: []etcd.Event{ev("a", "10"), ev("k0", "10")}},
		{From: revs[9], Revision: last, Events: []etcd.Event{{Key: l.LeafKey("k1"), Deleted: true}}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("slow caller got\n%v\nwant\n%v", got, want)
	}
	fast.mu.Lock()
	defer fast.mu.Unlock()
	if len(fast.revs) != 12 {
		t.Fatalf("fast caller: %d updates, want 12", len(fast.revs))
	}
}

// A Subscription gets what a caller of Watch gets, one update per Next, in
// order, and joins the same shared watch; Subscribe refuses, starting
// nothing, when the watch has moved on beyond its ring since the caller's
// revision; closing the last Subscription ends the watch.
func TestSubscription(t *testing.T) {
	clientTestNoLeaks(t)
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/shared/sub"
	txn(t, cli, prefix, "0", "a")
	d0 := read(t, cli, prefix)
	p := etcd.New(cli, prefix)
	sub, ok := p.Subscribe(d0)
	if !ok {
		t.Fatal("Subscribe refused a fresh read")
	}
	watcher := startCaller(t, cli, prefix, d0, true) // the same watch, through Watch
	if n := etcd.HubCount(); n != 1 {
		t.Fatalf("%d shared watches, want 1", n)
	}
	var revs []int64
	for i := range 5 {
		revs = append(revs, txn(t, cli, prefix, fmt.Sprint(i+1), "a", "b"))
	}
	waitRevision(t, []*caller{watcher}, revs[4])

	var got []int64
	from := d0.Revision
	deadline := time.After(10 * time.Second)
	for len(got) < len(revs) {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatalf("got revisions %v, want %v", got, revs)
		}
		u, ok := sub.Next()
		if !ok {
			continue
		}
		if u.From != from || len(u.Events) != 2 || u.Resync != nil {
			t.Fatalf("update %+v after revision %d: want the 2 events of one transaction from %d", u, from, from)
		}
		from = u.Revision
		got = append(got, u.Revision)
	}
	if fmt.Sprint(got) != fmt.Sprint(revs) {
		t.Fatalf("got revisions %v, want %v", got, revs)
	}
	if u, ok := sub.Next(); ok {
		t.Fatalf("Next returned %+v with nothing waiting", u)
	}
	if st := p.State(); st.Revision != revs[4] {
		t.Fatalf("state %+v, want revision %d", st, revs[4])
	}

	// More than ReplayUpdates revisions later, d0 is beyond the ring.
	for i := range etcd.ReplayUpdates + 5 {
		txn(t, cli, prefix, fmt.Sprint(i+10), "a")
	}
	if _, ok := etcd.New(cli, prefix).Subscribe(d0); ok {
		t.Fatal("Subscribe joined from a revision the ring no longer holds")
	}
	sub.Close()
	if n := etcd.HubCount(); n != 1 {
		t.Fatalf("%d shared watches with Watch still running, want 1", n)
	}
	watcher.stop(t)
	if n := etcd.HubCount(); n != 0 {
		t.Fatalf("%d shared watches after every caller left", n)
	}
}

// ReadLeaves builds the content of a prefix of plain leaves from the read
// itself, without KVs, and it equals the content Read's Data builds; a
// prefix holding a document (or a leaf beneath another) reads as Read does.
func TestReadLeaves(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/read/leaves"
	txn(t, cli, prefix, "1", "a", "db/host", "db/port", "items/k1", "items/k2")
	p := etcd.New(cli, prefix)
	ctx := context.Background()
	lean, err := p.ReadLeaves(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := read(t, cli, prefix)
	if lean.KVs != nil || lean.Revision != full.Revision {
		t.Fatalf("ReadLeaves of plain leaves: KVs %v, revision %d (Read: %d)", lean.KVs, lean.Revision, full.Revision)
	}
	got, err := lean.Content(p.Layout())
	if err != nil {
		t.Fatal(err)
	}
	want, err := full.Content(p.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Tree) != fmt.Sprint(want.Tree) || fmt.Sprint(got.Keys) != fmt.Sprint(want.Keys) || got.Revision != want.Revision || got.Raw != nil {
		t.Fatalf("ReadLeaves content %+v, Read's %+v", got, want)
	}
	if _, _, ok := lean.Leaves(); ok {
		t.Fatal("Leaves handed the content over after Content")
	}

	// Leaves hands the same content over with the leaves in place of Keys.
	lean, err = p.ReadLeaves(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ct, lv, ok := lean.Leaves()
	if !ok || ct.Keys != nil || fmt.Sprint(ct.Tree) != fmt.Sprint(want.Tree) || ct.Revision != want.Revision || ct.Raw != nil {
		t.Fatalf("Leaves: %+v, %v", ct, ok)
	}
	pairs := map[string]string{}
	for path, key := range lv.All() {
		pairs[path] = key
	}
	if lv.Len() != len(want.Keys) || !reflect.DeepEqual(pairs, want.Keys) || !reflect.DeepEqual(lv.Map(), want.Keys) {
		t.Fatalf("leaves (%d) %v, map %v; Read's keys %v", lv.Len(), pairs, lv.Map(), want.Keys)
	}
	if _, _, ok := full.Leaves(); ok {
		t.Fatal("Leaves of Read's Data handed something over")
	}

	for name, key := range map[string]string{"a document": "/read/leaves/data/extra.yaml", "a leaf beneath a leaf": "/read/leaves/data/a/b"} {
		if _, err := cli.Put(ctx, key, "x: 1"); err != nil {
			t.Fatal(err)
		}
		d, err := p.ReadLeaves(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sameKVs(d.KVs, read(t, cli, prefix).KVs) {
			t.Fatalf("ReadLeaves with %s: KVs %q, want Read's", name, d.KVs)
		}
		if _, err := cli.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
}
