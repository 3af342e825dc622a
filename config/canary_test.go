package config_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/canary"
)

type Canaried struct {
	Port int    `koanf:"port" validate:"min=1,max=65535"`
	Name string `koanf:"name"`
}

// putRollout writes a rollout record the way package config/rollout does.
func putRollout(t *testing.T, cli *clientv3.Client, p string, r canary.Record, ops ...clientv3.Op) {
	t.Helper()
	ops = append(ops, clientv3.OpPut(p+"/meta/rollout", r.Encode()))
	if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
}

func instanceOf(t *testing.T, cli *clientv3.Client, p, id string) config.Instance {
	t.Helper()
	list, err := config.Instances(context.Background(), cli, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.ID == id {
			return in
		}
	}
	return config.Instance{}
}

// TestCanaries: a Config with an instance id that matches a rollout's
// selector applies its candidate in one change and reports it; on abort it
// goes back in one change; a candidate it cannot take is rejected with the
// base kept; on promotion it never flips back to the base. Configs outside
// the selector or without an id never see the candidate before promotion.
func TestCanaries(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	put(t, cli, p, "port", "80")
	put(t, cli, p, "name", "a")
	load := func(opts ...config.Option) (*config.Config[Canaried], *recorder[Canaried]) {
		cfg, err := config.Load[Canaried](ctx, append(opts, config.WithEtcd(cli, p))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cfg.Close() })
		return cfg, record(cfg)
	}
	eu, euRec := load(config.WithInstance("eu", map[string]string{"zone": "eu-1"}, 0))
	us, usRec := load(config.WithInstance("us", map[string]string{"zone": "us-1"}, 0))
	plain, plainRec := load()
	count := func(r *recorder[Canaried]) int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.changes) }

	ro := canary.Record{ID: "ro-1", Steps: []int{100}, State: canary.Running, Selector: "zone=eu-1",
		Changes: []canary.Change{{Key: "port", Value: "8080"}, {Key: "name", Deleted: true}}}
	putRollout(t, cli, p, ro)
	waitFor(t, "the canary on the candidate", func() bool { return eu.Get().Port == 8080 && eu.Get().Name == "" })
	waitFor(t, "the canary's record", func() bool {
		in := instanceOf(t, cli, p, "eu")
		return in.Rollout == "ro-1" && in.Candidate == config.CandidateApplied
	})
	time.Sleep(300 * time.Millisecond)
	if n := count(euRec); n != 1 {
		t.Fatalf("the canary saw %d changes, want 1: %+v", n, euRec.changes)
	}
	if us.Get().Port != 80 || plain.Get().Port != 80 || count(usRec)+count(plainRec) != 0 {
		t.Fatal("an instance outside the selector, or without an id, saw the candidate")
	}
	if in := instanceOf(t, cli, p, "us"); in.Rollout != "" || in.Candidate != "" {
		t.Fatalf("us reports a rollout: %+v", in)
	}
	// A canary that starts during the rollout starts on the candidate.
	late, lateRec := load(config.WithInstance("eu-late", map[string]string{"zone": "eu-1"}, 0))
	if late.Get().Port != 8080 {
		t.Fatalf("a canary loaded during the rollout started on port %d", late.Get().Port)
	}
	waitFor(t, "the late canary's record", func() bool {
		return instanceOf(t, cli, p, "eu-late").Candidate == config.CandidateApplied
	})
	if count(lateRec) != 0 {
		t.Fatal("the late canary saw a change")
	}

	ro.State, ro.Reason = canary.Aborted, "test"
	putRollout(t, cli, p, ro)
	waitFor(t, "the canary back on the base", func() bool { return eu.Get().Port == 80 && eu.Get().Name == "a" })
	waitFor(t, "the canary's record cleared", func() bool { return instanceOf(t, cli, p, "eu").Rollout == "" })
	if n := count(euRec); n != 2 {
		t.Fatalf("the canary saw %d changes, want 2", n)
	}

	// A candidate this instance cannot take.
	bad := canary.Record{ID: "ro-bad", Steps: []int{100}, State: canary.Running, Changes: []canary.Change{{Key: "port", Value: "70000"}}}
	putRollout(t, cli, p, bad)
	waitFor(t, "the rejection in the record", func() bool {
		in := instanceOf(t, cli, p, "eu")
		return in.Rollout == "ro-bad" && in.Candidate == config.CandidateRejected && strings.Contains(in.CandidateError, "port")
	})
	if eu.Get().Port != 80 || count(euRec) != 2 {
		t.Fatal("a rejected candidate replaced the base")
	}
	bad.State = canary.Aborted
	putRollout(t, cli, p, bad)
	waitFor(t, "the record cleared after abort", func() bool { return instanceOf(t, cli, p, "eu").Rollout == "" })

	// Promotion: the data and the promoted record in one transaction.
	good := canary.Record{ID: "ro-2", Steps: []int{50, 100}, Step: 1, State: canary.Running, Selector: "zone=eu-1",
		Changes: []canary.Change{{Key: "port", Value: "9090"}}}
	putRollout(t, cli, p, good)
	waitFor(t, "the canary on ro-2", func() bool { return eu.Get().Port == 9090 })
	before := count(euRec)
	good.State = canary.Promoted
	putRollout(t, cli, p, good, clientv3.OpPut(p+"/data/port", "9090"))
	waitFor(t, "everyone on the promoted content", func() bool { return us.Get().Port == 9090 && plain.Get().Port == 9090 })
	time.Sleep(300 * time.Millisecond)
	if n := count(euRec); n != before {
		t.Fatalf("the canary changed %d times after promotion (it flipped back to the base?)", n-before)
	}
	if count(usRec) != 1 || count(plainRec) != 1 {
		t.Fatalf("non-canaries saw %d and %d changes, want 1 each", count(usRec), count(plainRec))
	}
	euRec.mu.Lock()
	defer euRec.mu.Unlock()
	for _, c := range euRec.changes {
		if slices.Contains(c.Paths, "port") && c.New.Port == 80 && c.Old.Port == 9090 {
			t.Fatal("the canary went back to the base during promotion")
		}
	}
}

// TestHealthCheck: a failing application health check degrades Health and
// the instance record (what a rollout controller watches), and recovers.
func TestHealthCheck(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "port", "80")
	var failing atomic.Bool
	cfg, err := config.Load[Canaried](context.Background(), config.WithEtcd(cli, p),
		config.WithInstance("h1", nil, 0),
		config.WithHealthCheck(func(ctx context.Context) error {
			if failing.Load() {
				return errors.New("error rate 12% over 5%")
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	waitFor(t, "the record healthy", func() bool { return instanceOf(t, cli, p, "h1").Health == "ok" })
	failing.Store(true)
	waitFor(t, "the record degraded", func() bool {
		in := instanceOf(t, cli, p, "h1")
		return in.Health == "degraded" && strings.Contains(in.HealthReason, "error rate 12%")
	})
	if h := cfg.Health(); h.Status != "degraded" || !strings.Contains(h.Reason, "health check: error rate") {
		t.Fatalf("Health = %+v", h)
	}
	failing.Store(false)
	waitFor(t, "the record healthy again", func() bool { return instanceOf(t, cli, p, "h1").Health == "ok" })
}
