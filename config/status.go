package config

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// status is what the reload loop tells the status goroutine after each
// applied or rejected candidate. Only the latest one matters.
type status struct {
	data         *etcdprov.Data // etcd content in force; nil without etcd
	fromSnapshot bool           // data came from the snapshot file
	rejectedRev  int64
	rejectedErr  string
	// This instance as a canary (Instance.Rollout and the fields after).
	rollout      string
	rolloutStep  int
	candidate    string
	candidateErr string
}

// offer hands s to the status goroutine, replacing an untaken older one,
// once the status goroutine runs or is about to (statusOn); until then
// the reload loop keeps no statuses, and the status goroutine starts from
// the snapshot in force (seedStatus). Only the reload loop (or Load,
// before it starts) calls it.
func (c *Config[T]) offer(s status) {
	if !c.statusOn.Load() {
		return
	}
	c.statusBox.Store(&s)
	c.wakeStatus()
}

// wakeStatus leaves a token in statusWake, unless one is there.
func (c *Config[T]) wakeStatus() {
	select {
	case c.statusWake <- struct{}{}:
	default:
	}
}

// enableStatus makes the reload loop offer statuses from now on. The
// caller holds statusMu, or is Load before the loop starts.
func (c *Config[T]) enableStatus() {
	if c.statusOn.Load() {
		return
	}
	c.statusWake = make(chan struct{}, 1)
	c.statusOn.Store(true) // after statusWake: the loop reads it once it sees statusOn
}

// seedStatus gives the status goroutine, started after the reload loop
// let statuses go by (a first Health call), the etcd revision of the
// snapshot in force to start from, unless the loop has offered one since.
// The loop publishes a snapshot before it offers its status, so the seed
// is no older than any status it let go by.
func (c *Config[T]) seedStatus() {
	seed := &status{data: &etcdprov.Data{Revision: c.snap.Load().Revision}, fromSnapshot: c.degraded.Load()}
	if seed.fromSnapshot {
		seed.data.Version = c.etcdSrc.first.Version
	}
	if c.statusBox.CompareAndSwap(nil, seed) {
		c.wakeStatus()
	}
}

// statusLoop owns everything that follows an applied change but must not
// delay the reload loop: looking up the release version, writing the
// snapshot file, and the instance record with its lease.
func (c *Config[T]) statusLoop(ctx context.Context) {
	var reg *registration
	if c.opts.instance != nil {
		reg = newRegistration(c.opts.etcd, c.etcd.Layout(), c.opts.instance)
		defer reg.close()
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var healthTick <-chan time.Time
	if reg != nil || c.opts.healthCheck != nil {
		t := time.NewTicker(healthInterval)
		defer t.Stop()
		healthTick = t.C
	}
	health := func() bool { // reports whether the record's health changed
		h := c.checkHealth(ctx)
		if reg == nil || (reg.rec.Health == h.Status && reg.rec.HealthReason == h.Reason) {
			return false
		}
		reg.rec.Health, reg.rec.HealthReason = h.Status, h.Reason
		return true
	}
	publish := func() {
		if reg == nil {
			return
		}
		if err := reg.publish(ctx); err != nil && ctx.Err() == nil {
			c.opts.logger.Warn("config: instance record", "err", err)
			retry.Reset(time.Second)
		}
	}
	// Statuses are handled at most once per statusInterval: a burst of
	// changes costs one version lookup, one file write and one record
	// update, not one per revision.
	var pending *status
	var last time.Time
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	handle := func(s status) {
		last = time.Now()
		c.follow(ctx, s)
		if reg != nil {
			reg.rec.AppliedRevision = s.data.Revision
			reg.rec.AppliedVersion = c.version.Load()
			reg.rec.RejectedRevision, reg.rec.RejectedError = s.rejectedRev, s.rejectedErr
			reg.rec.Rollout, reg.rec.RolloutStep = s.rollout, s.rolloutStep
			reg.rec.Candidate, reg.rec.CandidateError = s.candidate, s.candidateErr
			health()
			publish()
		}
	}
	for {
		var ka <-chan *clientv3.LeaseKeepAliveResponse
		if reg != nil {
			ka = reg.ka
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ka:
			if !ok {
				if ctx.Err() != nil {
					// Close: the keepalive ended because ctx did, and
					// the lease still holds the record. The deferred
					// close revokes it.
					return
				}
				reg.lost()
				publish()
			}
		case <-retry.C:
			publish()
		case <-healthTick:
			if health() && reg.lease != 0 {
				publish()
			}
		case <-c.statusWake:
			p := c.statusBox.Swap(nil)
			if p == nil {
				continue
			}
			s := *p
			if wait := time.Until(last.Add(statusInterval)); wait > 0 {
				if pending == nil {
					due.Reset(wait)
				}
				pending = &s
				continue
			}
			handle(s)
		case <-due.C:
			if pending != nil {
				s := *pending
				pending = nil
				handle(s)
			}
		}
	}
}

// statusInterval is the least time between two rounds of status work.
const statusInterval = 100 * time.Millisecond

// follow records the version of the applied etcd content and writes the
// snapshot file. The version costs a read; it is looked up only when
// something uses it: instance records, the snapshot file, metrics, or a
// caller of Health.
func (c *Config[T]) follow(ctx context.Context, s status) {
	if s.data == nil {
		return
	}
	if c.opts.instance == nil && c.opts.snapshotFile == "" && c.opts.metrics == nil && !c.healthUsed.Load() {
		return
	}
	version := s.data.Version
	if !s.fromSnapshot {
		v, err := c.etcd.Version(ctx, s.data.Revision)
		switch {
		case ctx.Err() != nil:
			return // closing
		case err != nil:
			// The snapshot file is written anyway (an unreachable etcd
			// is when it matters most), with the version last known; a
			// later revision brings the version up to date.
			version = c.version.Load()
			c.opts.logger.Warn("config: read release version", "revision", s.data.Revision, "err", err, "assumed", version)
		default:
			version = v
			c.version.Store(version)
		}
	} else {
		c.version.Store(version)
	}
	if c.opts.snapshotFile != "" && !s.fromSnapshot {
		if err := writeSnapshotFile(c.opts.snapshotFile, c.etcd.Layout(), s.data, version); err != nil {
			c.opts.logger.Error("config: write snapshot file", "file", c.opts.snapshotFile, "err", err)
		}
	}
}
