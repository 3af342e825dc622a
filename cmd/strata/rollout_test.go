package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/etcdtest"
)

// TestRolloutStatusJSON: rollout status -o json reports every instance
// record exactly as it is stored, places each instance as its record says
// (canaries on the candidate, the others on the base), tallies them, and
// masks the change's values at secret paths and at keys the schema does
// not know.
func TestRolloutStatusJSON(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	cli := c.Client(t)
	const prefix = "/strata/json"
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", prefix}
	cmd := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", append(append([]string{}, flags...), args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
		return out
	}
	cmd("schema", "publish", "-f", writeFile(t, "app.schema.json", `{"type": "object", "properties": {
		"name": {"type": "string"}, "port": {"type": "integer"},
		"db": {"type": "object", "properties": {"password": {"type": "string", "x-secret": true}}}}}`))
	cmd("push", "-f", writeFile(t, "v1.yaml", "port: 8080\nname: before\ndb:\n  password: hunter2\n"), "--author", "alice")

	ctx := context.Background()
	zones := []string{"eu-1", "eu-1", "eu-1", "eu-1", "eu-1", "us-1", "us-1", "us-1"}
	for i, zone := range zones {
		cfg, err := config.Load[scriptApp](ctx, config.WithEtcd(cli, prefix),
			config.WithInstance(fmt.Sprintf("inst-%d", i), map[string]string{"zone": zone}, 0),
			config.WithUnknownKeys(config.UnknownIgnore))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cfg.Close() })
	}
	waitFor(t, "every instance record", func() bool {
		list, err := config.Instances(ctx, cli, prefix)
		return err == nil && len(list) == len(zones)
	})

	cmd("rollout", "start", "--set", "name=after", "--set", "db.password=correct-horse", "--set", "nmae=typo-value",
		"--steps", "50,100", "--bake", "1h", "--selector", "zone=eu-1")
	// A schema that closes the root, put around the writer (which refuses
	// writes during the rollout): nmae is now unknown, maybe a mistyped
	// secret.
	if _, err := cli.Put(ctx, prefix+"/meta/schema", `{"type": "object", "additionalProperties": false, "properties": {
		"name": {"type": "string"}, "port": {"type": "integer"},
		"db": {"type": "object", "properties": {"password": {"type": "string", "x-secret": true}}}}}`); err != nil {
		t.Fatal(err)
	}
	r, err := rollout.Get(ctx, cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	list, err := config.Instances(ctx, cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	canaries := map[string]bool{}
	for _, in := range rollout.Members(r, list, 0) {
		canaries[in.ID] = true
	}
	t.Logf("rollout %s: canaries %v", r.ID, canaries)

	var rep rollout.Report
	var out string
	waitFor(t, "every canary on the candidate, and records that match the report", func() bool {
		out = cmd("rollout", "status", "-o", "json")
		rep = rollout.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, out)
		}
		if rep.Tally.OnCandidate != len(canaries) {
			return false
		}
		list, err := config.Instances(ctx, cli, prefix)
		if err != nil || len(list) != len(rep.Instances) {
			return false
		}
		for i, in := range list {
			if !reflect.DeepEqual(in, rep.Instances[i].Instance) {
				t.Logf("%s: record %+v, report %+v", in.ID, in, rep.Instances[i].Instance)
				return false // a record written between the two reads
			}
		}
		return true
	})
	if rep.Rollout == nil || rep.Rollout.ID != r.ID || rep.Rollout.State != rollout.Running || rep.Percent != 50 {
		t.Fatalf("report's rollout: %+v (percent %d)", rep.Rollout, rep.Percent)
	}
	values := map[string]string{}
	for _, c := range rep.Rollout.Changes {
		values[c.Key] = c.Value
	}
	if values["name"] != "after" || values["db/password"] != config.Mask || values["nmae"] != config.Mask ||
		strings.Contains(out, "correct-horse") || strings.Contains(out, "typo-value") {
		t.Errorf("status -o json: want the value of name, the secret and the unknown key masked; changes %v\n%s", values, out)
	}
	matching := 0
	for _, st := range rep.Instances {
		want := rollout.OnBase
		if canaries[st.ID] {
			want = rollout.OnCandidate
		}
		if st.Canary != canaries[st.ID] || st.On != want {
			t.Errorf("%s: canary %v on %s, want canary %v on %s", st.ID, st.Canary, st.On, canaries[st.ID], want)
		}
		if st.Canary && (st.Rollout != r.ID || st.Candidate != config.CandidateApplied) {
			t.Errorf("%s: a canary whose record says rollout %q candidate %q", st.ID, st.Rollout, st.Candidate)
		}
		if st.Labels["zone"] == "eu-1" {
			matching++
		}
	}
	if tl := rep.Tally; tl.Instances != len(zones) || tl.Matching != matching || tl.Canaries != len(canaries) ||
		tl.OnBase != len(zones)-len(canaries) || tl.Rejected != 0 || tl.Pending != 0 {
		t.Errorf("tally %+v: want %d instances, %d matching, %d canaries", tl, len(zones), matching, len(canaries))
	}
}

// TestRolloutStatusWatchInterrupted: status --watch prints the status
// once, then again when the rollout changes, and an interrupt ends it
// with exit code 0 while the rollout is still running.
func TestRolloutStatusWatchInterrupted(t *testing.T) {
	t.Parallel()
	c := etcdtest.New(t)
	flags := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "--prefix", "/strata/watch"}
	if code, _, errOut := runCLI(t, "", append(flags, "set", "port", "8080")...); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCLI(t, "", append(flags, "rollout", "start", "--set", "port=9090", "--bake", "1h")...); code != 0 {
		t.Fatal(errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append(flags, "rollout", "status", "--watch"), strings.NewReader(""), stdout, stderr)
	}()
	waitOutput(t, "status --watch", stdout, "running, step 1 of 3 (5%)")
	if code, _, errOut := runCLI(t, "", append(flags, "rollout", "pause")...); code != 0 {
		t.Fatal(errOut)
	}
	waitOutput(t, "status --watch", stdout, "paused at step 1 of 3 (5%)")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("status --watch interrupted: exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("status --watch did not end within 20s of the interrupt")
	}
	if n := strings.Count(stdout.String(), "\nrollout ro-"); n != 1 {
		t.Errorf("want 2 statuses separated by a blank line, got:\n%s", stdout.String())
	}
}

// waitFor polls cond every 50 ms for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
