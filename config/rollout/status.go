package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/canary"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Where an instance stands in a rollout (InstanceStatus.On).
const (
	// OnBase: the instance runs the base content (or has not reported
	// the candidate yet).
	OnBase = "base"
	// OnCandidate: the instance reports the candidate applied, or, once
	// the rollout is promoted, runs the promotion release or a later one.
	OnCandidate = "candidate"
	// OnRejected: the instance reports that it rejected the candidate.
	OnRejected = "rejected"
)

// Report is where a rollout stands, read at one etcd revision: the
// record, every instance record with its place in the rollout, and a
// tally. It encodes to JSON as `strata rollout status -o json` prints it.
type Report struct {
	// Rollout is the record, with the values of the changes at secret
	// paths of the published schema masked (Masked).
	Rollout *Rollout `json:"rollout"`
	// Percent is the current step's percentage, 0 when the rollout is
	// not active.
	Percent int `json:"percent"`
	// BakeLeft is how much of the current step's bake time is left (see
	// BakeLeft).
	BakeLeft Duration `json:"bake_left"`
	// Time and Revision are when, and at which etcd revision, the report
	// was read.
	Time     time.Time `json:"time"`
	Revision int64     `json:"revision"`
	// Instances are the instance records, sorted by id.
	Instances []InstanceStatus `json:"instances"`
	Tally     Tally            `json:"tally"`
}

// InstanceStatus is one instance record and its place in the rollout.
type InstanceStatus struct {
	config.Instance
	// Canary is true for an instance that is a canary at the current
	// step (its labels match and its bucket falls under the step's
	// percentage).
	Canary bool `json:"canary"`
	// On is OnBase, OnCandidate or OnRejected.
	On string `json:"on"`
}

// Tally counts the instances of a Report.
type Tally struct {
	// Instances counts every instance record; Matching those whose labels
	// match the selector; Canaries those that are canaries at the current
	// step.
	Instances int `json:"instances"`
	Matching  int `json:"matching"`
	Canaries  int `json:"canaries"`
	// OnBase, OnCandidate and Rejected split Instances by InstanceStatus.On.
	OnBase      int `json:"on_base"`
	OnCandidate int `json:"on_candidate"`
	Rejected    int `json:"rejected"`
	// Pending counts the canaries still on the base (they have not
	// reported the candidate yet); they are among OnBase.
	Pending int `json:"pending"`
	// Degraded counts the instances whose record says their health is
	// degraded.
	Degraded int `json:"degraded"`
	// Rejections name the instances that rejected the candidate, with
	// their errors (secret values masked by the instances).
	Rejections []Rejection `json:"rejections,omitempty"`
}

// Rejection is one instance's rejection of the candidate.
type Rejection struct {
	Instance string `json:"instance"`
	Error    string `json:"error"`
}

// Status reports the rollout of prefix (running or ended) and where every
// instance stands; an error wrapping ErrNoRollout when there is none.
func Status(ctx context.Context, cli *clientv3.Client, prefix string) (*Report, error) {
	l := etcdprov.NewLayout(prefix)
	if cli == nil {
		return nil, fmt.Errorf("rollout: no etcd client")
	}
	if err := etcdprov.CheckPrefix(prefix); err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	resp, err := cli.Txn(tctx).Then(clientv3.OpGet(l.Rollout()), clientv3.OpGet(l.Instances(), clientv3.WithPrefix()),
		clientv3.OpGet(l.Schema())).Commit()
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", etcdprov.Wrap("read "+l.Rollout(), cli.Endpoints(), err))
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, fmt.Errorf("rollout: %s: %w", l.Prefix(), ErrNoRollout)
	}
	r, err := canary.Decode(kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("rollout: %s: %w", l.Rollout(), err)
	}
	instances, err := decodeInstances(resp.Responses[1].GetResponseRange().Kvs)
	if err != nil {
		return nil, err
	}
	var doc []byte
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		doc = kvs[0].Value
	}
	rep := report(r, instances, time.Now().UTC(), resp.Header.Revision)
	rep.Rollout = maskedBySchema(r, doc)
	return rep, nil
}

// decodeInstances reads instance records, sorted by id, as
// config.Instances does.
func decodeInstances(kvs []*mvccpb.KeyValue) ([]config.Instance, error) {
	out := make([]config.Instance, 0, len(kvs))
	for _, kv := range kvs {
		var in config.Instance
		if err := json.Unmarshal(kv.Value, &in); err != nil {
			return nil, fmt.Errorf("rollout: instance record %s: %w", kv.Key, err)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// report places every instance in rollout r at now.
func report(r *Rollout, instances []config.Instance, now time.Time, rev int64) *Report {
	rep := &Report{Rollout: r, Percent: r.Percent(), BakeLeft: Duration(BakeLeft(r, now)), Time: now, Revision: rev,
		Instances: make([]InstanceStatus, 0, len(instances))}
	sel, _ := canary.ParseSelector(r.Selector) // Decode checked it
	t := &rep.Tally
	for _, in := range instances {
		st := InstanceStatus{Instance: in, Canary: canary.In(r, in.ID, in.Labels), On: OnBase}
		switch {
		case in.Rollout == r.ID && in.Candidate == config.CandidateRejected:
			st.On = OnRejected
			t.Rejections = append(t.Rejections, Rejection{Instance: in.ID, Error: in.CandidateError})
		case in.Rollout == r.ID && in.Candidate == config.CandidateApplied,
			r.State == Promoted && r.Release > 0 && in.AppliedVersion >= r.Release:
			st.On = OnCandidate
		}
		t.Instances++
		if in.ID != "" && sel.Matches(in.Labels) {
			t.Matching++
		}
		if st.Canary {
			t.Canaries++
		}
		if in.Health == healthDegraded {
			t.Degraded++
		}
		switch st.On {
		case OnBase:
			t.OnBase++
			if st.Canary {
				t.Pending++
			}
		case OnCandidate:
			t.OnCandidate++
		case OnRejected:
			t.Rejected++
		}
		rep.Instances = append(rep.Instances, st)
	}
	return rep
}
