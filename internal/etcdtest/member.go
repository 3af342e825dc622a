package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Member is one embedded etcd server. It keeps its name, URLs, member ID and
// data directory across Stop and Restart.
type Member struct {
	// Name is the member's etcd name: m0, m1, ... in cluster order.
	Name string

	cluster   *Cluster
	cfg       *embed.Config // reused by every (re)start
	dir       string
	clientURL string
	httpURL   string
	peerURL   string
	clientPx  *proxy // gRPC
	httpPx    *proxy // HTTP: /health, /metrics, /version
	peerPx    *proxy
	userGRPC  []grpc.ServerOption // WithConfig's GRPCAdditionalServerOptions

	mu   sync.Mutex                 // serialises start and stop
	e    atomic.Pointer[embed.Etcd] // nil while stopped
	gate *stopGate                  // of the running server; under mu
	id   atomic.Uint64
}

// ClientURL returns the member's client URL ("http://127.0.0.1:port"). It does
// not change across Stop and Restart.
func (m *Member) ClientURL() string { return m.clientURL }

// HTTPURL returns the URL of the member's HTTP endpoints (/health,
// /metrics, /version, ...), which the client URL does not serve. (On a port
// shared by gRPC and HTTP, embed's shutdown hard-stops the gRPC server: in
// cmux, closing the HTTP listener closes the shared one.) It does not change
// across Stop and Restart.
func (m *Member) HTTPURL() string { return m.httpURL }

// PeerURL returns the member's peer URL. It does not change across Stop and
// Restart.
func (m *Member) PeerURL() string { return m.peerURL }

// Dir returns the member's data directory.
func (m *Member) Dir() string { return m.dir }

// ID returns the member's etcd member ID. It does not change across Stop and
// Restart.
func (m *Member) ID() uint64 { return m.id.Load() }

// Running reports whether the member's server is running: started, and
// neither stopped through this package nor terminated on its own.
func (m *Member) Running() bool {
	s := m.server()
	if s == nil {
		return false
	}
	select {
	case <-s.StopNotify():
		return false
	default:
		return true
	}
}

// Etcd returns the running embedded server, or nil while the member is
// stopped. It is for inspection (e.g. Etcd().Server.AppliedIndex()); stop and
// restart the member only through Stop and Restart.
func (m *Member) Etcd() *embed.Etcd { return m.e.Load() }

func (m *Member) server() *etcdserver.EtcdServer {
	if e := m.e.Load(); e != nil {
		return e.Server
	}
	return nil
}

// DropClientConnections closes every open client connection to the member,
// as a network failure would, without stopping it. Clients see their calls
// and streams fail with codes.Unavailable and reconnect.
func (m *Member) DropClientConnections() { m.clientPx.drop() }

// Stop closes the member's server gracefully and returns when it is closed,
// in milliseconds; the data directory and URLs are kept for Restart. It
// fails the test on error. Stopping a stopped member does nothing.
//
// What clients see: streams on the member (watches, lease keep-alives) end
// with codes.Unavailable, and clientv3 re-opens them on another endpoint;
// new calls go to other endpoints (GOAWAY); calls in flight get a second to
// finish. A leader first hands its leadership over. Beware that etcd drops
// the proposals other members forward to a leader while it hands over, so a
// write through another member that races a leader's Stop can fail only
// after the request timeout (about 5.5 s). Stopping a follower fails no
// call of a client that has other endpoints.
func (m *Member) Stop(t testing.TB) {
	t.Helper()
	if err := m.StopErr(); err != nil {
		t.Fatal(err)
	}
}

// StopErr is Stop without a testing.TB.
func (m *Member) StopErr() error { return m.stop(false) }

// Kill stops the member's server abruptly, as a crash would: a leader does
// not hand its leadership over, so the other members elect a new one after
// an election timeout. The data directory and URLs are kept for Restart.
// It fails the test on error. Killing a stopped member does nothing.
func (m *Member) Kill(t testing.TB) {
	t.Helper()
	if err := m.KillErr(); err != nil {
		t.Fatal(err)
	}
}

// KillErr is Kill without a testing.TB.
func (m *Member) KillErr() error { return m.stop(true) }

// Restart starts a stopped member again with the same URLs and data
// directory and waits until it is ready (it has rejoined its cluster). It
// fails the test on error.
func (m *Member) Restart(t testing.TB) {
	t.Helper()
	if err := m.RestartErr(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// RestartErr is Restart without a testing.TB; ctx bounds the wait for
// readiness together with the cluster's start timeout. Restarting a running
// member is an error.
func (m *Member) RestartErr(ctx context.Context) error {
	if err := m.start(ctx); err != nil {
		return fmt.Errorf("etcdtest: restart %s: %w", m.Name, err)
	}
	return nil
}

// start starts the member's server and waits until it is ready.
func (m *Member) start(ctx context.Context) error {
	e, err := m.launch()
	if err != nil {
		return err
	}
	return m.awaitReady(ctx, e)
}

// launch starts the member's server without waiting for it to be ready. On
// success m.mu stays locked until awaitReady.
func (m *Member) launch() (*embed.Etcd, error) {
	m.mu.Lock()
	if m.e.Load() != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("member %s is already running", m.Name)
	}
	if m.cluster.closed.Load() {
		m.mu.Unlock()
		return nil, fmt.Errorf("member %s: cluster is closed", m.Name)
	}
	if m.userGRPC == nil {
		m.userGRPC = append([]grpc.ServerOption{}, m.cfg.GRPCAdditionalServerOptions...)
	}
	gate := newStopGate()
	m.cfg.GRPCAdditionalServerOptions = append(slices.Clip(m.userGRPC),
		grpc.ChainUnaryInterceptor(gate.unary),
		grpc.ChainStreamInterceptor(gate.stream))
	// etcd listens on fresh internal ports each time; only the proxies'
	// public ports are part of the membership. A port picked here may be
	// taken before etcd binds it: pick again.
	var err error
	for range bindAttempts {
		var ports []int
		if ports, err = freePorts(3); err != nil {
			break
		}
		clientScheme := m.cfg.AdvertiseClientUrls[0].Scheme
		m.cfg.ListenClientUrls = []url.URL{loopbackURL(clientScheme, ports[0])}
		m.cfg.ListenClientHttpUrls = []url.URL{loopbackURL(clientScheme, ports[1])}
		m.cfg.ListenPeerUrls = []url.URL{loopbackURL(m.cfg.AdvertisePeerUrls[0].Scheme, ports[2])}
		m.clientPx.up(m.cfg.ListenClientUrls[0].Host)
		m.httpPx.up(m.cfg.ListenClientHttpUrls[0].Host)
		m.peerPx.up(m.cfg.ListenPeerUrls[0].Host)
		var e *embed.Etcd
		if e, err = embed.StartEtcd(m.cfg); err == nil {
			m.gate = gate
			return e, nil
		}
		m.down()
		if !isAddrInUse(err) {
			break
		}
	}
	m.mu.Unlock()
	return nil, fmt.Errorf("start member %s: %w", m.Name, err)
}

// awaitReady waits until e, just launched, is ready, and publishes it; it
// closes e on failure. It unlocks m.mu.
func (m *Member) awaitReady(ctx context.Context, e *embed.Etcd) error {
	defer m.mu.Unlock()
	if err := waitReady(ctx, e, m.cluster.opts.startTimeout); err != nil {
		m.closeEtcd(e, true)
		m.gate = nil
		return fmt.Errorf("member %s (%s): %w", m.Name, m.clientURL, err)
	}
	m.id.Store(uint64(e.Server.MemberID()))
	m.e.Store(e)
	return nil
}

func waitReady(ctx context.Context, e *embed.Etcd, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-e.Server.StopNotify():
		return errors.New("server stopped before it was ready")
	case err, ok := <-e.Err():
		if !ok || err == nil {
			return errors.New("server closed before it was ready")
		}
		return fmt.Errorf("server failed before it was ready: %w", err)
	case <-timer.C:
		return fmt.Errorf("not ready after %v (no quorum?)", timeout)
	case <-ctx.Done():
		return fmt.Errorf("waiting for readiness: %w", ctx.Err())
	}
}

// stop closes the running server, if any. hard skips the leadership
// transfer (Kill, and Close of the whole cluster).
func (m *Member) stop(hard bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.e.Swap(nil) // Leader and Running stop seeing it right away
	if e == nil {
		return nil
	}
	m.closeEtcd(e, hard)
	return nil
}

// closeEtcd closes e, ends every connection to it and stops forwarding
// new ones, in an order that lets every step finish at once.
//
// A graceful stop first closes the gate (see stopGate), so that the gRPC
// server's GracefulStop does not wait for streams; GracefulStop sends
// GOAWAY, so that clients send new calls elsewhere without an error; then
// the server hands its leadership over and stops raft. Only then are the
// proxies' remaining connections closed: open peer connections would hold
// the peer server's shutdown for 1 s.
//
// A hard stop closes every connection first, as a crash would.
func (m *Member) closeEtcd(e *embed.Etcd, hard bool) {
	m.gate.close()
	if hard {
		m.down()
		e.Server.HardStop()
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		e.Close()
	}()
	// StopNotify fires once raft has stopped, after the client servers.
	select {
	case <-e.Server.StopNotify():
	case <-closed:
	}
	m.down()
	<-closed
	m.gate.finish()
	// Close closes e.Err() after every serving goroutine has returned;
	// what is left in it are the "server closed" / "use of closed network
	// connection" errors of the shutdown itself.
	for range e.Err() {
	}
}

// proxies returns the member's proxies that exist.
func (m *Member) proxies() []*proxy {
	var ps []*proxy
	for _, p := range []*proxy{m.clientPx, m.httpPx, m.peerPx} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// down closes every connection to the member and refuses new ones.
func (m *Member) down() {
	for _, p := range m.proxies() {
		p.down()
	}
}

// stopGate lets a graceful stop finish at once without failing calls that
// could still succeed. When the stop begins it ends the server's streams
// (watches, lease keep-alives) with codes.Unavailable: they would hold
// grpc.Server.GracefulStop for 5 s, and clientv3 re-opens them on another
// endpoint. Unary calls in flight get callGrace to finish; calls that arrive
// later pass untouched (the server serves them until GracefulStop's GOAWAY
// sends clients elsewhere).
type stopGate struct {
	streams      context.Context
	closeStreams context.CancelFunc
	calls        context.Context
	closeCalls   context.CancelFunc
	timer        *time.Timer
}

// callGrace is how long a unary call in flight when a member begins to stop
// may take before it is cancelled: enough for any call that a healthy
// cluster serves, short enough that a call blocked without a quorum does
// not hold Stop for the request timeout.
const callGrace = time.Second

var errStopping = status.Error(codes.Unavailable, "etcdtest: member is stopping")

func newStopGate() *stopGate {
	g := &stopGate{}
	g.streams, g.closeStreams = context.WithCancel(context.Background())
	g.calls, g.closeCalls = context.WithCancel(context.Background())
	return g
}

// close begins the stop.
func (g *stopGate) close() {
	g.closeStreams()
	g.timer = time.AfterFunc(callGrace, g.closeCalls)
}

// finish ends the stop, once the server is closed.
func (g *stopGate) finish() {
	if g.timer != nil {
		g.timer.Stop()
	}
	g.closeCalls()
}

// bind returns ctx, also cancelled when done is.
func bind(ctx, done context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(done, cancel)
	return ctx, func() { stop(); cancel() }
}

func (g *stopGate) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if g.streams.Err() != nil {
		return handler(ctx, req)
	}
	ctx, done := bind(ctx, g.calls)
	defer done()
	resp, err := handler(ctx, req)
	if err != nil && g.calls.Err() != nil {
		return nil, errStopping
	}
	return resp, err
}

func (g *stopGate) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if g.streams.Err() != nil {
		return errStopping
	}
	ctx, done := bind(ss.Context(), g.streams)
	defer done()
	err := handler(srv, &gatedStream{ServerStream: ss, ctx: ctx})
	if g.streams.Err() != nil {
		return errStopping
	}
	return err
}

// gatedStream is a server stream with the gate's context.
type gatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *gatedStream) Context() context.Context { return s.ctx }
