package config

import (
	"context"
	"fmt"
	"maps"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/canary"
	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// This file is the canary side of a rollout (package config/rollout): a
// Config with an instance id follows the rollout record at P/meta/rollout
// and decides for itself whether it is a canary (canary.In). A canary's
// etcd layer carries the rollout's candidate, the record's key changes
// laid over what etcd holds, judged like any other change: applied in one
// change, or rejected with the last good snapshot kept. When it stops
// being a canary (abort) the overlay goes, in one change back to the base
// content. On promotion the overlay stays until the etcd layer has reached
// the promotion's revision, so that a canary never flips back to the base
// while the promotion is on its way.

// rolloutSeen is the rollout record as the record's watcher saw it.
type rolloutSeen struct {
	rec *canary.Record // nil: no record
	rev int64          // the record's mod revision; 0 without one
	err error          // the record does not decode
}

// canaryState is what the reload loop knows of the rollout; owned by the
// reload loop.
type canaryState struct {
	rec     *canary.Record // the newest record seen; nil if none
	rev     int64          // its mod revision
	overlay *canary.Record // the rollout whose candidate the etcd layer carries; nil if none
}

// instanceID returns the id of the instance record: o.id, or
// "<host>-<pid>".
func instanceID(o *instanceOptions, host string, pid int) string {
	if o.id != "" {
		return o.id
	}
	return fmt.Sprintf("%s-%d", host, pid)
}

// watchRollout follows the rollout record and hands every version of it to
// the reload loop, from a read and then a watch, read again after the watch
// ends (compaction, a lost leader).
func (c *Config[T]) watchRollout(ctx context.Context) {
	cli, key := c.opts.etcd, c.etcd.Layout().Rollout()
	backoff := etcdprov.NewBackoff(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			if !backoff.Sleep(ctx) {
				return
			}
			continue
		}
		var seen rolloutSeen
		if len(resp.Kvs) > 0 {
			seen = decodeRollout(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
		}
		c.send(ctx, update{layer: c.etcdIdx, rollout: &seen, received: time.Now()})
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil || wr.Canceled {
				break
			}
			if n := len(wr.Events); n > 0 {
				ev := wr.Events[n-1]
				seen := rolloutSeen{}
				if ev.Type == clientv3.EventTypePut {
					seen = decodeRollout(ev.Kv.Value, ev.Kv.ModRevision)
				}
				c.send(ctx, update{layer: c.etcdIdx, rollout: &seen, received: time.Now()})
				backoff.Reset()
			}
		}
		cancel()
		if !backoff.Sleep(ctx) {
			return
		}
	}
}

// joinRollout reads the rollout record while Load still owns the layers,
// so that an instance that starts during a rollout it is a canary of
// starts on the candidate. A record that cannot be read now is left to the
// record's watcher.
func (c *Config[T]) joinRollout(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	resp, err := c.opts.etcd.Get(ctx, c.etcd.Layout().Rollout())
	if err != nil || len(resp.Kvs) == 0 {
		return
	}
	seen := decodeRollout(resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	if seen.err == nil && canary.In(seen.rec, c.instanceID, c.opts.instance.labels) {
		c.apply(update{layer: c.etcdIdx, rollout: &seen, received: time.Now()})
	}
}

func decodeRollout(b []byte, rev int64) rolloutSeen {
	rec, err := canary.Decode(b)
	return rolloutSeen{rec: rec, rev: rev, err: err}
}

// applyRollout takes a new version of the rollout record: a Config that
// becomes or stops being a canary rebuilds its etcd layer.
func (c *Config[T]) applyRollout(u update) {
	if u.rollout.err != nil {
		c.report(fmt.Errorf("%w: rollout record %s: %w", ErrSource, c.etcd.Layout().Rollout(), u.rollout.err))
		return
	}
	c.canary.rec, c.canary.rev = u.rollout.rec, u.rollout.rev
	want := c.wantOverlay(c.layers[c.etcdIdx].content.Revision)
	if sameRollout(want, c.canary.overlay) {
		c.canaryStatus(nil)
		return
	}
	c.canary.overlay = want
	c.layers = append([]layer(nil), c.layers...)
	l := &c.layers[c.etcdIdx]
	content, err := c.etcdContent(l.content.Revision)
	if err == nil {
		l.setContent(content)
		c.rebuild(u)
		return
	}
	c.canaryStatus(err)
	c.report(err)
}

// wantOverlay returns the rollout whose candidate the etcd layer must
// carry, with the etcd layer at revision dataRev.
func (c *Config[T]) wantOverlay(dataRev int64) *canary.Record {
	r, in := c.canary.rec, false
	if r != nil {
		in = canary.In(r, c.instanceID, c.opts.instance.labels)
	}
	switch {
	case in:
		return r
	case r != nil && r.State == canary.Promoted && c.canary.overlay != nil && c.canary.overlay.ID == r.ID && dataRev < c.canary.rev:
		return c.canary.overlay // until the promotion's data arrives
	}
	return nil
}

func sameRollout(a, b *canary.Record) bool {
	return (a == nil) == (b == nil) && (a == nil || a.ID == b.ID)
}

// etcdContent returns the etcd layer's content at rev: what etcd holds
// (c.etcdRaw, built again when dropped), with the candidate of the rollout this Config is a canary
// of laid over it.
func (c *Config[T]) etcdContent(rev int64) (*providers.Content, error) {
	l := c.etcd.Layout()
	if c.etcdRaw == nil {
		c.etcdRaw = c.etcdKVs() // kept: the tree is about to stand for something else
	}
	kvs := c.etcdRaw
	if ov := c.canary.overlay; ov != nil {
		kvs = maps.Clone(c.etcdRaw)
		for _, ch := range ov.Changes {
			if ch.Deleted {
				delete(kvs, l.DataKey(ch.Key))
			} else {
				kvs[l.DataKey(ch.Key)] = []byte(ch.Value)
			}
		}
	}
	ct, err := (&etcdprov.Data{Revision: rev, KVs: kvs}).Content(l)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err) // a document that does not parse
	}
	ct.Raw = nil // c.etcdRaw is the loop's own
	ct = c.b.canonical(ct, nil)
	if err := c.openContent(c.loopCtx(), ct, nil); err != nil {
		return nil, err
	}
	return ct, nil
}

// canaryStatus records this instance's part in the rollout for its
// instance record: the rollout and step it is a canary of, and whether the
// candidate is applied (err nil) or rejected.
func (c *Config[T]) canaryStatus(err error) {
	cur := c.curStatus()
	if cur == nil {
		return
	}
	next := *cur
	if ov := c.canary.overlay; ov != nil && ov.State.Active() {
		r := c.canary.rec
		next.rollout, next.rolloutStep = r.ID, r.Step
		switch {
		case err != nil:
			next.candidate, next.candidateErr = CandidateRejected, err.Error()
		case c.inSync:
			next.candidate, next.candidateErr = CandidateApplied, ""
		}
	} else {
		next.rollout, next.rolloutStep, next.candidate, next.candidateErr = "", 0, "", ""
	}
	if next != *cur {
		*cur = next
		c.offer(next)
	}
}
