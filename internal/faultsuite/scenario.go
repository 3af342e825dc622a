//go:build faultsuite

package faultsuite

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
)

// App is the configuration the suite writes and watches. Every write
// increments Counter and sets Seq to the stream's step; Limit is where
// invalid values are written around the writer.
type App struct {
	Counter int `koanf:"counter" validate:"min=0,max=100000"`
	Seq     int `koanf:"seq" validate:"min=0"`
	Limit   int `koanf:"limit" validate:"min=1,max=100"`
}

// validLimit is the value of Limit outside the short windows in which an
// invalid value is injected.
const validLimit = 10

// Scenario is one stream of writes, watched by one Config per member, with
// a fault plan running beside it.
type Scenario struct {
	Name string
	// Writes is the number of writer Updates in the stream.
	Writes int
	// Pace is the minimum time from one write to the next, so that the
	// stream outlasts the faults.
	Pace time.Duration
	// Timeout bounds the whole scenario, checks included.
	Timeout time.Duration
	// Faults runs beside the stream and injects the scenario's faults; it
	// must leave every member running when it returns.
	Faults func(ctx context.Context, e *Env) error
}

// Scenarios returns the suite's scenarios, in the order they run.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "kill-leader", Writes: 500, Pace: 20 * time.Millisecond, Timeout: 3 * time.Minute, Faults: killLeader},
		{Name: "compact-defrag", Writes: 500, Pace: 20 * time.Millisecond, Timeout: 3 * time.Minute, Faults: compactDefrag},
		{Name: "stop-follower", Writes: 500, Pace: 100 * time.Millisecond, Timeout: 4 * time.Minute, Faults: stopFollower},
		{Name: "quorum-loss", Writes: 500, Pace: 20 * time.Millisecond, Timeout: 3 * time.Minute, Faults: quorumLoss},
	}
}

// killLeader kills the leader with SIGKILL twice during the stream and
// restarts it two seconds later each time.
func killLeader(ctx context.Context, e *Env) error {
	for _, at := range []int{120, 320} {
		if err := e.WaitStep(ctx, at); err != nil {
			return err
		}
		m, err := e.Cluster.Leader(ctx)
		if err != nil {
			return err
		}
		e.Fault("kill -9 the leader %s", m.Name)
		if err := m.Kill(); err != nil {
			return err
		}
		if !sleep(ctx, 2*time.Second) {
			return ctx.Err()
		}
		if err := m.Restart(ctx); err != nil {
			return err
		}
		e.Logf("restarted %s", m.Name)
	}
	return nil
}

// compactDefrag compacts the history up to the current revision and
// defragments every running member, four times during the stream. In the
// second and fourth round a follower is killed first and started again
// afterwards, so that the watch of the Config pinned to it resumes from a
// compacted revision and must re-read the prefix.
func compactDefrag(ctx context.Context, e *Env) error {
	for k := 1; k <= 4; k++ {
		if err := e.WaitStep(ctx, 100*k); err != nil {
			return err
		}
		var down *Member
		if k%2 == 0 {
			m, err := e.Cluster.Follower(ctx)
			if err != nil {
				return err
			}
			e.Fault("kill -9 the follower %s across a compaction", m.Name)
			if err := m.Kill(); err != nil {
				return err
			}
			down = m
			if err := e.WaitStep(ctx, 100*k+20); err != nil {
				return err
			}
		}
		rev, err := e.Cluster.Revision(ctx)
		if err != nil {
			return err
		}
		if err := e.Cluster.Compact(ctx, rev); err != nil {
			return fmt.Errorf("compact at %d: %w", rev, err)
		}
		e.Fault("compact at revision %d", rev)
		if err := e.Cluster.Defragment(ctx); err != nil {
			return err
		}
		e.Fault("defragment every running member")
		if down != nil {
			if err := down.Restart(ctx); err != nil {
				return err
			}
			e.Logf("restarted %s", down.Name)
		}
	}
	return nil
}

// stopFollower stops a follower gracefully for 30 s during the stream and
// starts it again.
func stopFollower(ctx context.Context, e *Env) error {
	if err := e.WaitStep(ctx, 50); err != nil {
		return err
	}
	m, err := e.Cluster.Follower(ctx)
	if err != nil {
		return err
	}
	// A graceful stop waits up to etcd's request timeout (about 6 s) for
	// open watch streams before the member is down.
	e.Fault("stop the follower %s (SIGTERM) for 30 s", m.Name)
	if err := m.Stop(); err != nil {
		return err
	}
	if !sleep(ctx, 30*time.Second) {
		return ctx.Err()
	}
	if err := m.Restart(ctx); err != nil {
		return err
	}
	e.Logf("restarted %s", m.Name)
	return nil
}

// quorumLoss kills two of the three members for 4 s, twice during the
// stream. The surviving member has no leader, so after about
// three election timeouts it cancels every watch that requires one: the
// Config pinned to it must re-establish its watch from the last revision
// it applied, while writes fail until the quorum is back.
func quorumLoss(ctx context.Context, e *Env) error {
	for _, at := range []int{120, 320} {
		if err := e.WaitStep(ctx, at); err != nil {
			return err
		}
		survivor, err := e.Cluster.Follower(ctx)
		if err != nil {
			return err
		}
		var down []*Member
		for _, m := range e.Cluster.Members {
			if m != survivor {
				down = append(down, m)
			}
		}
		e.Fault("quorum loss: kill -9 %s and %s, %s survives", down[0].Name, down[1].Name, survivor.Name)
		for _, m := range down {
			if err := m.Kill(); err != nil {
				return err
			}
		}
		if !sleep(ctx, 4*time.Second) {
			return ctx.Err()
		}
		for _, m := range down {
			if err := m.Restart(ctx); err != nil {
				return err
			}
			e.Logf("restarted %s", m.Name)
		}
	}
	return nil
}

// Env is what a fault plan sees of a running scenario.
type Env struct {
	Cluster *Cluster

	t          testing.TB
	start      time.Time
	step       atomic.Int64  // writes made so far
	faults     atomic.Int64  // faults injected so far
	streamDone chan struct{} // closed when the stream ends
}

// WaitStep waits until the stream has made n writes (acknowledged or not).
func (e *Env) WaitStep(ctx context.Context, n int) error {
	for e.step.Load() < int64(n) {
		select {
		case <-e.streamDone:
			return fmt.Errorf("the stream ended at step %d, before step %d", e.step.Load(), n)
		default:
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return fmt.Errorf("waiting for step %d: %w", n, ctx.Err())
		}
	}
	return nil
}

// Fault counts and logs one injected fault.
func (e *Env) Fault(format string, args ...any) {
	n := e.faults.Add(1)
	e.Logf("fault %d: %s", n, fmt.Sprintf(format, args...))
}

// Logf logs with the time since the scenario started and the stream's step.
func (e *Env) Logf(format string, args ...any) {
	e.t.Logf("+%5.1fs step %3d: %s", time.Since(e.start).Seconds(), e.step.Load(), fmt.Sprintf(format, args...))
}

// Result is what one scenario did and found.
type Result struct {
	Name       string
	Writes     int // Updates attempted
	Acked      int // Updates that returned a Release
	Committed  int // writer releases in History after the seed
	Faults     int
	Invalid    int // invalid values written around the writer
	Rejections int // OnError reports of them, over all watchers
	Resyncs    int64
	Reconnects int64
	Revision   int64 // the final revision
	Elapsed    time.Duration
	Violations violations
}

// String is the scenario's one-line summary.
func (r *Result) String() string {
	return fmt.Sprintf("faultsuite: %s: %d writes, %d acknowledged, %d unacknowledged (%d of them committed), "+
		"%d faults, %d invalid values injected (%d rejections reported), watchers: %d reconnects, %d resyncs, "+
		"final revision %d, %d violations, %.1fs",
		r.Name, r.Writes, r.Acked, r.Writes-r.Acked, max(0, r.Committed-r.Acked), r.Faults, r.Invalid, r.Rejections,
		r.Reconnects, r.Resyncs, r.Revision, r.Violations.n, r.Elapsed.Seconds())
}

// Run runs sc on c: it seeds the prefix, loads one Config per member (each
// on a client of that member alone), runs the stream of writes with the
// fault plan beside it, brings every member back, waits for the watchers
// to converge and checks everything.
func Run(t *testing.T, c *Cluster, sc Scenario) *Result {
	t.Helper()
	res := &Result{Name: sc.Name}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), sc.Timeout)
	defer cancel()

	prefix := "/faultsuite/" + sc.Name
	wcli := c.Client(t)
	w, err := config.NewWriter[App](wcli, prefix,
		config.WithRetention(2*sc.Writes+10), // History must keep every release
		config.WithWriteTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := retry(ctx, 10, func(ctx context.Context) (*config.Release, error) {
		// Every field as a leaf key: Limit has no valid zero value.
		return w.Raw().Replace(ctx, config.Content{"counter": "0", "seq": "0", "limit": strconv.Itoa(validLimit)},
			config.Author("faultsuite"), config.Message("seed"))
	})
	if err != nil {
		t.Fatalf("faultsuite: seed %s: %v", prefix, err)
	}

	var watchers []*watcher
	for _, m := range c.Members {
		wt, err := newWatcher(ctx, t, c, m, prefix)
		if err != nil {
			t.Fatalf("faultsuite: %v", err)
		}
		watchers = append(watchers, wt)
	}

	env := &Env{Cluster: c, t: t, start: start, streamDone: make(chan struct{})}
	planErr := make(chan error, 1)
	go func() { planErr <- sc.Faults(ctx, env) }()
	s := newStream(wcli, w, prefix, sc)
	s.run(ctx, env)
	if err := <-planErr; err != nil {
		res.Violations.add("suite", "fault plan failed: %v", err)
	}
	if s.abort != nil {
		res.Violations.add("suite", "stream aborted at step %d: %v", env.step.Load(), s.abort)
	}
	env.Logf("stream done: %d acknowledged, %d failed", len(s.acked), len(s.failed))

	// Every member back, every watcher at the end.
	for _, m := range c.Members {
		if !m.Running() {
			res.Violations.add("suite", "the fault plan left %s stopped", m.Name)
			if err := m.Restart(ctx); err != nil {
				t.Fatalf("faultsuite: %v", err)
			}
		}
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("faultsuite: cluster not healthy after the stream: %v", err)
	}
	fin, err := readFinal(ctx, c, w, prefix)
	if err != nil {
		t.Fatalf("faultsuite: final state: %v", err)
	}
	waitConverged(ctx, watchers, fin.Revision, 60*time.Second)
	for _, wt := range watchers {
		_ = wt.cfg.Close()
	}
	env.Logf("final: %+v at version %d, revision %d", *fin.Value, fin.Version, fin.Revision)

	checkWrites(&res.Violations, seed.Version, s, fin)
	for _, wt := range watchers {
		checkWatcher(&res.Violations, wt, fin, s)
		h := wt.cfg.Health()
		if h.Etcd != nil {
			res.Resyncs += h.Etcd.Resyncs
			res.Reconnects += h.Etcd.Reconnects
		}
		res.Rejections += wt.rejections()
	}

	res.Writes = len(s.acked) + len(s.failed)
	res.Acked = len(s.acked)
	res.Committed = fin.committed(seed.Version)
	res.Faults = int(env.faults.Load())
	res.Invalid = len(s.bad)
	res.Revision = fin.Revision
	res.Elapsed = time.Since(start)
	return res
}

// retry calls fn up to n times, one second apart, until it succeeds.
func retry[R any](ctx context.Context, n int, fn func(context.Context) (R, error)) (R, error) {
	var r R
	var err error
	for range n {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err = fn(rctx)
		cancel()
		if err == nil {
			return r, nil
		}
		if !sleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	return r, err
}
