// Package etcd reads and watches the configuration stored under one etcd
// prefix. It knows nothing of the Go type the configuration is bound to: it
// deals in keys, values and revisions (see Layout for the key layout).
package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultRequestTimeout bounds one read when the caller's context has no
// earlier deadline.
const DefaultRequestTimeout = 5 * time.Second

// Provider reads (and, from the hot-reload work on, watches) the data keys
// of one prefix through an injected client.
type Provider struct {
	cli     *clientv3.Client
	layout  Layout
	timeout time.Duration
	state   watchState

	maxPending, maxPendingBytes int // bounds of the updates waiting for Watch's fn
}

// Option configures a Provider.
type Option func(*Provider)

// WithRequestTimeout bounds each read; zero or negative means
// DefaultRequestTimeout.
func WithRequestTimeout(d time.Duration) Option {
	return func(p *Provider) {
		if d > 0 {
			p.timeout = d
		}
	}
}

// WithMaxPending bounds the updates that may wait for the fn of this
// provider's Watch before they are merged into one (see Update): at most
// updates updates and bytes bytes of keys and values. Zero or negative
// keeps MaxPendingUpdates or MaxPendingBytes.
func WithMaxPending(updates, bytes int) Option {
	return func(p *Provider) { p.maxPending, p.maxPendingBytes = updates, bytes }
}

// New returns a provider of prefix read through cli. The client stays the
// caller's: the provider never closes it.
func New(cli *clientv3.Client, prefix string, opts ...Option) *Provider {
	p := &Provider{cli: cli, layout: NewLayout(prefix), timeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Layout returns the key layout of the provider's prefix.
func (p *Provider) Layout() Layout { return p.layout }

// Read returns every data key of the prefix and the release version (the
// guard key) at one revision, in one read-only transaction. An unreachable
// cluster makes it fail within the request timeout with an error naming the
// endpoints.
func (p *Provider) Read(ctx context.Context) (*Data, error) {
	return p.read(ctx, false)
}

// ReadLeaves reads as Read does, and when every data key is a plain leaf
// (no document, no key that does not fit the layout, no leaf beneath
// another) it builds the prefix's content (see Data.Content) from the
// answer at once, without KVs: the Data's KVs is nil then, and its
// Content hands that content over. Otherwise the Data is Read's.
func (p *Provider) ReadLeaves(ctx context.Context) (*Data, error) {
	return p.read(ctx, true)
}

func (p *Provider) read(ctx context.Context, leavesOnly bool) (*Data, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.cli.Txn(ctx).Then(
		clientv3.OpGet(p.layout.Data(), clientv3.WithPrefix()),
		clientv3.OpGet(p.layout.Version()),
	).Commit()
	if err != nil {
		return nil, p.wrap("read "+p.layout.Data(), err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	d := &Data{Revision: resp.Header.Revision}
	if v := resp.Responses[1].GetResponseRange().Kvs; len(v) > 0 {
		d.Version, _ = strconv.ParseInt(string(v[0].Value), 10, 64)
	}
	// The keys are cut from one string: one allocation, not one per key.
	n := 0
	for _, kv := range kvs {
		n += len(kv.Key)
	}
	var b strings.Builder
	b.Grow(n)
	for _, kv := range kvs {
		b.Write(kv.Key)
	}
	all := b.String()
	each := func(yield func(string, []byte) bool) {
		at := 0
		for _, kv := range kvs {
			if !yield(all[at:at+len(kv.Key)], kv.Value) {
				return
			}
			at += len(kv.Key)
		}
	}
	if leavesOnly {
		if tree, paths, ok := leafTree(p.layout, each, nil); ok {
			// The paths and the keys are listed in the same order: the
			// leaves need no map (see Leaves).
			d.leaves = &leaves{tree: tree, keys: &Leaves{paths: paths, keys: all, data: len(p.layout.Data()), n: len(kvs)}}
			return d, nil
		}
	}
	d.KVs = make(map[string][]byte, len(kvs))
	for k, v := range each {
		d.KVs[k] = v
	}
	return d, nil
}

// Version returns the release version (the value of the guard key) as of
// revision rev (0: the newest). It is 0 before the first release. When rev
// has been compacted, the newest value answers if the guard key has not
// changed since rev; otherwise the error wraps rpctypes.ErrCompacted.
func (p *Provider) Version(ctx context.Context, rev int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var opts []clientv3.OpOption
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := p.cli.Get(ctx, p.layout.Version(), opts...)
	if errors.Is(err, rpctypes.ErrCompacted) {
		resp, err = p.cli.Get(ctx, p.layout.Version())
		if err == nil && len(resp.Kvs) > 0 && resp.Kvs[0].ModRevision > rev {
			return 0, p.wrap(fmt.Sprintf("read %s at revision %d", p.layout.Version(), rev), rpctypes.ErrCompacted)
		}
	}
	if err != nil {
		return 0, p.wrap("read "+p.layout.Version(), err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
}

// wrap names the provider's endpoints in an error from the client.
func (p *Provider) wrap(op string, err error) error { return Wrap(op, p.cli.Endpoints(), err) }

// Wrap names the endpoints and the operation in an error from an etcd
// client: "etcd [http://a:2379,http://b:2379]: read /p/data/: <err>". err
// stays in the chain (errors.Is finds context.DeadlineExceeded, an
// rpctypes error, ...). A nil err gives nil.
func Wrap(op string, endpoints []string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("etcd [%s]: %s: %w", strings.Join(endpoints, ","), op, err)
}
