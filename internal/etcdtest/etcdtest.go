// Package etcdtest starts real etcd servers (embedded, on loopback) for tests and examples.
//
// Every member is a real go.etcd.io/etcd/server/v3/embed server on random
// free ports of 127.0.0.1, tuned for tests: no fsync, short heartbeat and
// election timeouts, no gRPC gateway, and a silent logger. One member is
// ready in about 40 ms, three in about 0.1 s, and a cluster closes in
// milliseconds, leaving no goroutine behind.
//
//	c := etcdtest.New(t)             // one member, closed on t.Cleanup
//	cli := c.Client(t)               // closed on t.Cleanup
//
//	c3 := etcdtest.NewCluster(t, 3)  // three members
//	lead := c3.Leader(t)
//	lead.Stop(t)                     // graceful; a new leader takes over
//	lead.Restart(t)                  // same URLs, same data, catches up
//
// Faults: Member.Stop (graceful), Member.Kill (a crash: no leadership
// hand-over), Member.DropClientConnections (a network blip), Cluster.Compact.
//
// Each member is reached through small TCP proxies that own its public
// ports (client, HTTP, peer) for the life of the cluster; etcd itself
// listens on fresh internal ports at every start. So a member keeps its URLs
// across Stop and Restart, no other process can take its ports while it is
// down, and a stop can end every remaining connection at once (otherwise
// embed.Etcd.Close waits 1 s for peer connections, whose goroutines then
// linger for up to 5 s).
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Timeouts. WithStartTimeout changes the first for a cluster; WithConfig and
// WithClientConfig can change anything else.
const (
	// DefaultStartTimeout bounds how long a member may take to become ready.
	DefaultStartTimeout = 30 * time.Second

	// DialTimeout is the DialTimeout of every client made by this package.
	DialTimeout = 5 * time.Second

	// tickMs and electionMs for a single member: its election timeout never
	// matters after start, since it is the only voter.
	singleTickMs, singleElectionMs = 10, 50
	// tickMs and electionMs for a multi-member cluster: short enough for
	// fast fail-over, long enough not to flap on two busy cores under -race.
	clusterTickMs, clusterElectionMs = 20, 250

	bindAttempts = 5 // fresh internal ports each time a bind fails
)

// Option configures Start, New and NewCluster.
type Option func(*options)

type options struct {
	cfgFns       []func(*embed.Config)
	clientFns    []func(*clientv3.Config)
	dir          string
	startTimeout time.Duration
}

// WithConfig adds a last-word tweak applied to each member's embed.Config
// after this package has filled it in (name, data dir, URLs, cluster,
// timeouts, logger). Use it for TLS, auth, quotas, auto compaction and so on.
// The listen URLs are the exception: they are set to fresh internal ports at
// every start, behind the member's fixed public (advertised) URLs.
//
// If the tweak sets ClientTLSInfo (or ClientAutoTLS) while the client URLs are
// still http, they are switched to https; the same holds for PeerTLSInfo and
// the peer URLs. Clients made by the cluster then need WithClientConfig to
// set their TLS.
func WithConfig(fn func(*embed.Config)) Option {
	return func(o *options) { o.cfgFns = append(o.cfgFns, fn) }
}

// WithClientConfig adds a tweak applied to the clientv3.Config of every client
// the cluster makes: Client, ClientFor, NewClient, and the short-lived clients
// behind Compact and Revision. Use it for client TLS or a username and
// password when WithConfig enabled them on the server.
func WithClientConfig(fn func(*clientv3.Config)) Option {
	return func(o *options) { o.clientFns = append(o.clientFns, fn) }
}

// WithDir sets the data directory root; each member uses a sub-directory
// named after it (dir/m0, dir/m1, ...), which should not exist yet. The
// default is t.TempDir() in New and NewCluster, and a fresh os.MkdirTemp
// directory in Start that Close removes. A directory given with WithDir is
// never removed.
func WithDir(dir string) Option {
	return func(o *options) { o.dir = dir }
}

// WithStartTimeout bounds how long each member may take to become ready, on
// the first start and on Restart. The default is DefaultStartTimeout.
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Cluster is a running set of embedded members.
type Cluster struct {
	// Members are the cluster's members, in the order they were defined
	// (names m0, m1, ...). The slice must not be modified.
	Members []*Member

	opts    options
	rootDir string // removed by Close when rmDir is set
	rmDir   bool

	closed    atomic.Bool // set when Close begins; members no longer restart
	closeOnce sync.Once
	closeErr  error
}

// Start starts n members (1 or 3 typically) without a testing.TB, for example
// programs, and waits until all of them are ready. The caller must Close the
// cluster. ctx bounds the start-up only.
func Start(ctx context.Context, n int, opts ...Option) (*Cluster, error) {
	o := buildOptions(opts)
	rm := false
	if o.dir == "" {
		d, err := os.MkdirTemp("", "etcdtest-*")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		o.dir, rm = d, true
	}
	c, err := start(ctx, n, o)
	if err != nil {
		if rm {
			os.RemoveAll(o.dir)
		}
		return nil, err
	}
	c.rootDir, c.rmDir = o.dir, rm
	return c, nil
}

// New starts one member for a test and stops it on t.Cleanup. It fails the
// test if the member cannot be started.
func New(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	return NewCluster(t, 1, opts...)
}

// NewCluster starts n members for a test and stops them on t.Cleanup. It fails
// the test if the cluster cannot be started.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	o := buildOptions(opts)
	if o.dir == "" {
		o.dir = t.TempDir() // removed by testing after our Close (cleanups run LIFO)
	}
	c, err := start(context.Background(), n, o)
	if err != nil {
		t.Fatalf("etcdtest: start %d member(s): %v", n, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("etcdtest: close: %v", err)
		}
	})
	return c
}

func buildOptions(opts []Option) options {
	o := options{startTimeout: DefaultStartTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.startTimeout <= 0 {
		o.startTimeout = DefaultStartTimeout
	}
	return o
}

func start(ctx context.Context, n int, o options) (c *Cluster, err error) {
	if n < 1 {
		return nil, fmt.Errorf("etcdtest: need at least one member, got %d", n)
	}
	c = &Cluster{opts: o, Members: make([]*Member, n)}
	defer func() {
		if err != nil {
			c.Close()
			c, err = nil, fmt.Errorf("etcdtest: %w", err)
		}
	}()
	token := fmt.Sprintf("etcdtest-%016x", rand.Uint64())
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), cluster: c}
		c.Members[i] = m
		m.dir = filepath.Join(o.dir, m.Name)
		for _, px := range []**proxy{&m.clientPx, &m.httpPx, &m.peerPx} {
			if *px, err = newProxy(); err != nil {
				return c, err
			}
		}
		m.cfg = baseConfig(m.Name, m.dir, m.clientPx.addr(), m.peerPx.addr(), n)
		m.cfg.InitialClusterToken = token
		initial = append(initial, m.Name+"="+m.cfg.AdvertisePeerUrls[0].String())
	}
	ic := strings.Join(initial, ",")
	for _, m := range c.Members {
		m.cfg.InitialCluster = ic
		for _, fn := range o.cfgFns {
			fn(m.cfg)
		}
		upgradeSchemes(m.cfg, ic)
		m.clientURL = m.cfg.AdvertiseClientUrls[0].String()
		m.httpURL = (&url.URL{Scheme: m.cfg.AdvertiseClientUrls[0].Scheme, Host: m.httpPx.addr()}).String()
		m.peerURL = m.cfg.AdvertisePeerUrls[0].String()
	}

	// Launch the members one after the other, then wait for all of them at
	// once (each becomes ready only when there is a quorum). Launching them
	// all at once would cost a second per peer: a new member first asks
	// every peer whether it already belongs to a cluster (GET /members, 1 s
	// timeout), and a peer that is launching at the same time accepts the
	// connection but does not answer until it serves. A peer not launched
	// yet refuses at once; one already launched answers at once.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range c.Members {
		e, lerr := m.launch()
		if lerr != nil {
			errs[i] = lerr
			cancel()
			break
		}
		wg.Go(func() {
			if errs[i] = m.awaitReady(ctx, e); errs[i] != nil {
				cancel() // no point waiting for a quorum that will not come
			}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return c, err
	}
	// From now on a restart must not bootstrap a new cluster.
	for _, m := range c.Members {
		m.cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	return c, nil
}

// firstError prefers a real cause over the context.Canceled the other members
// report after the first failure cancelled them.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// baseConfig returns a member's configuration; the listen URLs are set on
// every launch.
func baseConfig(name, dir, clientAddr, peerAddr string, n int) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dir
	cfg.AdvertiseClientUrls = []url.URL{{Scheme: "http", Host: clientAddr}}
	cfg.AdvertisePeerUrls = []url.URL{{Scheme: "http", Host: peerAddr}}
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.UnsafeNoFsync = true
	if n == 1 {
		cfg.TickMs, cfg.ElectionMs = singleTickMs, singleElectionMs
	} else {
		cfg.TickMs, cfg.ElectionMs = clusterTickMs, clusterElectionMs
	}
	cfg.EnableGRPCGateway = false
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg
}

func loopbackURL(scheme string, port int) url.URL {
	return url.URL{Scheme: scheme, Host: fmt.Sprintf("127.0.0.1:%d", port)}
}

// upgradeSchemes switches http URLs to https where WithConfig turned on TLS.
func upgradeSchemes(cfg *embed.Config, ourInitialCluster string) {
	if !cfg.ClientTLSInfo.Empty() || cfg.ClientAutoTLS {
		httpsURLs(cfg.AdvertiseClientUrls)
	}
	if !cfg.PeerTLSInfo.Empty() || cfg.PeerAutoTLS {
		httpsURLs(cfg.AdvertisePeerUrls)
		if cfg.InitialCluster == ourInitialCluster {
			cfg.InitialCluster = strings.ReplaceAll(cfg.InitialCluster, "=http://", "=https://")
		}
	}
}

func httpsURLs(us []url.URL) {
	for i := range us {
		if us[i].Scheme == "http" {
			us[i].Scheme = "https"
		}
	}
}

// freePorts returns n distinct free TCP ports of 127.0.0.1. They are free when
// returned, not reserved: launch picks again if a bind fails.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) ||
		(err != nil && strings.Contains(err.Error(), "address already in use"))
}

// Close stops every member and removes the data directory if the cluster
// created it (Start without WithDir). It is idempotent and safe to call
// concurrently; later calls return the first call's result.
//
// Unlike Member.Stop, Close does not hand leadership over: it hard-stops all
// members at once, so a cluster closes in milliseconds whatever its state.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		var wg sync.WaitGroup
		errs := make([]error, len(c.Members))
		for i, m := range c.Members {
			if m == nil {
				continue
			}
			wg.Go(func() { errs[i] = m.stop(true) })
		}
		wg.Wait()
		for _, m := range c.Members {
			if m == nil {
				continue
			}
			for _, p := range m.proxies() {
				p.close()
			}
		}
		err := errors.Join(errs...)
		if c.rmDir && c.rootDir != "" {
			if rerr := os.RemoveAll(c.rootDir); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		c.closeErr = err
	})
	return c.closeErr
}

// Endpoints returns the client URLs of all members ("http://127.0.0.1:port"),
// running or not, in member order.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL()
	}
	return eps
}

// runningEndpoints returns the client URLs of running members, or all of them
// if none is running (so that errors name a real endpoint).
func (c *Cluster) runningEndpoints() []string {
	var eps []string
	for _, m := range c.Members {
		if m.Running() {
			eps = append(eps, m.ClientURL())
		}
	}
	if len(eps) == 0 {
		return c.Endpoints()
	}
	return eps
}

// ClientConfig returns the clientv3.Config this package uses for clients on
// endpoints (all members if none are given): DialTimeout 5 s, a silent
// logger, a reconnection backoff capped at 1 s, and the WithClientConfig
// tweaks.
func (c *Cluster) ClientConfig(endpoints ...string) clientv3.Config {
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: DialTimeout,
		Logger:      zap.NewNop(),
		// Reconnect to a restarted member within a second, not after
		// gRPC's default backoff (up to 2 minutes).
		DialOptions: []grpc.DialOption{etcdprov.ReconnectBackoff(time.Second, DialTimeout)},
	}
	for _, fn := range c.opts.clientFns {
		fn(&cfg)
	}
	return cfg
}

// NewClient returns a client on endpoints (default: all members). The caller
// must Close it.
func (c *Cluster) NewClient(endpoints ...string) (*clientv3.Client, error) {
	cli, err := clientv3.New(c.ClientConfig(endpoints...))
	if err != nil {
		return nil, fmt.Errorf("etcdtest: new client: %w", err)
	}
	return cli, nil
}

// Client returns a client on all members' endpoints, closed on t.Cleanup.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return c.testClient(t, c.Endpoints()...)
}

// ClientFor returns a client on m's endpoint only, closed on t.Cleanup. Use it
// with clientv3.WithSerializable() to read what that member has applied.
func (c *Cluster) ClientFor(t testing.TB, m *Member) *clientv3.Client {
	t.Helper()
	return c.testClient(t, m.ClientURL())
}

func (c *Cluster) testClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := c.NewClient(endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// withClient runs fn with a short-lived client on the running members.
func (c *Cluster) withClient(ctx context.Context, fn func(context.Context, *clientv3.Client) error) error {
	cli, err := c.NewClient(c.runningEndpoints()...)
	if err != nil {
		return err
	}
	defer cli.Close()
	return fn(ctx, cli)
}

// RevisionErr returns the cluster's current revision (a linearizable read).
func (c *Cluster) RevisionErr(ctx context.Context) (int64, error) {
	var rev int64
	err := c.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		rev = resp.Header.Revision
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("etcdtest: revision: %w", err)
	}
	return rev, nil
}

// Revision returns the cluster's current revision. It fails the test on error.
func (c *Cluster) Revision(t testing.TB) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	rev, err := c.RevisionErr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// CompactErr compacts the key-value history at rev (rev <= 0: the current
// revision) and waits until the compaction is physically applied, so that a
// read at an older revision fails with rpctypes.ErrCompacted on every member
// that has applied it. It returns the revision compacted at.
func (c *Cluster) CompactErr(ctx context.Context, rev int64) (int64, error) {
	err := c.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		if rev <= 0 {
			resp, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			rev = resp.Header.Revision
		}
		_, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("etcdtest: compact at %d: %w", rev, err)
	}
	return rev, nil
}

// Compact compacts the history at rev (rev <= 0: the current revision) with
// clientv3.WithCompactPhysical. It fails the test on error.
func (c *Cluster) Compact(t testing.TB, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	if _, err := c.CompactErr(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// LeaderErr returns the running member that is the current raft leader,
// waiting until there is one or ctx ends. If several running members claim
// leadership (a deposed leader that has not noticed yet), the one with the
// highest term wins.
func (c *Cluster) LeaderErr(ctx context.Context) (*Member, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var (
			lead *Member
			term uint64
		)
		for _, m := range c.Members {
			s := m.server()
			if s == nil || !m.Running() {
				continue
			}
			if t := s.Term(); s.Leader() == s.MemberID() && t >= term {
				lead, term = m, t
			}
		}
		if lead != nil {
			return lead, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("etcdtest: no leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Leader returns the current leader, waiting up to 10 s for one. It fails the
// test if there is none.
func (c *Cluster) Leader(t testing.TB) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.LeaderErr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Followers returns the running members that are not the current leader
// (waiting up to 10 s for a leader). It fails the test if there is no leader.
func (c *Cluster) Followers(t testing.TB) []*Member {
	t.Helper()
	lead := c.Leader(t)
	var fs []*Member
	for _, m := range c.Members {
		if m != lead && m.Running() {
			fs = append(fs, m)
		}
	}
	return fs
}
