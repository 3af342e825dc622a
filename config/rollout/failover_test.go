package rollout_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/etcdtest"
)

// When the leading controller dies in the middle of a bake (its client is
// closed without resigning, or the etcd member it talks to is killed), the
// standby takes over within the session TTL plus a second and continues
// the same step from the stored state: the step is not started again, no
// step is run twice or skipped, and the rollout is promoted once.
func TestControllerFailover(t *testing.T) {
	const ttl = 2 // seconds
	const bake = 4 * time.Second
	for _, fault := range []string{"client closed", "member killed"} {
		t.Run(strings.ReplaceAll(fault, " ", "_"), func(t *testing.T) {
			c := etcdtest.NewCluster(t, 3)
			cli := c.Client(t)
			p := "/failover"
			w := writer(t, cli, p)
			seed(t, w, "port", "80")
			rec := record(t, cli, p)

			// Controller a talks to one follower only, b to every member.
			m := c.Followers(t)[0]
			cliA, err := c.NewClient(m.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer cliA.Close()
			ctxA, cancelA := context.WithCancel(context.Background())
			defer cancelA()
			doneA := make(chan error, 1)
			opts := []rollout.Option{rollout.WithSessionTTL(ttl), rollout.WithPollInterval(50 * time.Millisecond)}
			go func() { doneA <- rollout.Run(ctxA, cliA, p, append(opts, rollout.WithName("a"))...) }()
			waitFor(t, 5*time.Second, "a leads", func() bool { return electionLeader(t, cli, p) == "a" })
			runController(t, c.Client(t), p, append(opts, rollout.WithName("b"))...)

			r, err := rollout.Start(context.Background(), cli, p, rollout.Spec{Set: map[string]string{"port": "81"},
				Steps: []int{50, 100}, Bake: bake})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			dead := time.Now()
			switch fault {
			case "client closed":
				cliA.Close()
				select {
				case err := <-doneA:
					if err == nil || !strings.Contains(err.Error(), "client is closed") {
						t.Fatalf("a's Run after its client closed: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("a's Run did not return after its client closed")
				}
			case "member killed":
				m.Kill(t)
			}
			waitFor(t, (ttl+1)*time.Second, "b takes over", func() bool { return electionLeader(t, cli, p) == "b" })
			took := time.Since(dead)
			if got := get(t, cli, p); got.Step != 0 || got.State != rollout.Running || !got.StepStarted.Equal(r.StepStarted) {
				t.Fatalf("after the takeover (%s): %+v", took, got)
			}
			waitFor(t, 3*bake+20*time.Second, "promotion", func() bool { return get(t, cli, p).State == rollout.Promoted })
			rec.stopPromoted(t)
			recs := rec.all()
			checkSteps(t, recs)
			if len(recs) != 3 { // start, one advance, promotion
				t.Fatalf("want 3 writes of the record, got %d: %+v", len(recs), recs)
			}
			// Step 1 began when step 0's stored bake ended, not a bake
			// after the takeover.
			if d := recs[1].StepStarted.Sub(r.StepStarted); d < bake || d > bake+time.Second {
				t.Fatalf("step 1 began %s after step 0 (bake %s, takeover after %s)", d, bake, took)
			}
			hist, err := w.History(context.Background(), 10)
			if err != nil || len(hist) != 2 || !strings.Contains(hist[0].Message, r.ID) {
				t.Fatalf("history: %+v %v", hist, err)
			}
			t.Logf("%s: b took over %s after a died", fault, took.Round(10*time.Millisecond))
			cancelA()
			if fault == "member killed" {
				select {
				case err := <-doneA:
					if err != nil {
						t.Fatalf("a's Run: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("a's Run did not return after its context was cancelled")
				}
			}
		})
	}
}
