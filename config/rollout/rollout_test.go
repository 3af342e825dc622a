package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/canary"
)

// Plan computes the record Start writes, and writes nothing; Start with the
// plan's id writes that record; Get reads it back; Members lists the
// canaries of each step, a superset of the previous step's.
func TestStartPlanGetMembers(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "db.host", "a.example", "db.port", "5432", "name", "svc")

	spec := rollout.Spec{
		Set:      map[string]string{"db.port": "6543", "db.pool": "20"},
		Delete:   []string{"name"},
		Steps:    []int{10, 50, 100},
		Bake:     time.Minute,
		Selector: "zone=eu-1",
		Author:   "ops",
		Message:  "bigger pool",
	}
	plan, err := rollout.Plan(ctx, cli, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ro-3-[0-9a-f]{6}$`).MatchString(plan.ID) || plan.Base != 3 || plan.State != rollout.Running || plan.Step != 0 {
		t.Fatalf("plan: %+v", plan)
	}
	want := []rollout.Change{{Key: "db/pool", Value: "20"}, {Key: "db/port", Value: "6543"}, {Key: "name", Deleted: true}}
	if !slices.Equal(plan.Changes, want) {
		t.Fatalf("changes: %+v, want %+v", plan.Changes, want)
	}
	if _, err := rollout.Get(ctx, cli, p); !errors.Is(err, rollout.ErrNoRollout) {
		t.Fatalf("Plan wrote a record, or Get misreports its absence: %v", err)
	}

	spec.ID = plan.ID
	r, err := rollout.Start(ctx, cli, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, cli, p)
	if got.ID != plan.ID || got.Base != 3 || !slices.Equal(got.Changes, want) || !slices.Equal(got.Steps, []int{10, 50, 100}) ||
		time.Duration(got.Bake) != time.Minute || got.Selector != "zone=eu-1" || got.Author != "ops" || got.Message != "bigger pool" ||
		got.State != rollout.Running || got.Step != 0 || !got.StepStarted.Equal(r.StepStarted) || got.Created.IsZero() {
		t.Fatalf("stored record %+v, Start returned %+v", got, r)
	}
	if c, v := content(t, w); v != 3 || c["db/port"] != "5432" || c["name"] != "svc" {
		t.Fatalf("Start wrote data: version %d, %v", v, c)
	}

	var instances []config.Instance
	for i := range 40 {
		zone := "eu-1"
		if i%2 == 1 {
			zone = "us-1"
		}
		instances = append(instances, config.Instance{ID: fmt.Sprintf("i-%02d", i), Labels: map[string]string{"zone": zone}})
	}
	instances = append(instances, config.Instance{Labels: map[string]string{"zone": "eu-1"}}) // no id: never a canary
	var prev []string
	for step, pct := range r.Steps {
		var ids []string
		for _, in := range rollout.Members(r, instances, step) {
			ids = append(ids, in.ID)
		}
		var expect []string
		for _, in := range instances {
			if in.ID != "" && in.Labels["zone"] == "eu-1" && canary.Bucket(in.ID, r.ID) < pct {
				expect = append(expect, in.ID)
			}
		}
		if !slices.Equal(ids, expect) {
			t.Fatalf("step %d (%d%%): members %v, want %v", step, pct, ids, expect)
		}
		for _, id := range prev {
			if !slices.Contains(ids, id) {
				t.Fatalf("step %d: %s left the canaries", step, id)
			}
		}
		prev = ids
	}
	if len(prev) != 20 {
		t.Fatalf("at 100%% every matching instance is a canary, got %d", len(prev))
	}
	if m := rollout.Members(r, instances, 3); m != nil {
		t.Fatalf("members of a step that does not exist: %v", m)
	}
}

// Defaults apply to steps and bake; Start names the current version as the
// base when the prefix has no release at all.
func TestStartDefaults(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	r, err := rollout.Start(context.Background(), cli, p, rollout.Spec{Set: map[string]string{"port": "80"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Steps, rollout.DefaultSteps()) || time.Duration(r.Bake) != rollout.DefaultBake || r.Base != 0 ||
		!strings.HasPrefix(r.ID, "ro-0-") {
		t.Fatalf("defaults: %+v", r)
	}
}

// Start refuses specs that are wrong, candidates that are invalid or change
// nothing, and a second rollout while one holds the prefix.
func TestStartRefusals(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "db.host", "a.example", "port", "80")
	if _, err := cli.Put(ctx, p+"/data/feature.yaml", "flag: true\n"); err != nil { // a document, written around the writer
		t.Fatal(err)
	}
	set := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		spec rollout.Spec
		want string
		is   error
	}{
		{"steps not increasing", rollout.Spec{Set: set("port", "81"), Steps: []int{50, 10, 100}}, "strictly increasing", nil},
		{"last step not 100", rollout.Spec{Set: set("port", "81"), Steps: []int{10, 50}}, "last step must be 100", nil},
		{"negative bake", rollout.Spec{Set: set("port", "81"), Bake: -time.Second}, "must be positive", nil},
		{"bad selector", rollout.Spec{Set: set("port", "81"), Selector: "zone"}, "selector", nil},
		{"nothing", rollout.Spec{}, "sets and deletes no path", rollout.ErrNoChange},
		{"no change", rollout.Spec{Set: set("port", "80")}, "changes nothing", rollout.ErrNoChange},
		{"delete missing", rollout.Spec{Delete: []string{"db.pool"}}, "delete db.pool", config.ErrNotFound},
		{"set and delete", rollout.Spec{Set: set("port", "81"), Delete: []string{"port"}}, "both set and deleted", nil},
		{"bad path", rollout.Spec{Set: set("db..x", "1")}, "empty path segment", nil},
		{"mask", rollout.Spec{Set: set("port", config.Mask)}, "how a secret is shown", config.ErrInvalid},
		{"inside a document", rollout.Spec{Set: set("feature.flag", "false")}, "document key feature.yaml", config.ErrInvalid},
		{"leaf over leaves", rollout.Spec{Set: set("db", "x")}, "db/host", config.ErrInvalid},
		{"id of another base", rollout.Spec{Set: set("port", "81"), ID: "ro-1-abcdef"}, "names base 1", config.ErrConflict},
		{"id of a bad form", rollout.Spec{Set: set("port", "81"), ID: "my rollout"}, "is not of the form", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rollout.Start(ctx, cli, p, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("Start: %v; want an error with %q (is %v)", err, tc.want, tc.is)
			}
		})
	}
	if _, err := rollout.Get(ctx, cli, p); !errors.Is(err, rollout.ErrNoRollout) {
		t.Fatalf("a refused start wrote a record: %v", err)
	}

	// The candidate is validated like any write: against the schema.
	if _, err := w.PublishSchema(ctx, []byte(`{"type":"object","properties":{"port":{"type":"integer","maximum":1000}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "8080")}); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "port") {
		t.Fatalf("invalid candidate: %v", err)
	}

	first, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "81")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "82")})
	var active *config.RolloutActiveError
	if !errors.As(err, &active) || active.ID != first.ID || !errors.Is(err, config.ErrRolloutActive) || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("second start: %v", err)
	}
	if _, err := rollout.Pause(ctx, cli, p, first.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "82")}); !errors.As(err, &active) || active.State != "paused" {
		t.Fatalf("start over a paused rollout: %v", err)
	}
	if _, err := rollout.Abort(ctx, cli, p, first.ID, "wrong port"); err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "82"), ID: first.ID}); err == nil || !strings.Contains(err.Error(), "used once") {
		t.Fatalf("reusing the previous id: %v", err)
	}
	second, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: set("port", "82")})
	if err != nil {
		t.Fatalf("start after an abort: %v", err)
	}
	if second.ID == first.ID || second.Base != first.Base {
		t.Fatalf("second rollout %+v after %+v", second, first)
	}
}

// The record keeps the raw values of secret paths (canaries apply them),
// where the writer's dry run shows them masked.
func TestStartKeepsSecretValues(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	if _, err := w.PublishSchema(ctx, []byte(`{"type":"object","properties":{"token":{"type":"string","x-secret":true}}}`)); err != nil {
		t.Fatal(err)
	}
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Set: map[string]string{"token": "s3cr3t"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != 1 || r.Changes[0].Value != "s3cr3t" {
		t.Fatalf("changes: %+v", r.Changes)
	}
	// What is shown masks it: Status, and Masked.
	rep, err := rollout.Status(ctx, cli, p)
	if err != nil || rep.Rollout.Changes[0].Value != config.Mask {
		t.Fatalf("status shows %+v (%v)", rep.Rollout.Changes, err)
	}
	if get(t, cli, p).Changes[0].Value != "s3cr3t" {
		t.Fatal("Status masked the stored record")
	}
	doc := &rollout.Rollout{Changes: []rollout.Change{{Key: "db.yaml", Value: "password: x"}, {Key: "db/host", Value: "h"}, {Key: "old", Deleted: true}}}
	m := rollout.Masked(doc, []string{"db.password"})
	if m.Changes[0].Value != config.Mask || m.Changes[1].Value != "h" || m.Changes[2].Value != "" || doc.Changes[0].Value != "password: x" {
		t.Fatalf("Masked: %+v (of %+v)", m.Changes, doc.Changes)
	}
	rel, err := rollout.Promote(ctx, cli, p, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := content(t, w); c["token"] != "s3cr3t" {
		t.Fatalf("promoted content: %v", c)
	}
	for _, ch := range rel.Changes {
		if strings.Contains(ch.New, "s3cr3t") {
			t.Fatalf("the release shows the secret: %+v", ch)
		}
	}
}

// Deleting a path deletes the leaves beneath it, before the sets: a
// subtree is replaced.
func TestStartReplacesSubtree(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "db.host", "a", "db.port", "1")
	r, err := rollout.Start(ctx, cli, p, rollout.Spec{Delete: []string{"db"}, Set: map[string]string{"db.url": "pg://a:1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []rollout.Change{{Key: "db/host", Deleted: true}, {Key: "db/port", Deleted: true}, {Key: "db/url", Value: "pg://a:1"}}
	if !slices.Equal(r.Changes, want) {
		t.Fatalf("changes %+v, want %+v", r.Changes, want)
	}
	if _, err := rollout.Promote(ctx, cli, p, r.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := content(t, w); len(c) != 1 || c["db/url"] != "pg://a:1" {
		t.Fatalf("content: %v", c)
	}
}
