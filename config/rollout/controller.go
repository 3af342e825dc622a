package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/canary"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Defaults of the controller's options.
const (
	// DefaultSessionTTL is the TTL, in seconds, of the controller's
	// election session: how long a standby waits at most for a leader
	// that stopped without resigning.
	DefaultSessionTTL = 10
	// DefaultPollInterval is how often the leader reads the rollout and
	// the instance records.
	DefaultPollInterval = 200 * time.Millisecond
	// DefaultVanishedLimit is how many canaries' instance records may
	// vanish during a step before the controller aborts the rollout.
	DefaultVanishedLimit = 1
)

// Option configures Run.
type Option func(*controllerOptions)

type controllerOptions struct {
	ttl      int
	poll     time.Duration
	vanished int
	check    func(context.Context, *Rollout) error
	degraded bool // abort when a canary on the candidate is degraded
	log      *slog.Logger
	name     string
	writer   []config.RawWriterOption // the promotion's writer (PromoteWith)
}

// WithWriterOptions gives the controller's promotions a writer made with
// opts, e.g. config.WithWriterKeyring so that a candidate's sealed values
// are validated in clear.
func WithWriterOptions(opts ...config.RawWriterOption) Option {
	return func(o *controllerOptions) { o.writer = append(o.writer, opts...) }
}

// WithSessionTTL sets the TTL, in seconds, of the election session
// (default DefaultSessionTTL). A standby takes over within about this long
// after the leader stops without resigning.
func WithSessionTTL(seconds int) Option {
	return func(o *controllerOptions) {
		if seconds > 0 {
			o.ttl = seconds
		}
	}
}

// WithPollInterval sets how often the leader reads the rollout and the
// instance records (default DefaultPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(o *controllerOptions) {
		if d > 0 {
			o.poll = d
		}
	}
}

// WithVanishedLimit makes the controller abort a running rollout when more
// than n of the instances it saw as canaries during the current step have
// no instance record any more (default DefaultVanishedLimit; 0 aborts at
// the first; a negative n turns the check off). A standby that takes over
// counts from the canaries it sees itself.
func WithVanishedLimit(n int) Option {
	return func(o *controllerOptions) { o.vanished = n }
}

// WithCheck registers an application check, called with a copy of the
// running rollout at every poll of the leader (with a context that ends
// after 5 s, or when leadership does). An error, or a panic, aborts the
// rollout with the error as the reason.
func WithCheck(fn func(ctx context.Context, r *Rollout) error) Option {
	return func(o *controllerOptions) { o.check = fn }
}

// WithAbortOnDegraded says whether the controller aborts a running
// rollout when a canary that applied the candidate reports its health as
// degraded in its instance record (default true).
func WithAbortOnDegraded(on bool) Option {
	return func(o *controllerOptions) { o.degraded = on }
}

// WithLogger sets the controller's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *controllerOptions) {
		if l != nil {
			o.log = l
		}
	}
}

// WithName names the controller in its election value and its logs
// (default "<host>-<pid>").
func WithName(name string) Option {
	return func(o *controllerOptions) {
		if name != "" {
			o.name = name
		}
	}
}

// Run runs the rollout controller of prefix until ctx ends. It campaigns
// in the election under P/meta/election/rollout (concurrency.Election, on
// a session with the TTL of WithSessionTTL), and while it leads it reads
// the rollout and the instance records every poll interval. A running
// rollout is aborted when an instance reports that it rejected the
// candidate, when more canaries' instance records vanished during the step
// than WithVanishedLimit allows, when a canary that applied the candidate
// reports that it is degraded (WithAbortOnDegraded), or when the WithCheck hook fails;
// otherwise, once the step's bake time has passed, it advances to the next
// step or, at the last one, is promoted (Promote). Paused and ended
// rollouts are left alone.
//
// Every record write of the leader compares its election key in the same
// transaction, so a controller that lost its session writes nothing; the
// promotion is a writer release, guarded by the record's mod revision, and
// made only after the leader checked its election key. When the session
// ends (its lease lost), the controller stops acting and campaigns again
// with a new session; a standby continues from the state stored in etcd
// (the step and when it started), so no step is run twice or skipped.
//
// When ctx ends, Run resigns, revokes its session's lease and returns nil,
// leaving no goroutine behind. It returns an error for a bad prefix or
// when cli is closed.
func Run(ctx context.Context, cli *clientv3.Client, prefix string, opts ...Option) error {
	if cli == nil {
		return errors.New("rollout controller: no etcd client")
	}
	if err := etcdprov.CheckPrefix(prefix); err != nil {
		return fmt.Errorf("rollout controller: %w", err)
	}
	host, _ := os.Hostname()
	o := controllerOptions{ttl: DefaultSessionTTL, poll: DefaultPollInterval, vanished: DefaultVanishedLimit,
		degraded: true, log: slog.Default(), name: host + "-" + strconv.Itoa(os.Getpid())}
	for _, opt := range opts {
		opt(&o)
	}
	l := etcdprov.NewLayout(prefix)
	c := &controller{controllerOptions: o, cli: cli, prefix: l.Prefix(), layout: l,
		election: strings.TrimSuffix(l.RolloutElection(), "/")}
	c.log = c.log.With("controller", c.name, "prefix", c.prefix)
	backoff := etcdprov.NewBackoff(100*time.Millisecond, 2*time.Second)
	for {
		led, err := c.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if cerr := cli.Ctx().Err(); cerr != nil {
			return fmt.Errorf("rollout controller %s: the etcd client is closed: %w", c.name, cerr)
		}
		if err != nil {
			c.log.Warn("rollout controller: campaign again", "err", err)
		}
		if led {
			backoff.Reset()
		}
		if !backoff.Sleep(ctx) {
			return nil
		}
	}
}

// controller is the state of one Run.
type controller struct {
	controllerOptions
	cli      *clientv3.Client
	prefix   string
	layout   etcdprov.Layout
	election string // the election's prefix, without the trailing slash
	track    tracker
}

// tracker is what the controller saw during one step of one rollout.
type tracker struct {
	id   string
	step int
	seen map[string]bool // instances seen as canaries during the step
}

// healthDegraded is the Health of a degraded instance (config.Health).
const healthDegraded = "degraded"

// errStale marks a decision made on a record that changed before it was
// carried out: the next poll decides again.
var errStale = errors.New("the rollout changed")

// term runs one session: it campaigns, then leads until the session ends,
// leadership is lost or ctx ends. led reports whether it became leader.
func (c *controller) term(ctx context.Context) (led bool, err error) {
	s, err := concurrency.NewSession(c.cli, concurrency.WithTTL(c.ttl), concurrency.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("rollout controller: session: %w", etcdprov.Wrap("grant lease", c.cli.Endpoints(), err))
	}
	defer c.closeSession(ctx, s)
	e := concurrency.NewElection(s, c.election)
	if err := e.Campaign(s.Ctx(), c.name); err != nil {
		return false, fmt.Errorf("rollout controller: campaign: %w", err)
	}
	c.log.Info("rollout controller: leading", "key", e.Key())
	err = c.lead(s, &leadership{key: e.Key(), rev: e.Rev()})
	if ctx.Err() != nil {
		// Stopping: hand over at once rather than after the TTL.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = e.Resign(rctx)
		cancel()
		c.log.Info("rollout controller: resigned")
	} else {
		c.log.Warn("rollout controller: no longer leading", "err", err)
	}
	return true, err
}

// closeSession ends the session's keepalive and revokes its lease, which
// deletes its election key; a lease that cannot be revoked expires.
func (c *controller) closeSession(ctx context.Context, s *concurrency.Session) {
	s.Orphan()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_, _ = c.cli.Revoke(rctx, s.Lease())
}

// lead acts on the rollout every poll interval while the session lives.
func (c *controller) lead(s *concurrency.Session, lead *leadership) error {
	ctx := s.Ctx() // ends with the caller's context and when the lease is lost
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		if err := c.tick(ctx, lead); err != nil {
			if errors.Is(err, errNotLeader) {
				return err
			}
			if ctx.Err() == nil {
				c.log.Warn("rollout controller: poll", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rollout controller: session ended: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// tick reads the rollout and the instance records once and acts.
func (c *controller) tick(ctx context.Context, lead *leadership) error {
	// The instance records are read only while a rollout runs: a fleet's
	// records are not read every poll interval when there is nothing to do.
	tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	resp, err := c.cli.Get(tctx, c.layout.Rollout())
	cancel()
	if err != nil {
		return etcdprov.Wrap("read "+c.layout.Rollout(), c.cli.Endpoints(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	r, err := canary.Decode(resp.Kvs[0].Value)
	if err != nil {
		return fmt.Errorf("%s: %w", c.layout.Rollout(), err)
	}
	if r.State != Running {
		return nil
	}
	tctx, cancel = context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	ins, err := c.cli.Get(tctx, c.layout.Instances(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision))
	cancel()
	if err != nil {
		return etcdprov.Wrap("read "+c.layout.Instances(), c.cli.Endpoints(), err)
	}
	instances, err := decodeInstances(ins.Kvs)
	if err != nil {
		return err
	}
	if c.track.id != r.ID || c.track.step != r.Step || c.track.seen == nil {
		c.track = tracker{id: r.ID, step: r.Step, seen: map[string]bool{}}
	}
	present := make(map[string]bool, len(instances))
	for _, in := range instances {
		present[in.ID] = true
		if canary.In(r, in.ID, in.Labels) {
			c.track.seen[in.ID] = true
		}
	}

	for _, in := range instances {
		if in.Rollout == r.ID && in.Candidate == config.CandidateRejected {
			return c.abort(ctx, lead, r, fmt.Sprintf("instance %s rejected the candidate: %s", in.ID, in.CandidateError))
		}
		if c.degraded && in.Rollout == r.ID && in.Candidate == config.CandidateApplied && in.Health == healthDegraded {
			return c.abort(ctx, lead, r, fmt.Sprintf("instance %s is degraded on the candidate: %s", in.ID, in.HealthReason))
		}
	}
	if c.vanished >= 0 {
		var gone []string
		for id := range c.track.seen {
			if !present[id] {
				gone = append(gone, id)
			}
		}
		if len(gone) > c.vanished {
			sort.Strings(gone)
			return c.abort(ctx, lead, r, fmt.Sprintf("the instance records of %d canaries vanished during step %d (%d%%): %s (the limit is %d)",
				len(gone), r.Step, r.Percent(), strings.Join(gone, ", "), c.vanished))
		}
	}
	if c.check != nil {
		if err := c.runCheck(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the session ended, not the check
			}
			return c.abort(ctx, lead, r, "check failed: "+err.Error())
		}
	}

	if BakeLeft(r, time.Now()) > 0 {
		return nil
	}
	if r.Step < len(r.Steps)-1 {
		return c.advance(ctx, lead, r)
	}
	return c.promote(ctx, lead, r)
}

// runCheck calls the application check with a copy of r, turning a panic
// into an error.
func (c *controller) runCheck(ctx context.Context, r *Rollout) (err error) {
	cctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the check panicked: %v", p)
		}
	}()
	cp := *r
	cp.Changes, cp.Steps = slices.Clone(r.Changes), slices.Clone(r.Steps)
	return c.check(cctx, &cp)
}

// abort aborts rollout r with reason, unless it ended meanwhile.
func (c *controller) abort(ctx context.Context, lead *leadership, r *Rollout, reason string) error {
	_, err := update(ctx, c.cli, c.layout, r.ID, "abort", lead, abortFn(reason))
	switch {
	case errors.Is(err, ErrState), errors.Is(err, ErrNoRollout):
		return nil // ended or replaced meanwhile
	case err != nil:
		return err
	}
	c.log.Warn("rollout controller: rollout aborted", "rollout", r.ID, "step", r.Step, "reason", reason)
	return nil
}

// advance moves rollout r from its step to the next, if it is still
// running at that step with its bake over.
func (c *controller) advance(ctx context.Context, lead *leadership, r *Rollout) error {
	next, err := update(ctx, c.cli, c.layout, r.ID, "advance", lead, func(cur *Rollout, now time.Time) error {
		if cur.State != Running || cur.Step != r.Step || BakeLeft(cur, now) > 0 {
			return errStale
		}
		cur.Step++
		cur.StepStarted, cur.Baked = now, 0
		return nil
	})
	switch {
	case errors.Is(err, errStale), errors.Is(err, ErrNoRollout):
		return nil
	case err != nil:
		return err
	}
	c.log.Info("rollout controller: step", "rollout", r.ID, "step", next.Step, "percent", next.Percent())
	return nil
}

// promote promotes rollout r, if it is still running at its last step
// with its bake over. A candidate that is no longer valid (the schema
// changed) aborts the rollout.
func (c *controller) promote(ctx context.Context, lead *leadership, r *Rollout) error {
	rel, err := promote(ctx, c.cli, c.prefix, r.ID, lead, func(cur *Rollout) error {
		if cur.State != Running || cur.Step != len(cur.Steps)-1 || BakeLeft(cur, time.Now()) > 0 {
			return errStale
		}
		return nil
	}, c.writer, nil)
	switch {
	case errors.Is(err, errStale), errors.Is(err, ErrNoRollout), errors.Is(err, ErrState):
		return nil
	case errors.Is(err, config.ErrInvalid):
		return c.abort(ctx, lead, r, "promotion failed: "+err.Error())
	case err != nil:
		return err
	}
	c.log.Info("rollout controller: rollout promoted", "rollout", r.ID, "release", rel.Version)
	return nil
}
