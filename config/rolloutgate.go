package config

import (
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/canary"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// rolloutGate decides whether a write may proceed past the rollout record
// st read: always when no rollout holds the prefix; the promotion of the
// rollout that holds it (CompletesRollout); or a forced write, which aborts
// it. The op it returns records the outcome in the write's transaction,
// whose guards include the record's mod revision.
func rolloutGate(st *state, wo writeOptions) (func(etcdprov.Layout, *Release) clientv3.Op, error) {
	r := st.rollout
	if wo.completes != "" && (r == nil || r.ID != wo.completes || !r.State.Active()) {
		why := "no rollout holds the prefix"
		if r != nil && r.ID == wo.completes {
			why = fmt.Sprintf("rollout %s is %s", r.ID, r.State)
		} else if r != nil {
			why = fmt.Sprintf("the prefix's rollout is %s (%s)", r.ID, r.State)
		}
		return nil, fmt.Errorf("config: cannot promote rollout %s: %s", wo.completes, why)
	}
	if r == nil || !r.State.Active() || (wo.schema != nil && wo.completes == "" && !wo.force) {
		// Publishing a schema changes no data: an application that starts
		// during a rollout publishes its own.
		return nil, nil
	}
	switch {
	case wo.completes == r.ID:
		return func(l etcdprov.Layout, rel *Release) clientv3.Op {
			next := *r
			next.State, next.Release, next.Updated = canary.Promoted, rel.Version, rel.Time
			return clientv3.OpPut(l.Rollout(), next.Encode())
		}, nil
	case wo.force:
		return func(l etcdprov.Layout, rel *Release) clientv3.Op {
			next := *r
			next.State, next.Updated = canary.Aborted, time.Now().UTC()
			next.Reason = fmt.Sprintf("aborted by a forced write: release %d", rel.Version)
			if rel.Author != "" {
				next.Reason += " by " + rel.Author
			}
			return clientv3.OpPut(l.Rollout(), next.Encode())
		}, nil
	}
	return nil, &RolloutActiveError{ID: r.ID, State: string(r.State)}
}
