//go:build faultsuite

// Package faultsuite runs strata's writer and watchers against a real
// three-member etcd cluster made of server processes on loopback, and
// injects faults while they work. Each scenario (see Scenarios) streams
// 500 writer Updates, watched by one Config per member, while it kills the
// leader (SIGKILL), compacts and defragments, stops a follower for 30 s, or
// takes the quorum away; every 50 steps an invalid value is written around
// the writer and put back. It then checks that no acknowledged write was
// lost, that every watcher converged on the final revision without seeing
// a revision twice or out of order, and that no invalid configuration was
// ever applied.
//
// A killed or stopped member does not close the provider's watch channel:
// clientv3 resumes the stream internally. The provider itself re-opens its
// watch (from its resume revision) only when the channel closes: after a
// quorum loss (a member without a leader cancels watches that require one)
// or a compaction past the watch (then it re-reads the prefix).
//
// Everything is behind the build tag faultsuite, so `go test ./...`
// compiles nothing of it. Run it with an etcd server binary (.ci/etcd-bin
// builds one):
//
//	go test -tags faultsuite -run TestFaultSuite -v -timeout 20m ./internal/faultsuite/ -etcd=$(.ci/etcd-bin)
//
// STRATA_ETCD_BIN stands in for -etcd. STRATA_FAULTSUITE_LOGS=dir keeps a
// copy of every member's log under dir.
//
// TestAcceptance (-run TestAcceptance, about 10 s) is a short check of the
// library's etcd-facing API on one cluster without a fault stream, meant
// for every supported server version; .ci/run runs it against etcd 3.5.
package faultsuite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Timeouts of the cluster helpers.
const (
	// StartTimeout bounds how long a member (or the whole cluster) may take
	// to answer with a leader after its process started.
	StartTimeout = 30 * time.Second
	// StopTimeout bounds a graceful stop; then the member is killed.
	StopTimeout = 10 * time.Second
	// RequestTimeout bounds one admin request (status, compact).
	RequestTimeout = 3 * time.Second
	// DefragTimeout bounds the defragmentation of one member.
	DefragTimeout = 30 * time.Second
	// DialTimeout is the DialTimeout of every client made here.
	DialTimeout = 3 * time.Second
)

// Cluster is a set of etcd server processes forming one cluster on
// 127.0.0.1, with data directories and logs in a test's temp directory.
// Its processes are killed when the test ends; if it failed, the tail of
// every member's log is printed first.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	initial string // the --initial-cluster value
	admin   *clientv3.Client

	// Members are the cluster's members, in the order they were created.
	Members []*Member
}

// Member is one etcd server process. Its name, ports and data directory
// stay the same across Kill, Stop and Restart.
type Member struct {
	c *Cluster

	Name      string
	ClientURL string // http://127.0.0.1:port, the client endpoint
	PeerURL   string
	DataDir   string
	LogPath   string // stdout and stderr of every start, appended

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	starts int
}

// StartCluster starts an n-member cluster of bin processes with short
// heartbeat (50 ms) and election (500 ms) timeouts and waits until every
// member answers and agrees on a leader. It fails the test if that does
// not happen within StartTimeout.
func StartCluster(t testing.TB, bin string, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
	ports, err := freePorts(2 * n)
	if err != nil {
		t.Fatalf("faultsuite: free ports: %v", err)
	}
	var initial []string
	for i := range n {
		m := &Member{
			c:         c,
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.DataDir = filepath.Join(c.dir, m.Name+".etcd")
		m.LogPath = filepath.Join(c.dir, m.Name+".log")
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	c.initial = strings.Join(initial, ",")
	t.Cleanup(c.close)
	for _, m := range c.Members {
		if err := m.start("new"); err != nil {
			t.Fatalf("faultsuite: %v", err)
		}
	}
	c.admin, err = c.NewClient(c.Endpoints()...)
	if err != nil {
		t.Fatalf("faultsuite: admin client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("faultsuite: cluster did not start: %v", err)
	}
	return c
}

// close kills every member, after printing the log tails if the test
// failed.
func (c *Cluster) close() {
	if c.t.Failed() {
		c.t.Logf("faultsuite: etcd logs (last 15 lines per member):\n%s", c.LogTails(15))
	}
	if c.admin != nil {
		_ = c.admin.Close()
	}
	for _, m := range c.Members {
		_ = m.Kill()
	}
	if dir := os.Getenv("STRATA_FAULTSUITE_LOGS"); dir != "" {
		c.keepLogs(filepath.Join(dir, strings.ReplaceAll(c.t.Name(), "/", "_")))
	}
}

// keepLogs copies every member's log into dir (STRATA_FAULTSUITE_LOGS
// names its parent), for reading after the temp directory is gone.
func (c *Cluster) keepLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("faultsuite: keep logs: %v", err)
		return
	}
	for _, m := range c.Members {
		b, err := os.ReadFile(m.LogPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, m.Name+".log"), b, 0o644)
		}
		if err != nil {
			c.t.Logf("faultsuite: keep logs: %v", err)
		}
	}
}

// freePorts returns n distinct free TCP ports of 127.0.0.1. All n
// listeners are held until every port is known, so none is returned twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// NewClient returns a client on endpoints with a silent logger and a
// reconnection backoff capped at 1 s (gRPC's default waits up to two
// minutes before it tries a restarted member again). The caller closes it.
func (c *Cluster) NewClient(endpoints ...string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: DialTimeout,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{etcdprov.ReconnectBackoff(time.Second, DialTimeout)},
	})
}

// Client returns a client on endpoints (all members if none) that is
// closed when the test ends.
func (c *Cluster) Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := c.NewClient(endpoints...)
	if err != nil {
		t.Fatalf("faultsuite: client on %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// status asks one member for its status.
func (c *Cluster) status(ctx context.Context, m *Member) (*clientv3.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	return c.admin.Status(ctx, m.ClientURL)
}

// Leader returns the member that reports itself as the leader, asking
// every running member (clientv3 Status), and retrying until ctx is done
// (an election may be under way).
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	for {
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			st, err := c.status(ctx, m)
			if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				return m, nil
			}
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return nil, fmt.Errorf("no leader among the running members: %w", ctx.Err())
		}
	}
}

// Follower returns a running member that is not the leader.
func (c *Cluster) Follower(ctx context.Context) (*Member, error) {
	lead, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range c.Members {
		if m != lead && m.Running() {
			return m, nil
		}
	}
	return nil, errors.New("no running follower")
}

// WaitHealthy waits until every running member answers Status and all of
// them name the same leader.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		last = c.healthy(ctx)
		if last == nil {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	var leader uint64
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		st, err := c.status(ctx, m)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if st.Leader == 0 {
			return fmt.Errorf("%s has no leader", m.Name)
		}
		if leader != 0 && st.Leader != leader {
			return fmt.Errorf("%s names leader %x, another member %x", m.Name, st.Leader, leader)
		}
		leader = st.Leader
	}
	return nil
}

// Revision returns the cluster's current revision.
func (c *Cluster) Revision(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	resp, err := c.admin.Get(ctx, "\x00")
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Compact compacts the key-value history up to rev and waits until the
// compaction is applied on every member (physical compaction).
func (c *Cluster) Compact(ctx context.Context, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, DefragTimeout)
	defer cancel()
	_, err := c.admin.Compact(ctx, rev, clientv3.WithCompactPhysical())
	return err
}

// Defragment defragments the backend of every running member, one after
// the other (clientv3 Maintenance.Defragment).
func (c *Cluster) Defragment(ctx context.Context) error {
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, DefragTimeout)
		_, err := c.admin.Defragment(dctx, m.ClientURL)
		cancel()
		if err != nil {
			return fmt.Errorf("defragment %s: %w", m.Name, err)
		}
	}
	return nil
}

// LogTails returns the last n lines of every member's log.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "--- %s (%s)\n", m.Name, m.LogPath)
		for _, l := range tail(m.LogPath, n) {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 2*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// start launches the member's process with the given
// --initial-cluster-state ("new" or "existing").
func (m *Member) start(state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("%s is already running", m.Name)
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	m.starts++
	fmt.Fprintf(logf, "=== faultsuite: start %d of %s (--initial-cluster-state %s) at %s\n",
		m.starts, m.Name, state, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(m.c.bin,
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", m.c.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", "faultsuite",
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	return nil
}

// Running reports whether the member's process is running.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// signal sends sig to the process and waits up to wait for it to exit,
// then kills it.
func (m *Member) signal(sig syscall.Signal, wait time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	if err := m.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v to %s: %w", sig, m.Name, err)
	}
	select {
	case <-m.exited:
	case <-time.After(wait):
		_ = m.cmd.Process.Kill()
		<-m.exited
		m.cmd = nil
		return fmt.Errorf("%s did not exit within %v of %v; killed", m.Name, wait, sig)
	}
	m.cmd = nil
	return nil
}

// Kill crashes the member: SIGKILL, no leadership hand-over, no flush.
func (m *Member) Kill() error { return m.signal(syscall.SIGKILL, StopTimeout) }

// Stop stops the member gracefully (SIGTERM), killing it after StopTimeout.
func (m *Member) Stop() error {
	start := time.Now()
	err := m.signal(syscall.SIGTERM, StopTimeout)
	m.c.t.Logf("faultsuite: stopping %s took %v", m.Name, time.Since(start).Round(time.Millisecond))
	return err
}

// Restart starts a stopped or killed member again with the same data
// directory and ports (--initial-cluster-state existing) and waits until
// it answers with a leader.
func (m *Member) Restart(ctx context.Context) error {
	if err := m.start("existing"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	for {
		st, err := m.c.status(ctx, m)
		if err == nil && st.Leader != 0 {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%s did not rejoin within %v: %v", m.Name, StartTimeout, err)
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
