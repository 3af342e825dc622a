package canary

import (
	"fmt"
	"testing"
	"time"
)

func TestSelector(t *testing.T) {
	sel, err := ParseSelector(" zone=eu-1, tier!=batch ,app==web")
	if err != nil {
		t.Fatal(err)
	}
	if got := sel.String(); got != "zone=eu-1,tier!=batch,app=web" {
		t.Fatalf("String = %q", got)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"zone": "eu-1", "app": "web"}, true},
		{map[string]string{"zone": "eu-1", "app": "web", "tier": "front"}, true},
		{map[string]string{"zone": "eu-1", "app": "web", "tier": "batch"}, false},
		{map[string]string{"zone": "us-1", "app": "web"}, false},
		{map[string]string{"app": "web"}, false},
		{nil, false},
	} {
		if got := sel.Matches(tc.labels); got != tc.want {
			t.Errorf("Matches(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if s, err := ParseSelector(""); err != nil || !s.Matches(nil) {
		t.Fatal("the empty selector must match everything")
	}
	for _, bad := range []string{"zone", "=x", "a=b,", "a=b=c", "a!=b!=c"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}

func TestStepsAndRecord(t *testing.T) {
	for _, bad := range [][]int{nil, {0, 100}, {50, 25, 100}, {25, 25, 100}, {5, 50}, {101}} {
		if CheckSteps(bad) == nil {
			t.Errorf("CheckSteps(%v) accepted", bad)
		}
	}
	r := &Record{ID: "r1", Base: 3, Steps: []int{5, 25, 100}, Bake: Duration(90 * time.Second), State: Running, Step: 1,
		Changes: []Change{{Key: "db/port", Value: "5433"}, {Key: "old", Deleted: true}}}
	got, err := Decode([]byte(r.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Encode() != r.Encode() || got.Percent() != 25 || time.Duration(got.Bake) != 90*time.Second {
		t.Fatalf("round trip: %s", got.Encode())
	}
	for _, bad := range []string{`{`, `{"steps":[100]}`, `{"id":"x","steps":[50]}`, `{"id":"x","steps":[100],"selector":"zone"}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

// TestMembership: canaries are spread evenly, only grow from step to step,
// and differ between rollouts; nobody is a canary of an ended rollout or
// without an id or outside the selector.
func TestMembership(t *testing.T) {
	r := &Record{ID: "r1", Steps: []int{5, 25, 50, 100}, State: Running, Selector: "zone=eu-1"}
	eu := map[string]string{"zone": "eu-1"}
	const n = 10000
	prev := map[string]bool{}
	for step, pct := range r.Steps {
		r.Step = step
		count := 0
		for i := range n {
			id := fmt.Sprintf("inst-%d", i)
			in := In(r, id, eu)
			if prev[id] && !in {
				t.Fatalf("%s left the canaries at step %d", id, step)
			}
			if in {
				prev[id] = true
				count++
			}
		}
		if lo, hi := n*pct/100-n*2/100, n*pct/100+n*2/100; count < lo || count > hi {
			t.Errorf("step %d%%: %d of %d canaries", pct, count, n)
		}
	}
	other := &Record{ID: "r2", Steps: []int{25, 100}, State: Running}
	same := 0
	r.Step = 1
	for i := range n {
		id := fmt.Sprintf("inst-%d", i)
		if In(r, id, eu) && In(other, id, eu) {
			same++
		}
	}
	if same > n*25/100*25/100*2 { // about 6% if independent
		t.Errorf("%d instances are canaries of both rollouts", same)
	}
	if In(r, "", eu) || In(r, "inst-1", map[string]string{"zone": "us-1"}) {
		t.Error("an instance without id or outside the selector is a canary")
	}
	r.Step = 3
	for _, s := range []State{Promoted, Aborted} {
		r.State = s
		if In(r, "inst-1", eu) {
			t.Errorf("a canary of a %s rollout", s)
		}
	}
	r.State = Paused
	if !In(r, "inst-1", eu) {
		t.Error("a paused rollout at 100% lost a canary")
	}
}
