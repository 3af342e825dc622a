package rollout_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
)

// startPort starts a rollout that sets port to value over a prefix that
// holds port=80.
func startPort(t testing.TB, p, value string, steps ...int) (*config.RawWriter, *rollout.Rollout) {
	t.Helper()
	cli := client(t)
	w := writer(t, cli, p)
	seed(t, w, "port", "80")
	if steps == nil {
		steps = []int{50, 100}
	}
	r, err := rollout.Start(context.Background(), cli, p, rollout.Spec{Set: map[string]string{"port": value},
		Steps: steps, Bake: time.Hour, Author: "alice", Message: "new port"})
	if err != nil {
		t.Fatal(err)
	}
	return w, r
}

// Pause, Resume and Abort move the state as allowed and refuse the rest;
// the bake clock stops while paused.
func TestStateTransitions(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	_, r := startPort(t, p, "81")

	if _, err := rollout.Resume(ctx, cli, p, r.ID); !errors.Is(err, rollout.ErrState) || !strings.Contains(err.Error(), "is running") {
		t.Fatalf("resume of a running rollout: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	paused, err := rollout.Pause(ctx, cli, p, r.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if paused.State != rollout.Paused || paused.Reason != "paused by bob" || time.Duration(paused.Baked) < 50*time.Millisecond {
		t.Fatalf("paused: %+v", paused)
	}
	left := rollout.BakeLeft(paused, time.Now())
	time.Sleep(50 * time.Millisecond)
	if got := rollout.BakeLeft(get(t, cli, p), time.Now()); got != left {
		t.Fatalf("the bake clock ran while paused: %s then %s", left, got)
	}
	if _, err := rollout.Pause(ctx, cli, p, r.ID, "bob"); !errors.Is(err, rollout.ErrState) || !strings.Contains(err.Error(), "is paused") {
		t.Fatalf("pause of a paused rollout: %v", err)
	}
	resumed, err := rollout.Resume(ctx, cli, p, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.State != rollout.Running || resumed.Reason != "" || resumed.Baked != 0 ||
		!resumed.StepStarted.Equal(resumed.Updated.Add(-time.Duration(paused.Baked))) {
		t.Fatalf("resumed: %+v", resumed)
	}
	if got := rollout.BakeLeft(resumed, resumed.Updated); got != left {
		t.Fatalf("resume did not continue the bake clock: %s left, want %s", got, left)
	}

	if _, err := rollout.Pause(ctx, cli, p, "ro-1-zzzzzz", "bob"); !errors.Is(err, rollout.ErrNoRollout) || !strings.Contains(err.Error(), r.ID) {
		t.Fatalf("pause of another id: %v", err)
	}
	aborted, err := rollout.Abort(ctx, cli, p, r.ID, "too risky")
	if err != nil {
		t.Fatal(err)
	}
	if aborted.State != rollout.Aborted || aborted.Reason != "too risky" {
		t.Fatalf("aborted: %+v", aborted)
	}
	for name, op := range map[string]func() error{
		"abort":   func() error { _, err := rollout.Abort(ctx, cli, p, r.ID, "again"); return err },
		"pause":   func() error { _, err := rollout.Pause(ctx, cli, p, r.ID, ""); return err },
		"resume":  func() error { _, err := rollout.Resume(ctx, cli, p, r.ID); return err },
		"promote": func() error { _, err := rollout.Promote(ctx, cli, p, r.ID); return err },
	} {
		if err := op(); !errors.Is(err, rollout.ErrState) || !strings.Contains(err.Error(), "is aborted (too risky)") {
			t.Errorf("%s after abort: %v", name, err)
		}
	}
	if _, err := rollout.Abort(ctx, cli, prefix(t), r.ID, ""); !errors.Is(err, rollout.ErrNoRollout) {
		t.Fatalf("abort on a prefix without rollout: %v", err)
	}
}

// Promote writes one release with the candidate, naming the rollout, and
// marks the record promoted by it; a second promote, an abort or a pause
// after it are refused.
func TestPromote(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w, r := startPort(t, p, "81")

	dry, err := rollout.Promote(ctx, cli, p, r.ID, config.DryRun())
	if err != nil || !dry.DryRun || len(dry.Changes) != 1 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if get(t, cli, p).State != rollout.Running {
		t.Fatal("a dry run promoted the rollout")
	}
	rel, err := rollout.Promote(ctx, cli, p, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != r.Base+1 || rel.Author != "alice" || rel.Message != "rollout "+r.ID+": new port" ||
		len(rel.Changes) != 1 || rel.Changes[0].Key != "port" || rel.Changes[0].New != "81" {
		t.Fatalf("release: %+v", rel)
	}
	got := get(t, cli, p)
	if got.State != rollout.Promoted || got.Release != rel.Version {
		t.Fatalf("record after promotion: %+v", got)
	}
	hist, err := w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Version != rel.Version || !strings.Contains(hist[0].Message, r.ID) {
		t.Fatalf("history: %+v", hist)
	}
	if c, _ := content(t, w); c["port"] != "81" {
		t.Fatalf("content: %v", c)
	}
	if _, err := rollout.Promote(ctx, cli, p, r.ID); !errors.Is(err, rollout.ErrState) || !strings.Contains(err.Error(), "rollout "+r.ID+" is promoted") {
		t.Fatalf("second promote: %v", err)
	}
	// Once promoted, instances that run the promotion release (or a
	// later one) count as on the candidate.
	putInstance(t, cli, p, config.Instance{ID: "new", AppliedVersion: rel.Version})
	putInstance(t, cli, p, config.Instance{ID: "old", AppliedVersion: r.Base})
	if rep, err := rollout.Status(ctx, cli, p); err != nil || rep.Tally.OnCandidate != 1 || rep.Tally.OnBase != 1 || rep.Instances[0].On != rollout.OnCandidate {
		t.Fatalf("status after promotion: %+v %v", rep, err)
	}
	if _, err := rollout.Abort(ctx, cli, p, r.ID, ""); !errors.Is(err, rollout.ErrState) || !strings.Contains(err.Error(), "rollout "+r.ID+" is promoted") {
		t.Fatalf("abort after promote: %v", err)
	}
	if hist, _ := w.History(ctx, 10); len(hist) != 2 {
		t.Fatalf("a refused promote wrote: %+v", hist)
	}
	// The prefix is free again.
	if _, err := w.Set(ctx, "port", "82"); err != nil {
		t.Fatalf("write after promotion: %v", err)
	}
}

// A paused rollout can be promoted by an operator, with another author and
// message.
func TestPromotePaused(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	_, r := startPort(t, p, "81")
	if _, err := rollout.Pause(ctx, cli, p, r.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	rel, err := rollout.Promote(ctx, cli, p, r.ID, config.Author("bob"), config.Message("rollout "+r.ID+": early"))
	if err != nil {
		t.Fatal(err)
	}
	if rel.Author != "bob" || rel.Message != "rollout "+r.ID+": early" || get(t, cli, p).State != rollout.Promoted {
		t.Fatalf("release %+v", rel)
	}
}

// A plain write while a rollout runs is refused naming the rollout; a
// forced write goes through and aborts it in the same transaction.
func TestWriteDuringRollout(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w, r := startPort(t, p, "81")

	_, err := w.Set(ctx, "host", "b")
	var active *config.RolloutActiveError
	if !errors.Is(err, config.ErrRolloutActive) || !errors.As(err, &active) || active.ID != r.ID || !strings.Contains(err.Error(), r.ID) {
		t.Fatalf("plain write during a rollout: %v", err)
	}
	rel, err := w.Set(ctx, "host", "b", config.Force(), config.Author("carol"))
	if err != nil {
		t.Fatalf("forced write: %v", err)
	}
	got := get(t, cli, p)
	if got.State != rollout.Aborted || !strings.Contains(got.Reason, "forced write") || !strings.Contains(got.Reason, "carol") {
		t.Fatalf("record after a forced write (release %d): %+v", rel.Version, got)
	}
	if _, err := rollout.Promote(ctx, cli, p, r.ID); !errors.Is(err, rollout.ErrState) {
		t.Fatalf("promote after a forced write: %v", err)
	}
}

// A promotion whose base version is no longer current (a release by a
// writer that does not know rollouts, here the version key moved by hand)
// is refused as a conflict and aborts the rollout; nothing is written.
func TestPromoteAfterVersionMoved(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w, r := startPort(t, p, "81")
	if _, err := cli.Put(ctx, p+"/meta/version", "7"); err != nil {
		t.Fatal(err)
	}
	_, err := rollout.Promote(ctx, cli, p, r.ID)
	var ce *config.ConflictError
	if !errors.As(err, &ce) || ce.Expected != r.Base || ce.Current != 7 || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("promote over a moved version: %v", err)
	}
	got := get(t, cli, p)
	if got.State != rollout.Aborted || !strings.Contains(got.Reason, "release 7") {
		t.Fatalf("record: %+v", got)
	}
	if c, _ := content(t, w); c["port"] != "80" {
		t.Fatalf("content: %v", c)
	}
}

// Status places each instance: canary or not, on base, candidate or
// rejected, with a tally and the time left in the bake; the report encodes
// to JSON.
func TestStatus(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := writer(t, cli, p)
	seed(t, w, "port", "80")
	var all []config.Instance
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		all = append(all, config.Instance{ID: id, Labels: map[string]string{"zone": "eu-1"}})
	}
	spec := pick(t, cli, p, rollout.Spec{Set: map[string]string{"port": "81"}, Steps: []int{50, 100},
		Bake: time.Hour, Selector: "zone=eu-1"}, all, func(n []int) bool { return n[0] >= 3 && n[0] < 10 })
	r, err := rollout.Start(ctx, cli, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	members := rollout.Members(r, all, 0)
	for i, in := range members {
		in.Rollout, in.RolloutStep = r.ID, 0
		switch i {
		case 0:
			in.Candidate = config.CandidateApplied
		case 1:
			in.Candidate, in.CandidateError = config.CandidateRejected, "port: must be at most 80"
		}
		putInstance(t, cli, p, in)
	}
	for _, in := range all {
		if !containsID(members, in.ID) {
			putInstance(t, cli, p, in)
		}
	}
	putInstance(t, cli, p, config.Instance{ID: "z", Labels: map[string]string{"zone": "us-1"}})

	rep, err := rollout.Status(ctx, cli, p)
	if err != nil {
		t.Fatal(err)
	}
	tl := rep.Tally
	if rep.Rollout.ID != r.ID || rep.Percent != 50 || tl.Instances != 11 || tl.Matching != 10 || tl.Canaries != len(members) ||
		tl.OnCandidate != 1 || tl.Rejected != 1 || tl.OnBase != 9 || tl.Pending != len(members)-2 ||
		len(tl.Rejections) != 1 || tl.Rejections[0].Instance != members[1].ID || tl.Rejections[0].Error != "port: must be at most 80" {
		t.Fatalf("report: %+v", rep)
	}
	if left := time.Duration(rep.BakeLeft); left <= 59*time.Minute || left > time.Hour {
		t.Fatalf("bake left: %s", left)
	}
	for _, st := range rep.Instances {
		want := containsID(members, st.ID)
		if st.Canary != want {
			t.Fatalf("instance %s: canary %v, want %v", st.ID, st.Canary, want)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["bake_left"] == nil || back["tally"].(map[string]any)["on_candidate"].(float64) != 1 ||
		back["instances"].([]any)[0].(map[string]any)["id"] != "a" || back["rollout"].(map[string]any)["id"] != r.ID {
		t.Fatalf("json: %s", b)
	}

	// An aborted rollout has no canaries and no bake left.
	if _, err := rollout.Abort(ctx, cli, p, r.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Status(ctx, cli, prefix(t)); !errors.Is(err, rollout.ErrNoRollout) {
		t.Fatalf("status without rollout: %v", err)
	}
	rep, err = rollout.Status(ctx, cli, p)
	if err != nil || rep.Percent != 0 || rep.BakeLeft != 0 || rep.Tally.Canaries != 0 {
		t.Fatalf("report of an aborted rollout: %+v %v", rep, err)
	}
}

func containsID(ins []config.Instance, id string) bool {
	for _, in := range ins {
		if in.ID == id {
			return true
		}
	}
	return false
}
