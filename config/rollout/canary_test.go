package rollout_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/etcdtest"
)

// App is the configuration the canary tests' instances load. Admin must
// differ from Port: an instance whose file sets admin makes a candidate
// with that port invalid there only.
type App struct {
	Port  int    `koanf:"port" validate:"min=1,max=65535"`
	Admin int    `koanf:"admin" validate:"omitempty,nefield=Port"`
	Name  string `koanf:"name"`
}

// fleetMember is one running Config and the changes it saw.
type fleetMember struct {
	id      string
	cfg     *config.Config[App]
	changes atomic.Int64
}

// fleet loads n Configs of p, each with its instance id and labels from
// labelsOf, and opts; closed when the test ends.
func fleet(t *testing.T, cli *clientv3.Client, p string, n int, labelsOf func(i int) map[string]string, optsOf func(i int) []config.Option) []*fleetMember {
	t.Helper()
	var out []*fleetMember
	for i := range n {
		m := &fleetMember{id: fmt.Sprintf("i-%02d", i)}
		opts := []config.Option{config.WithEtcd(cli, p), config.WithInstance(m.id, labelsOf(i), 0)}
		if optsOf != nil {
			opts = append(opts, optsOf(i)...)
		}
		cfg, err := config.Load[App](context.Background(), opts...)
		if err != nil {
			t.Fatalf("load %s: %v", m.id, err)
		}
		t.Cleanup(func() { _ = cfg.Close() })
		m.cfg = cfg
		cfg.OnChange(func(config.Change[App]) { m.changes.Add(1) })
		out = append(out, m)
	}
	return out
}

// instances returns the instance records of p.
func instances(t *testing.T, cli *clientv3.Client, p string) []config.Instance {
	t.Helper()
	list, err := config.Instances(context.Background(), cli, p)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// onCandidate reports whether exactly the instances in ids report the
// candidate of rollout id as applied, and every member of the fleet runs
// port on exactly those.
func onCandidate(t *testing.T, cli *clientv3.Client, p, id string, fl []*fleetMember, ids []string, port int) bool {
	for _, in := range instances(t, cli, p) {
		applied := in.Rollout == id && in.Candidate == config.CandidateApplied
		if applied != slices.Contains(ids, in.ID) {
			return false
		}
	}
	for _, m := range fl {
		if (m.cfg.Get().Port == port) != slices.Contains(ids, m.id) {
			return false
		}
	}
	return true
}

func ids(ins []config.Instance) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

// Twenty running Configs on a 3-member cluster, ten of them in zone eu-1:
// at each step exactly the matching instances whose bucket falls under the
// step's percentage run the candidate (a superset of the previous step's),
// the others never see it; Status matches the instance records; promotion
// is one release naming the rollout, on which everyone converges in one
// change.
func TestCanariesFollowTheSteps(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client(t)
	p := "/canaries"
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "port", "80", "name", "a")
	fl := fleet(t, cli, p, 20, func(i int) map[string]string {
		return map[string]string{"zone": map[bool]string{true: "eu-1", false: "us-1"}[i%2 == 0]}
	}, nil)
	waitFor(t, 5*time.Second, "20 instance records", func() bool { return len(instances(t, cli, p)) == 20 })

	const bake = time.Second
	all := instances(t, cli, p)
	// An id whose canaries are some, not all, at 25% and 50%.
	spec := pick(t, cli, p, rollout.Spec{Set: map[string]string{"port": "8080"}, Steps: []int{25, 50, 100},
		Bake: bake, Selector: "zone=eu-1", Author: "ops", Message: "port 8080"}, all,
		func(n []int) bool { return n[0] >= 1 && n[1] > n[0] && n[1] < 10 })
	r, err := rollout.Start(ctx, cli, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	var prev []string
	// check waits until exactly the members of step run the candidate,
	// then checks that nothing else moves for a while.
	check := func(step int) {
		t.Helper()
		members := ids(rollout.Members(r, all, step))
		for _, id := range prev {
			if !slices.Contains(members, id) {
				t.Fatalf("step %d: %s is no longer a canary", step, id)
			}
		}
		waitFor(t, 5*time.Second, fmt.Sprintf("step %d (%d%%): canaries %v on the candidate", step, r.Steps[step], members),
			func() bool { return onCandidate(t, cli, p, r.ID, fl, members, 8080) })
		rep, err := rollout.Status(ctx, cli, p)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rollout.Step != step || rep.Tally.Instances != 20 || rep.Tally.Matching != 10 || rep.Tally.Canaries != len(members) ||
			rep.Tally.OnCandidate != len(members) || rep.Tally.Pending != 0 || rep.Tally.OnBase != 20-len(members) {
			t.Fatalf("status at step %d: %+v", step, rep.Tally)
		}
		for _, st := range rep.Instances {
			if st.Canary != slices.Contains(members, st.ID) || (st.On == rollout.OnCandidate) != st.Canary {
				t.Fatalf("status of %s at step %d: %+v", st.ID, step, st)
			}
		}
		for _, m := range fl {
			if want := int64(0); slices.Contains(members, m.id) {
				want = 1
				if got := m.changes.Load(); got != want {
					t.Fatalf("step %d: canary %s saw %d changes", step, m.id, got)
				}
			} else if got := m.changes.Load(); got != want {
				t.Fatalf("step %d: %s is not a canary and saw %d changes", step, m.id, got)
			}
		}
		prev = members
	}

	// Step 0, with no controller: nothing moves.
	check(0)
	// The controller advances to step 1 at once (the bake is over), and
	// is stopped before the next bake ends.
	stop := runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond))
	waitFor(t, 5*time.Second, "step 1", func() bool { return get(t, cli, p).Step == 1 })
	stop()
	check(1)
	// Step 2 then promotion.
	runController(t, cli, p, rollout.WithPollInterval(20*time.Millisecond))
	waitFor(t, 5*time.Second, "step 2", func() bool { return get(t, cli, p).Step == 2 })
	check(2)
	if len(prev) != 10 {
		t.Fatalf("at 100%% the ten matching instances are canaries: %v", prev)
	}
	waitFor(t, 3*bake+20*time.Second, "promotion", func() bool { return get(t, cli, p).State == rollout.Promoted })
	waitFor(t, 5*time.Second, "everyone on the promoted content", func() bool {
		for _, m := range fl {
			if m.cfg.Get().Port != 8080 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	for _, m := range fl {
		if got := m.changes.Load(); got != 1 {
			t.Fatalf("%s saw %d changes in all, want 1", m.id, got)
		}
	}
	hist, err := w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Message != "rollout "+r.ID+": port 8080" || hist[0].Author != "ops" || len(hist[0].Changes) != 1 {
		t.Fatalf("history: %+v", hist)
	}
	if _, err := rollout.Promote(ctx, cli, p, r.ID); err == nil {
		t.Fatal("a second promote")
	}
	if _, err := rollout.Abort(ctx, cli, p, r.ID, ""); err == nil || !strings.Contains(err.Error(), "is promoted") {
		t.Fatalf("abort after promotion: %v", err)
	}
}

// A candidate that is invalid on some instances (their file layer makes it
// fail validation): the controller aborts within a second of the first
// rejection, every canary is back on the base, nothing was written to
// P/data, and Status shows the reason with the instance id.
func TestCanaryRejectionAborts(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "port", "80", "name", "a")
	dir := t.TempDir()
	file := filepath.Join(dir, "admin.yaml")
	if err := os.WriteFile(file, []byte("admin: 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fl := fleet(t, cli, p, 6, func(int) map[string]string { return nil }, func(i int) []config.Option {
		if i == 3 {
			return []config.Option{config.WithFile(file)}
		}
		return nil
	})
	runController(t, cli, p, rollout.WithPollInterval(200*time.Millisecond), rollout.WithName("c"))
	waitFor(t, 5*time.Second, "controller leads", func() bool { return electionLeader(t, cli, p) == "c" })
	before, version := content(t, w)
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"port": "8080"}, Steps: []int{100}, Bake: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var rejected time.Time
	waitFor(t, 5*time.Second, "the rejection", func() bool {
		for _, in := range instances(t, cli, p) {
			if in.Rollout == r.ID && in.Candidate == config.CandidateRejected {
				rejected = time.Now()
				return true
			}
		}
		return get(t, cli, p).State == rollout.Aborted // aborted before this poll saw it
	})
	waitFor(t, time.Second, "the abort", func() bool { return get(t, cli, p).State == rollout.Aborted })
	if !rejected.IsZero() {
		t.Logf("aborted within %s of the rejection", time.Since(rejected).Round(time.Millisecond))
	}
	got := get(t, cli, p)
	if !strings.Contains(got.Reason, "instance i-03 rejected the candidate") || !strings.Contains(got.Reason, "admin") {
		t.Fatalf("reason %q", got.Reason)
	}
	waitFor(t, 5*time.Second, "every canary back on the base", func() bool {
		for _, m := range fl {
			if m.cfg.Get().Port != 80 {
				return false
			}
		}
		for _, in := range instances(t, cli, p) {
			if in.Rollout != "" {
				return false
			}
		}
		return true
	})
	if c, v := content(t, w); v != version || !maps(c, before) {
		t.Fatalf("the abort wrote data: version %d→%d, %v", version, v, c)
	}
	rep, err := rollout.Status(ctx, cli, p)
	if err != nil || rep.Rollout.State != rollout.Aborted || !strings.Contains(rep.Rollout.Reason, "i-03") {
		t.Fatalf("status: %+v %v", rep, err)
	}
}

func maps(a, b config.Content) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
