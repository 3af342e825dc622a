package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Pause stops rollout id: the controller neither advances nor promotes it,
// canaries keep the candidate, and the bake clock stops (Baked keeps what
// the step has run; Reason says who paused it). Only a running rollout can
// be paused. It returns the record as written.
func Pause(ctx context.Context, cli *clientv3.Client, prefix, id, by string) (*Rollout, error) {
	return update(ctx, cli, etcdprov.NewLayout(prefix), id, "pause", nil, func(r *Rollout, now time.Time) error {
		if r.State != Running {
			return stateError("pause", r)
		}
		r.Baked = Duration(max(elapsed(r, now), 0))
		r.State, r.Reason = Paused, "paused"
		if by != "" {
			r.Reason += " by " + by
		}
		return nil
	})
}

// Resume restarts paused rollout id at the step it was paused in. Its bake
// clock goes on from where it stopped: StepStarted is set to now less what
// the step had run, and Baked to zero, so that a running step has always
// run now - StepStarted. It returns the record as written.
func Resume(ctx context.Context, cli *clientv3.Client, prefix, id string) (*Rollout, error) {
	return update(ctx, cli, etcdprov.NewLayout(prefix), id, "resume", nil, func(r *Rollout, now time.Time) error {
		if r.State != Paused {
			return stateError("resume", r)
		}
		r.StepStarted = now.Add(-time.Duration(r.Baked))
		r.Baked, r.State, r.Reason = 0, Running, ""
		return nil
	})
}

// Abort ends rollout id, running or paused, with reason: canaries revert to
// the base content, nothing is written under P/data, and plain writes are
// allowed again. A promoted or aborted rollout cannot be aborted. It
// returns the record as written.
func Abort(ctx context.Context, cli *clientv3.Client, prefix, id, reason string) (*Rollout, error) {
	return update(ctx, cli, etcdprov.NewLayout(prefix), id, "abort", nil, abortFn(reason))
}

// abortFn returns the change of a record that aborts it with reason.
func abortFn(reason string) func(*Rollout, time.Time) error {
	if reason == "" {
		reason = "aborted by an operator"
	}
	return func(r *Rollout, now time.Time) error {
		if !r.State.Active() {
			return stateError("abort", r)
		}
		if r.State == Running {
			r.Baked = Duration(max(elapsed(r, now), 0))
		}
		r.State, r.Reason = Aborted, reason
		return nil
	}
}

// Promote makes rollout id's candidate a release: one normal writer
// release that applies the rollout's changes to the current content,
// expects the base version (config.ExpectVersion), and records the rollout
// as promoted in the same transaction (config.CompletesRollout). The
// release's author is the rollout's and its message "rollout <id>:
// <message>"; an Author or Message in opts replaces them (config.DryRun
// checks only). A running or paused rollout can be promoted, once. When a
// release was written after the base (by a writer that does not know
// rollouts), the rollout is aborted with that reason and the
// *config.ConflictError is returned.
func Promote(ctx context.Context, cli *clientv3.Client, prefix, id string, opts ...config.WriteOption) (*config.Release, error) {
	return promote(ctx, cli, prefix, id, nil, nil, nil, opts)
}

// PromoteWith is Promote through a writer made with wopts: with
// config.WithWriterKeyring, the candidate's sealed values are opened,
// validated in clear and sealed again, as any write of that writer.
func PromoteWith(ctx context.Context, cli *clientv3.Client, prefix, id string, wopts []config.RawWriterOption, opts ...config.WriteOption) (*config.Release, error) {
	return promote(ctx, cli, prefix, id, nil, nil, wopts, opts)
}

// promote is Promote, for the controller also under its leadership (lead)
// and a check of the record it is about to promote.
func promote(ctx context.Context, cli *clientv3.Client, prefix, id string, lead *leadership, check func(*Rollout) error, wopts []config.RawWriterOption, opts []config.WriteOption) (*config.Release, error) {
	l := etcdprov.NewLayout(prefix)
	w, err := config.NewRawWriter(cli, prefix, wopts...)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	defer w.Close()
	for attempt := 1; ; attempt++ {
		r, _, err := read(ctx, cli, l)
		if err != nil {
			return nil, err
		}
		if r.ID != id {
			return nil, notCurrent("promote", id, r)
		}
		if !r.State.Active() {
			return nil, stateError("promote", r)
		}
		if check != nil {
			if err := check(r); err != nil {
				return nil, err
			}
		}
		if lead != nil {
			if err := lead.holds(ctx, cli); err != nil {
				return nil, err
			}
		}
		msg := "rollout " + id
		if r.Message != "" {
			msg += ": " + r.Message
		}
		wopts := append([]config.WriteOption{config.Author(r.Author), config.Message(msg)}, opts...)
		wopts = append(wopts, config.ExpectVersion(r.Base), config.CompletesRollout(id))
		rel, err := w.Modify(ctx, func(c config.Content) error {
			for _, ch := range r.Changes {
				if ch.Deleted {
					delete(c, ch.Key)
				} else {
					c[ch.Key] = ch.Value
				}
			}
			return nil
		}, wopts...)
		if err == nil {
			return rel, nil
		}
		var ce *config.ConflictError
		if !errors.As(err, &ce) {
			return nil, fmt.Errorf("rollout: promote %s: %w", id, err)
		}
		if ce.Current != r.Base {
			reason := fmt.Sprintf("promotion refused: release %d was written after the base version %d", ce.Current, r.Base)
			if _, aerr := update(ctx, cli, l, id, "abort", lead, abortFn(reason)); aerr != nil && !errors.Is(aerr, ErrState) {
				return nil, fmt.Errorf("rollout: promote %s: %w (aborting the rollout failed too: %v)", id, err, aerr)
			}
			return nil, fmt.Errorf("rollout: promote %s: %w; the rollout is aborted", id, err)
		}
		// The version did not move: the commit lost a race to a write of
		// the record (the controller's) or around the writer. Again.
		if attempt >= maxAttempts {
			return nil, fmt.Errorf("rollout: promote %s: %w", id, err)
		}
	}
}

// update reads rollout id, changes it with fn and writes it back by
// compare-and-swap on its mod revision (and, for the controller, its
// leadership), re-running fn when the record changed in between. fn
// refuses a state it does not apply to.
func update(ctx context.Context, cli *clientv3.Client, l etcdprov.Layout, id, op string, lead *leadership, fn func(r *Rollout, now time.Time) error) (*Rollout, error) {
	for attempt := 1; ; attempt++ {
		r, rev, err := read(ctx, cli, l)
		if err != nil {
			return nil, err
		}
		if r.ID != id {
			return nil, notCurrent(op, id, r)
		}
		now := time.Now().UTC()
		if err := fn(r, now); err != nil {
			return nil, err
		}
		r.Updated = now
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(l.Rollout()), "=", rev)}
		var orElse []clientv3.Op
		if lead != nil {
			cmps = append(cmps, lead.cmp())
			orElse = append(orElse, clientv3.OpGet(lead.key))
		}
		tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
		resp, err := cli.Txn(tctx).If(cmps...).Then(clientv3.OpPut(l.Rollout(), r.Encode())).Else(orElse...).Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("rollout: %s %s: %w", op, id, etcdprov.Wrap("write "+l.Rollout(), cli.Endpoints(), err))
		}
		if resp.Succeeded {
			return r, nil
		}
		if lead != nil && !lead.matches(resp.Responses[0].GetResponseRange().Kvs) {
			return nil, errNotLeader
		}
		if attempt >= maxAttempts {
			return nil, fmt.Errorf("rollout: %s %s: the record kept changing: %w", op, id, config.ErrConflict)
		}
	}
}

// notCurrent is the error of an operation on rollout id when the prefix's
// rollout is r.
func notCurrent(op, id string, r *Rollout) error {
	return fmt.Errorf("rollout: cannot %s %s: %w: the prefix's rollout is %s (%s)", op, id, ErrNoRollout, r.ID, r.State)
}

// stateError is the error of an operation r's state does not allow.
func stateError(op string, r *Rollout) error {
	why := fmt.Sprintf("rollout %s is %s", r.ID, r.State)
	switch {
	case r.State == Promoted:
		why += fmt.Sprintf(" (release %d)", r.Release)
	case r.Reason != "":
		why += " (" + r.Reason + ")"
	}
	return fmt.Errorf("rollout: cannot %s %s: %s: %w", op, r.ID, why, ErrState)
}

// errNotLeader is returned by a controller's write that found its
// election key gone or replaced: another controller may be acting.
var errNotLeader = errors.New("rollout controller: no longer the leader")

// leadership is a controller's hold on the election: its key and the
// key's create revision. Every record write of the controller compares
// both.
type leadership struct {
	key string
	rev int64
}

// cmp is the guard a controller adds to its writes.
func (l *leadership) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
}

// matches reports whether kvs (a read of the election key) show the hold.
func (l *leadership) matches(kvs []*mvccpb.KeyValue) bool {
	return len(kvs) == 1 && kvs[0].CreateRevision == l.rev
}

// holds returns errNotLeader unless the election key is still the
// controller's.
func (l *leadership) holds(ctx context.Context, cli *clientv3.Client) error {
	tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	resp, err := cli.Get(tctx, l.key)
	if err != nil {
		return fmt.Errorf("rollout controller: %w", etcdprov.Wrap("read "+l.key, cli.Endpoints(), err))
	}
	if !l.matches(resp.Kvs) {
		return errNotLeader
	}
	return nil
}
