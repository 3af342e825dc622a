package rollout_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/canary"
)

// recorder collects every version of a rollout record, from a watch.
type recorder struct {
	mu   sync.Mutex
	recs []*rollout.Rollout
	stop func()
}

// record watches the rollout record of p until the test ends (or stop).
func record(t *testing.T, cli *clientv3.Client, p string) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	resp, err := cli.Get(ctx, p+"/meta/rollout")
	if err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(ctx, p+"/meta/rollout", clientv3.WithRev(resp.Header.Revision+1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wr := range wch {
			for _, ev := range wr.Events {
				if r, err := canary.Decode(ev.Kv.Value); err == nil {
					rec.mu.Lock()
					rec.recs = append(rec.recs, r)
					rec.mu.Unlock()
				}
			}
		}
	}()
	var once sync.Once
	rec.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(rec.stop)
	return rec
}

// stopPromoted waits until the recorder's watch has delivered the
// promoted record (etcd may answer a Get with it before the watch, on
// another connection, has), then stops it.
func (r *recorder) stopPromoted(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "the promoted record on the recorder's watch", func() bool {
		recs := r.all()
		return len(recs) > 0 && recs[len(recs)-1].State == rollout.Promoted
	})
	r.stop()
}

// all returns the records seen so far.
func (r *recorder) all() []*rollout.Rollout {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*rollout.Rollout(nil), r.recs...)
}

// checkSteps checks that recs ran every step of their rollout once, in
// order, each for its bake time at least, and ended promoted: each step
// has one StepStarted, and no step is left and entered again.
func checkSteps(t *testing.T, recs []*rollout.Rollout) {
	t.Helper()
	started := map[int]time.Time{}
	last := -1
	for _, r := range recs {
		if r.State == rollout.Promoted {
			continue
		}
		if r.Step != last && r.Step != last+1 {
			t.Fatalf("step %d after step %d: %+v", r.Step, last, recs)
		}
		if r.Step == last && !r.StepStarted.Equal(started[r.Step]) {
			t.Fatalf("step %d started twice: %s and %s", r.Step, started[r.Step], r.StepStarted)
		}
		if r.Step == last+1 {
			if prev, ok := started[last]; ok && r.StepStarted.Sub(prev) < time.Duration(r.Bake) {
				t.Fatalf("step %d began %s after step %d, before its bake of %s", r.Step, r.StepStarted.Sub(prev), last, time.Duration(r.Bake))
			}
			started[r.Step] = r.StepStarted
		}
		last = r.Step
	}
	final := recs[len(recs)-1]
	if final.State != rollout.Promoted || last != len(final.Steps)-1 {
		t.Fatalf("the rollout ended at step %d as %s: %+v", last, final.State, final)
	}
	if final.Step != last {
		t.Fatalf("promoted at step %d, last run %d", final.Step, last)
	}
}

// electionLeader returns the value of the leading election key of p ("" if
// none).
func electionLeader(t *testing.T, cli *clientv3.Client, p string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), p+"/meta/election/rollout/", clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// The controller advances each step after its bake and promotes at the
// end: one release naming the rollout; a stopped controller resigns.
func TestControllerAdvancesAndPromotes(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "port", "80")
	rec := record(t, cli, p)
	stop := runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond), rollout.WithName("c1"))
	waitFor(t, 5*time.Second, "controller leads", func() bool { return electionLeader(t, cli, p) == "c1" })

	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Steps: []int{10, 50, 100},
		Bake: 300 * time.Millisecond, Message: "port 81"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "promotion", func() bool { return get(t, cli, p).State == rollout.Promoted })
	rec.stopPromoted(t)
	recs := rec.all()
	checkSteps(t, recs)
	if len(recs) != 4 { // start, two advances, promotion
		t.Fatalf("want 4 writes of the record, got %d: %+v", len(recs), recs)
	}
	final := get(t, cli, p)
	hist, err := w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Version != final.Release || hist[0].Message != "rollout "+r.ID+": port 81" {
		t.Fatalf("history: %+v (record %+v)", hist, final)
	}
	if c, _ := content(t, w); c["port"] != "81" {
		t.Fatalf("content %v", c)
	}
	stop()
	if l := electionLeader(t, cli, p); l != "" {
		t.Fatalf("a stopped controller left its election key: %q", l)
	}
}

// A paused rollout is left alone past its bake; once resumed it goes on.
func TestControllerLeavesPausedAlone(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	seed(t, writer(t, cli, p), "port", "80")
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Steps: []int{50, 100}, Bake: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Pause(ctx, cli, p, r.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int64
	runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond),
		rollout.WithCheck(func(context.Context, *rollout.Rollout) error { polls.Add(1); return nil }))
	time.Sleep(400 * time.Millisecond)
	if got := get(t, cli, p); got.State != rollout.Paused || got.Step != 0 || polls.Load() != 0 {
		t.Fatalf("a paused rollout moved (%d checks): %+v", polls.Load(), got)
	}
	if _, err := rollout.Resume(ctx, cli, p, r.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "promotion after resume", func() bool { return get(t, cli, p).State == rollout.Promoted })
	if polls.Load() == 0 {
		t.Fatal("the check never ran")
	}
}

// A canary that reports the candidate rejected aborts the rollout within
// a second (default poll); the reason names it; nothing is written to
// P/data.
func TestControllerAbortsOnRejection(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "port", "80")
	before, v := content(t, w)
	runController(t, cli, p, rollout.WithName("c"))
	waitFor(t, 5*time.Second, "controller leads", func() bool { return electionLeader(t, cli, p) == "c" })
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Steps: []int{50, 100}, Bake: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	putInstance(t, cli, p, config.Instance{ID: "web-1", Rollout: r.ID, Candidate: config.CandidateApplied})
	time.Sleep(300 * time.Millisecond)
	if get(t, cli, p).State != rollout.Running {
		t.Fatal("aborted without a rejection")
	}
	putInstance(t, cli, p, config.Instance{ID: "web-2", Rollout: r.ID, Candidate: config.CandidateRejected,
		CandidateError: "port: must be at most 80"})
	rejected := time.Now()
	waitFor(t, time.Second, "abort after a rejection", func() bool { return get(t, cli, p).State == rollout.Aborted })
	t.Logf("aborted %s after the rejection", time.Since(rejected).Round(time.Millisecond))
	got := get(t, cli, p)
	if !strings.Contains(got.Reason, "web-2") || !strings.Contains(got.Reason, "must be at most 80") {
		t.Fatalf("reason: %q", got.Reason)
	}
	if c, v2 := content(t, w); v2 != v || len(c) != len(before) || c["port"] != "80" {
		t.Fatalf("the abort wrote data: version %d→%d, %v", v, v2, c)
	}
	rep, err := rollout.Status(ctx, cli, p)
	if err != nil || rep.Rollout.Reason != got.Reason || rep.Tally.Rejected != 1 || rep.Tally.Rejections[0].Instance != "web-2" {
		t.Fatalf("status: %+v %v", rep, err)
	}
}

// A canary that applied the candidate and reports itself degraded aborts
// the rollout, unless WithAbortOnDegraded(false).
func TestControllerAbortsOnDegraded(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			cli := client(t)
			p := prefix(t)
			seed(t, writer(t, cli, p), "port", "80")
			r, err := rollout.Start(context.Background(), cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Bake: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var polls atomic.Int64
			runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond), rollout.WithAbortOnDegraded(on),
				rollout.WithCheck(func(context.Context, *rollout.Rollout) error { polls.Add(1); return nil }))
			putInstance(t, cli, p, config.Instance{ID: "web-1", Rollout: r.ID, Candidate: config.CandidateApplied,
				Health: "degraded", HealthReason: "health check: error rate 7%"})
			if on {
				waitFor(t, 2*time.Second, "abort", func() bool { return get(t, cli, p).State == rollout.Aborted })
				if got := get(t, cli, p); !strings.Contains(got.Reason, "web-1 is degraded") || !strings.Contains(got.Reason, "error rate 7%") {
					t.Fatalf("reason %q", got.Reason)
				}
				return
			}
			n := polls.Load()
			waitFor(t, 2*time.Second, "two polls", func() bool { return polls.Load() >= n+2 })
			if got := get(t, cli, p); got.State != rollout.Running {
				t.Fatalf("aborted with the check off: %+v", got)
			}
		})
	}
}

// Canaries whose instance records vanish during a step abort the rollout
// beyond the limit; an instance that was never a canary does not count.
func TestControllerAbortsOnVanishedCanaries(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	seed(t, writer(t, cli, p), "port", "80")
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Steps: []int{100},
		Bake: time.Hour, Selector: "tier=web"})
	if err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int64
	runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond),
		rollout.WithCheck(func(context.Context, *rollout.Rollout) error { polls.Add(1); return nil }))
	sync := func() { // until the controller has polled twice more
		n := polls.Load()
		waitFor(t, 2*time.Second, "two polls", func() bool { return polls.Load() >= n+2 })
	}
	for _, id := range []string{"v1", "v2", "v3"} {
		putInstance(t, cli, p, config.Instance{ID: id, Labels: map[string]string{"tier": "web"}})
	}
	putInstance(t, cli, p, config.Instance{ID: "batch", Labels: map[string]string{"tier": "batch"}})
	sync()
	for _, id := range []string{"batch", "v1"} {
		if _, err := cli.Delete(ctx, p+"/meta/instances/"+id); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	if got := get(t, cli, p); got.State != rollout.Running {
		t.Fatalf("aborted at one vanished canary (limit 1): %+v", got)
	}
	if _, err := cli.Delete(ctx, p+"/meta/instances/v3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "abort", func() bool { return get(t, cli, p).State == rollout.Aborted })
	got := get(t, cli, p)
	if !strings.Contains(got.Reason, "of 2 canaries vanished") || !strings.Contains(got.Reason, "v1, v3") || strings.Contains(got.Reason, "batch") {
		t.Fatalf("reason %q (rollout %s)", got.Reason, r.ID)
	}
}

// A failing (or panicking) application check aborts the rollout with its
// error.
func TestControllerCheck(t *testing.T) {
	for name, check := range map[string]func(context.Context, *rollout.Rollout) error{
		"error": func(_ context.Context, r *rollout.Rollout) error {
			return errors.New("error rate 5% on " + r.ID)
		},
		"panic": func(context.Context, *rollout.Rollout) error { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			cli := client(t)
			p := prefix(t)
			seed(t, writer(t, cli, p), "port", "80")
			r, err := rollout.Start(context.Background(), cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Bake: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond), rollout.WithCheck(check))
			waitFor(t, 2*time.Second, "abort", func() bool { return get(t, cli, p).State == rollout.Aborted })
			want := map[string]string{"error": "check failed: error rate 5% on " + r.ID, "panic": "check failed: the check panicked: boom"}[name]
			if got := get(t, cli, p); got.Reason != want {
				t.Fatalf("reason %q, want %q", got.Reason, want)
			}
		})
	}
}

// Of two controllers one leads; when it stops, the other takes over.
func TestControllerStandby(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	stopA := runController(t, cli, p, rollout.WithName("a"), rollout.WithPollInterval(20*time.Millisecond))
	waitFor(t, 5*time.Second, "a leads", func() bool { return electionLeader(t, cli, p) == "a" })
	runController(t, client(t), p, rollout.WithName("b"), rollout.WithPollInterval(20*time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	if l := electionLeader(t, cli, p); l != "a" {
		t.Fatalf("leader %q while a runs", l)
	}
	stopA() // resigns: b takes over at once
	waitFor(t, time.Second, "b leads", func() bool { return electionLeader(t, cli, p) == "b" })
}

// Run refuses a bad prefix and a nil client, and returns when its client
// is closed.
func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	if err := rollout.Run(ctx, nil, "/p"); err == nil {
		t.Fatal("Run without a client")
	}
	if err := rollout.Run(ctx, client(t), "p"); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("Run with a relative prefix: %v", err)
	}
	cli, err := shared.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rollout.Run(ctx, cli, prefix(t), rollout.WithSessionTTL(1)) }()
	time.Sleep(100 * time.Millisecond)
	cli.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "client is closed") {
			t.Fatalf("Run after its client closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its client closed")
	}
}
