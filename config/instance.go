package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Instance is the record a running Config keeps at P/meta/instances/<id>
// on a lease: it disappears when the process stops renewing the lease.
type Instance struct {
	ID      string            `json:"id"`
	Host    string            `json:"host"`
	PID     int               `json:"pid"`
	Labels  map[string]string `json:"labels,omitempty"`
	Started time.Time         `json:"started"`
	// AppliedRevision and AppliedVersion are the etcd revision and the
	// release version of the configuration in force.
	AppliedRevision int64 `json:"applied_revision"`
	AppliedVersion  int64 `json:"applied_version"`
	// RejectedRevision and RejectedError describe the last candidate
	// that was rejected, if any (the error masks secret values).
	RejectedRevision int64  `json:"rejected_revision,omitempty"`
	RejectedError    string `json:"rejected_error,omitempty"`
	// Rollout and RolloutStep name the rollout this instance is a canary
	// of and its step (an index into the rollout's steps); Candidate says
	// whether the rollout's candidate is "applied" or was "rejected"
	// (CandidateError says why, secret values masked). All are empty for
	// an instance that is not a canary.
	// Health is the instance's Health().Status ("ok" or "degraded",
	// which includes a failing WithHealthCheck) and HealthReason its
	// Reason, kept within about a second.
	Health         string    `json:"health,omitempty"`
	HealthReason   string    `json:"health_reason,omitempty"`
	Rollout        string    `json:"rollout,omitempty"`
	RolloutStep    int       `json:"rollout_step,omitempty"`
	Candidate      string    `json:"candidate,omitempty"`
	CandidateError string    `json:"candidate_error,omitempty"`
	Updated        time.Time `json:"updated"`
}

// The values of Instance.Candidate.
const (
	CandidateApplied  = "applied"
	CandidateRejected = "rejected"
)

// DefaultInstanceTTL is the lease TTL of instance records.
const DefaultInstanceTTL = 30 * time.Second

type instanceOptions struct {
	id     string
	labels map[string]string
	ttl    time.Duration
}

// WithInstance makes the Config keep an instance record at
// P/meta/instances/<id> on a lease, updated after every applied or
// rejected change, re-created if the lease is lost, removed on Close. An
// empty id means "<host>-<pid>". ttl <= 0 means DefaultInstanceTTL.
func WithInstance(id string, labels map[string]string, ttl time.Duration) Option {
	return func(o *options) {
		if ttl <= 0 {
			ttl = DefaultInstanceTTL
		}
		o.instance = &instanceOptions{id: id, labels: labels, ttl: ttl}
	}
}

// Instances lists the instance records under prefix, sorted by id.
func Instances(ctx context.Context, cli *clientv3.Client, prefix string) ([]Instance, error) {
	p := etcdprov.NewLayout(prefix).Instances()
	resp, err := cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, etcdprov.Wrap("read "+p, cli.Endpoints(), err)
	}
	out := make([]Instance, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var in Instance
		if err := json.Unmarshal(kv.Value, &in); err != nil {
			return nil, fmt.Errorf("instance record %s: %w", kv.Key, err)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// registration keeps one instance record alive. It is owned by the status
// goroutine.
type registration struct {
	cli   *clientv3.Client
	key   string
	ttl   time.Duration
	rec   Instance
	lease clientv3.LeaseID
	ka    <-chan *clientv3.LeaseKeepAliveResponse
	stop  context.CancelFunc // stops the keepalive of lease
}

func newRegistration(cli *clientv3.Client, layout etcdprov.Layout, o *instanceOptions) *registration {
	host, _ := os.Hostname()
	id := instanceID(o, host, os.Getpid())
	return &registration{cli: cli, key: layout.Instance(id), ttl: o.ttl,
		rec: Instance{ID: id, Host: host, PID: os.Getpid(), Labels: o.labels, Started: time.Now().UTC()}}
}

// publish writes the record, granting a lease first when there is none.
func (r *registration) publish(ctx context.Context) error {
	if r.lease == 0 {
		g, err := r.cli.Grant(ctx, int64((r.ttl+time.Second-1)/time.Second))
		if err != nil {
			return fmt.Errorf("instance record %s: grant lease: %w", r.key, err)
		}
		kctx, cancel := context.WithCancel(ctx)
		ka, err := r.cli.KeepAlive(kctx, g.ID)
		if err != nil {
			cancel()
			r.revoke(g.ID)
			return fmt.Errorf("instance record %s: keep lease alive: %w", r.key, err)
		}
		r.lease, r.ka, r.stop = g.ID, ka, cancel
	}
	r.rec.Updated = time.Now().UTC()
	b, err := json.Marshal(r.rec)
	if err != nil {
		return err
	}
	if _, err := r.cli.Put(ctx, r.key, string(b), clientv3.WithLease(r.lease)); err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			r.lost()
		}
		return fmt.Errorf("instance record %s: %w", r.key, err)
	}
	return nil
}

// lost forgets a lease that expired or whose keepalive ended.
func (r *registration) lost() {
	if r.stop != nil {
		r.stop()
	}
	r.lease, r.ka, r.stop = 0, nil, nil
}

// close revokes the lease, which deletes the record.
func (r *registration) close() {
	if r.lease == 0 {
		return
	}
	r.revoke(r.lease)
	r.lost()
}

// revoke revokes lease, deleting what it holds; it does not depend on the
// Config's context, which is already done when Close calls it.
func (r *registration) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.cli.Revoke(ctx, lease) // on failure the lease expires after its TTL
}
