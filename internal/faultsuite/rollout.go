//go:build faultsuite

package faultsuite

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/canary"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// The rollout scenario: six instances (clients of every member), two
// rollout controllers each on a client of a different member, and a
// rollout of limit 10 → 20 in steps of 25, 50 and 100 percent. When the
// second step starts, the member the leading controller talks to is
// killed with SIGKILL and restarted three seconds later: the standby must
// take over within the session TTL and finish the same rollout.
//
// Violations: the rollout does not end promoted; a step runs twice (its
// start time changes) or is skipped; the step does not advance in order;
// not exactly one release names the rollout; an instance does not end on
// the candidate, or goes back to the base once on it.
const (
	rolloutTTL   = 2 // seconds, the controllers' session TTL
	rolloutBake  = 2 * time.Second
	rolloutLimit = "20"
)

// RunRollout runs the rollout scenario on c.
func RunRollout(t *testing.T, c *Cluster) *Result {
	t.Helper()
	res := &Result{Name: "rollout-kill-controller-member"}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := &Env{Cluster: c, t: t, start: start, streamDone: make(chan struct{})}
	prefix := "/faultsuite/rollout"
	wcli := c.Client(t)
	w, err := config.NewWriter[App](wcli, prefix, config.WithWriteTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := retry(ctx, 10, func(ctx context.Context) (*config.Release, error) {
		return w.Raw().Replace(ctx, config.Content{"counter": "0", "seq": "0", "limit": "10"},
			config.Author("faultsuite"), config.Message("seed"))
	})
	if err != nil {
		t.Fatalf("faultsuite: seed %s: %v", prefix, err)
	}

	// Six instances, all in zone eu-1, each on a client of every member
	// as in production: a killed member moves their streams and leases
	// to another one. (Pinned to the killed member, two canaries' records
	// would vanish for longer than their TTL, and the controller would
	// rightly abort.)
	type instance struct {
		id  string
		cfg *config.Config[App]
		mu  sync.Mutex
		lim []int // every Limit a change brought
	}
	var insts []*instance
	for i := range 6 {
		in := &instance{id: fmt.Sprintf("inst-%d", i)}
		cfg, err := config.Load[App](ctx, config.WithEtcd(c.Client(t), prefix),
			config.WithInstance(in.id, map[string]string{"zone": "eu-1"}, 10*time.Second),
			config.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatalf("faultsuite: load %s: %v", in.id, err)
		}
		in.cfg = cfg
		cfg.OnChange(func(ch config.Change[App]) {
			in.mu.Lock()
			in.lim = append(in.lim, ch.New.Limit)
			in.mu.Unlock()
		})
		insts = append(insts, in)
	}
	defer func() {
		for _, in := range insts {
			_ = in.cfg.Close()
		}
	}()

	// Two controllers, on the clients of members 0 and 1.
	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	var ctrlWG sync.WaitGroup
	member := map[string]*Member{}
	for i := range 2 {
		m := c.Members[i]
		name := "controller@" + m.Name
		member[name] = m
		cli := c.Client(t, m.ClientURL)
		ctrlWG.Go(func() {
			_ = rollout.Run(ctrlCtx, cli, prefix, rollout.WithName(name), rollout.WithSessionTTL(rolloutTTL),
				rollout.WithPollInterval(100*time.Millisecond), rollout.WithLogger(slog.New(slog.DiscardHandler)))
		})
	}
	defer func() { stopCtrl(); ctrlWG.Wait() }()

	// Every version of the record, from a client of member 2.
	obs := c.Client(t, c.Members[2].ClientURL)
	var recMu sync.Mutex
	var records []rollout.Rollout
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	layout := etcdprov.NewLayout(prefix)
	wch := obs.Watch(wctx, layout.Rollout())
	go func() {
		for wr := range wch {
			for _, ev := range wr.Events {
				if r, err := canary.Decode(ev.Kv.Value); err == nil {
					recMu.Lock()
					records = append(records, *r)
					recMu.Unlock()
				}
			}
		}
	}()

	r, err := rollout.Start(ctx, wcli, prefix, rollout.Spec{Set: map[string]string{"limit": rolloutLimit},
		Steps: []int{25, 50, 100}, Bake: rolloutBake, Selector: "zone=eu-1", Author: "faultsuite", Message: "limit 20"})
	if err != nil {
		t.Fatalf("faultsuite: start the rollout: %v", err)
	}
	env.Logf("rollout %s started", r.ID)

	// The fault: when step 1 starts, kill the member of the leading
	// controller.
	if err := waitRollout(ctx, wcli, prefix, func(r *rollout.Rollout) bool { return r.Step >= 1 || !r.State.Active() }); err != nil {
		res.Violations.add("suite", "the rollout never reached its second step: %v", err)
	} else if leader, err := electionLeader(ctx, wcli, layout); err != nil {
		res.Violations.add("suite", "no controller leads: %v", err)
	} else if m := member[leader]; m == nil {
		res.Violations.add("suite", "unknown leader %q", leader)
	} else {
		env.Fault("kill -9 %s, the member of the leading %s", m.Name, leader)
		if err := m.Kill(); err != nil {
			t.Fatalf("faultsuite: %v", err)
		}
		sleep(ctx, 3*time.Second)
		if err := m.Restart(ctx); err != nil {
			t.Fatalf("faultsuite: %v", err)
		}
		env.Logf("restarted %s", m.Name)
	}

	final := func(r *rollout.Rollout) bool { return !r.State.Active() }
	if err := waitRollout(ctx, wcli, prefix, final); err != nil {
		res.Violations.add("rollout", "the rollout did not end: %v", err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("faultsuite: cluster not healthy after the rollout: %v", err)
	}
	end, err := rollout.Get(ctx, wcli, prefix)
	switch {
	case err != nil:
		res.Violations.add("rollout", "read the rollout: %v", err)
	case end.State != rollout.Promoted:
		res.Violations.add("rollout", "rollout %s ended %s: %s", end.ID, end.State, end.Reason)
	}

	// The steps, as the record went through them.
	stopWatch()
	recMu.Lock()
	started := map[int]time.Time{}
	last := -1
	for _, rec := range records {
		if t0, ok := started[rec.Step]; ok && !rec.StepStarted.Equal(t0) && rec.State.Active() {
			res.Violations.add("steps", "step %d started twice (%v, then %v)", rec.Step, t0, rec.StepStarted)
		}
		if _, ok := started[rec.Step]; !ok {
			started[rec.Step] = rec.StepStarted
			if rec.Step != last+1 {
				res.Violations.add("steps", "step %d followed step %d", rec.Step, last)
			}
		}
		if rec.Step < last {
			res.Violations.add("steps", "the step went back from %d to %d", last, rec.Step)
		}
		last = max(last, rec.Step)
	}
	recMu.Unlock()

	// One release names the rollout; every instance ends on the candidate
	// and never goes back to the base once on it.
	hist, err := w.History(ctx, 100)
	if err != nil {
		t.Fatalf("faultsuite: history: %v", err)
	}
	naming := 0
	for _, rel := range hist {
		if rel.Version > seed.Version && strings.Contains(rel.Message, r.ID) {
			naming++
		}
	}
	if naming != 1 {
		res.Violations.add("release", "%d releases name rollout %s, want 1", naming, r.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, in := range insts {
		for in.cfg.Get().Limit != 20 && time.Now().Before(deadline) {
			sleep(ctx, 50*time.Millisecond)
		}
		if got := in.cfg.Get().Limit; got != 20 {
			res.Violations.add("instances", "%s ended on limit %d", in.id, got)
		}
		in.mu.Lock()
		for i := 1; i < len(in.lim); i++ {
			if in.lim[i-1] == 20 && in.lim[i] != 20 {
				res.Violations.add("instances", "%s went back from the candidate to limit %d", in.id, in.lim[i])
			}
		}
		env.Logf("%s saw limits %v", in.id, in.lim)
		in.mu.Unlock()
	}
	res.Faults = int(env.faults.Load())
	res.Elapsed = time.Since(start)
	env.Logf("rollout %s: %d versions of the record, steps started %d", r.ID, len(records), len(started))
	return res
}

// waitRollout polls the rollout until cond holds.
func waitRollout(ctx context.Context, cli *clientv3.Client, prefix string, cond func(*rollout.Rollout) bool) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := rollout.Get(rctx, cli, prefix)
		cancel()
		if err == nil && cond(r) {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%w (last: %+v, %v)", ctx.Err(), r, err)
		}
	}
}

// electionLeader returns the election value of the leading controller.
func electionLeader(ctx context.Context, cli *clientv3.Client, l etcdprov.Layout) (string, error) {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(rolloutTTL))
	if err != nil {
		return "", err
	}
	defer s.Close()
	resp, err := concurrency.NewElection(s, l.RolloutElection()).Leader(ctx)
	if err != nil {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}
