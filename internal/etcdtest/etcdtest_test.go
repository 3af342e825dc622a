package etcdtest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/internal/etcdtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleMemberPutGet(t *testing.T) {
	c := etcdtest.New(t)
	if len(c.Members) != 1 {
		t.Fatalf("members = %d, want 1", len(c.Members))
	}
	m := c.Members[0]
	if !m.Running() || m.ID() == 0 {
		t.Fatalf("member running=%v id=%x", m.Running(), m.ID())
	}
	eps := c.Endpoints()
	if len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") || eps[0] != m.ClientURL() {
		t.Fatalf("endpoints = %q, member URL %q", eps, m.ClientURL())
	}
	ctx := ctxT(t)
	cli := c.Client(t)
	put, err := cli.Put(ctx, "/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("get /a = %v", resp.Kvs)
	}
	if got := c.Revision(t); got != put.Header.Revision {
		t.Fatalf("Revision = %d, want %d", got, put.Header.Revision)
	}
	hresp, err := http.Get(m.HTTPURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/health: %s", m.HTTPURL(), hresp.Status)
	}
	http.DefaultClient.CloseIdleConnections() // for goleak
	if lead := c.Leader(t); lead != m {
		t.Fatalf("leader = %v, want the only member", lead.Name)
	}
}

func TestClusterReplicates(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	ctx := ctxT(t)
	ids := map[uint64]bool{}
	for _, m := range c.Members {
		ids[m.ID()] = true
	}
	if len(ids) != 3 || ids[0] {
		t.Fatalf("member IDs not distinct and non-zero: %v", ids)
	}
	if _, err := c.ClientFor(t, c.Members[0]).Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}
	// A linearizable read through another member sees the write.
	resp, err := c.ClientFor(t, c.Members[2]).Get(ctx, "/k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get /k via %s = %v", c.Members[2].Name, resp.Kvs)
	}
	// And the third member applies it too.
	waitValue(t, c.ClientFor(t, c.Members[1]), "/k", "v")
}

// waitValue polls a serializable (member-local) read until key has want.
func waitValue(t *testing.T, cli *clientv3.Client, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Get(ctx, key, clientv3.WithSerializable())
		cancel()
		if err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serializable get %s via %v: resp=%v err=%v, want %q", key, cli.Endpoints(), resp, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopLeaderRestart(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	ctx := ctxT(t)
	cli := c.Client(t)
	if _, err := cli.Put(ctx, "/k", "1"); err != nil {
		t.Fatal(err)
	}

	// A watch on all endpoints must survive the loss of any one member.
	wch := cli.Watch(ctx, "/w", clientv3.WithPrefix())
	// A watch held on the leader itself must not slow its Stop down.
	lead := c.Leader(t)
	leadCli := c.ClientFor(t, lead)
	leadWatch := leadCli.Watch(ctx, "/w", clientv3.WithPrefix())
	if _, err := leadCli.Put(ctx, "/w/0", "x"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, wch, "/w/0")
	expectEvent(t, leadWatch, "/w/0")
	id := lead.ID()

	start := time.Now()
	lead.Stop(t)
	stopTook := time.Since(start)
	t.Logf("stopping the leader with an open watch took %v", stopTook)
	if stopTook > 3*time.Second {
		t.Errorf("Stop took %v: open streams delayed it", stopTook)
	}
	if lead.Running() {
		t.Fatal("stopped leader still running")
	}
	lead.Stop(t) // no-op

	newLead := c.Leader(t)
	if newLead == lead {
		t.Fatalf("leader is still the stopped member %s", lead.Name)
	}
	for i := range 3 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/w/%d", i+1), "y"); err != nil {
			t.Fatalf("put with %s stopped: %v", lead.Name, err)
		}
	}
	expectEvent(t, wch, "/w/1")
	if _, err := cli.Put(ctx, "/k", "2"); err != nil {
		t.Fatal(err)
	}

	start = time.Now()
	lead.Restart(t)
	t.Logf("restart took %v", time.Since(start))
	if !lead.Running() || lead.ID() != id {
		t.Fatalf("after restart running=%v id=%x want %x", lead.Running(), lead.ID(), id)
	}
	if err := lead.RestartErr(ctx); err == nil {
		t.Fatal("restarting a running member: no error")
	}
	// The restarted member catches up: its own (serializable) read sees
	// the write made while it was down, through a new client and through
	// the one that was connected to it before the stop.
	waitValue(t, c.ClientFor(t, lead), "/k", "2")
	start = time.Now()
	waitValue(t, leadCli, "/k", "2")
	t.Logf("old client reconnected in %v", time.Since(start))
}

func expectEvent(t *testing.T, wch clientv3.WatchChan, key string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case resp, ok := <-wch:
			if !ok {
				t.Fatalf("watch closed while waiting for %s", key)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch error while waiting for %s: %v", key, err)
			}
			for _, ev := range resp.Events {
				if string(ev.Kv.Key) == key {
					return
				}
			}
		case <-timeout:
			t.Fatalf("no watch event for %s", key)
		}
	}
}

func TestCompact(t *testing.T) {
	c := etcdtest.New(t)
	ctx := ctxT(t)
	cli := c.Client(t)
	first, err := cli.Put(ctx, "/c", "1")
	if err != nil {
		t.Fatal(err)
	}
	old := first.Header.Revision
	if _, err := cli.Put(ctx, "/c", "2"); err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Get(ctx, "/c", clientv3.WithRev(old)); err != nil || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("get at %d before compaction: %v %v", old, resp, err)
	}
	c.Compact(t, 0)
	_, err = cli.Get(ctx, "/c", clientv3.WithRev(old))
	if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get at %d after compaction: err = %v, want %v", old, err, rpctypes.ErrCompacted)
	}
	resp, err := cli.Get(ctx, "/c")
	if err != nil || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("get latest after compaction: %v %v", resp, err)
	}
}

func TestCompactAtRevision(t *testing.T) {
	c := etcdtest.New(t)
	ctx := ctxT(t)
	cli := c.Client(t)
	var revs []int64
	for i := range 3 {
		r, err := cli.Put(ctx, "/c", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.Header.Revision)
	}
	c.Compact(t, revs[1])
	if _, err := cli.Get(ctx, "/c", clientv3.WithRev(revs[0])); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get below the compaction: err = %v", err)
	}
	if resp, err := cli.Get(ctx, "/c", clientv3.WithRev(revs[1])); err != nil || string(resp.Kvs[0].Value) != "1" {
		t.Fatalf("get at the compaction revision: %v %v", resp, err)
	}
}

// TestStartClose starts and closes clusters without a testing.TB, and checks
// that nothing is left behind: no goroutine, no directory.
func TestStartClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, n := range []int{1, 3} {
		ctx := ctxT(t)
		c, err := etcdtest.Start(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		dir := c.Members[0].Dir()
		cli, err := c.NewClient()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "/s", "1"); err != nil {
			t.Fatal(err)
		}
		// An open watch must not hold Close up, even before the client
		// is closed.
		if resp := <-cli.Watch(ctx, "/s", clientv3.WithCreatedNotify()); !resp.Created {
			t.Fatalf("watch not created: %v", resp.Err())
		}
		start := time.Now()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d member(s): close with an open watch took %v", n, time.Since(start))
		if time.Since(start) > 3*time.Second {
			t.Errorf("close took %v", time.Since(start))
		}
		cli.Close()
		if err := c.Close(); err != nil { // idempotent
			t.Fatalf("second close: %v", err)
		}
		for _, m := range c.Members {
			if m.Running() {
				t.Fatalf("%s running after Close", m.Name)
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("data dir %s left behind: %v", dir, err)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	dir := t.TempDir()
	c := etcdtest.New(t, etcdtest.WithDir(dir)) // closed again on cleanup
	m := c.Members[0]
	if !strings.HasPrefix(m.Dir(), dir) {
		t.Fatalf("member dir %s not under %s", m.Dir(), dir)
	}
	for range 3 {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m.Running() {
		t.Fatal("running after Close")
	}
	if _, err := os.Stat(m.Dir()); err != nil {
		t.Fatalf("WithDir data removed by Close: %v", err)
	}
	m.Stop(t) // stopping a closed member is a no-op
}

func TestWithConfig(t *testing.T) {
	const quota = 64 << 20
	c := etcdtest.New(t, etcdtest.WithConfig(func(cfg *embed.Config) {
		cfg.QuotaBackendBytes = quota
	}))
	if got := c.Members[0].Etcd().Config().QuotaBackendBytes; got != quota {
		t.Fatalf("quota = %d", got)
	}
}

func TestStartError(t *testing.T) {
	_, err := etcdtest.Start(context.Background(), 1, etcdtest.WithConfig(func(cfg *embed.Config) {
		cfg.TickMs, cfg.ElectionMs = 100, 100 // invalid: election < 5 ticks
	}))
	if err == nil {
		t.Fatal("no error for an invalid config")
	}
	if _, err := etcdtest.Start(context.Background(), 0); err == nil {
		t.Fatal("no error for 0 members")
	}
}

func TestKillLeader(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	ctx := ctxT(t)
	cli := c.Client(t)
	lead := c.Leader(t)
	lead.Kill(t)
	if lead.Running() {
		t.Fatal("killed member still running")
	}
	if newLead := c.Leader(t); newLead == lead {
		t.Fatal("killed member is still the leader")
	}
	if _, err := cli.Put(ctx, "/k", "after-kill"); err != nil {
		t.Fatal(err)
	}
	lead.Restart(t)
	waitValue(t, c.ClientFor(t, lead), "/k", "after-kill")
}

func TestDropClientConnections(t *testing.T) {
	c := etcdtest.New(t)
	ctx := ctxT(t)
	cli := c.Client(t)
	wch := cli.Watch(ctx, "/d", clientv3.WithPrefix())
	if _, err := cli.Put(ctx, "/d/1", "x"); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, wch, "/d/1")
	c.Members[0].DropClientConnections()
	// A write racing the drop may fail with codes.Unavailable (clientv3 does
	// not retry a Put that may have reached the server); the next ones
	// succeed once the client has reconnected.
	var err error
	for range 50 {
		if _, err = cli.Put(ctx, "/d/2", "x"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The watch resumes where it was.
	expectEvent(t, wch, "/d/2")
}

func TestRestartAfterClose(t *testing.T) {
	c := etcdtest.New(t)
	m := c.Members[0]
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.RestartErr(context.Background()); err == nil {
		t.Fatal("restart after Close: no error")
	}
}

func TestTLS(t *testing.T) {
	c := etcdtest.NewCluster(t, 3,
		etcdtest.WithConfig(func(cfg *embed.Config) {
			cfg.ClientAutoTLS = true
			cfg.PeerAutoTLS = true
		}),
		etcdtest.WithClientConfig(func(cfg *clientv3.Config) {
			cfg.TLS = &tls.Config{InsecureSkipVerify: true}
		}))
	for _, m := range c.Members {
		if !strings.HasPrefix(m.ClientURL(), "https://") || !strings.HasPrefix(m.PeerURL(), "https://") {
			t.Fatalf("%s: URLs %s %s, want https", m.Name, m.ClientURL(), m.PeerURL())
		}
	}
	ctx := ctxT(t)
	if _, err := c.ClientFor(t, c.Members[0]).Put(ctx, "/tls", "1"); err != nil {
		t.Fatal(err)
	}
	waitValue(t, c.ClientFor(t, c.Members[2]), "/tls", "1")
	c.Compact(t, 0)
	if c.Revision(t) < 2 {
		t.Fatal("revision")
	}
}

// TestStopIsGraceful checks that a graceful Stop of a follower does not fail
// the calls of a client that has other endpoints, and that its watch
// carries on. (A leader's Stop can: etcd drops the proposals that followers
// forward to it while it hands its leadership over, and those writes time
// out after the request timeout, about 5.5 s.)
func TestStopIsGraceful(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	ctx := ctxT(t)
	cli := c.Client(t)
	wch := cli.Watch(ctx, "/g/", clientv3.WithPrefix())

	stop := make(chan struct{})
	done := make(chan error, 1)
	var puts int
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := cli.Put(pctx, fmt.Sprintf("/g/%d", puts), "v")
			cancel()
			if err != nil {
				done <- fmt.Errorf("put %d: %w", puts, err)
				return
			}
			puts++
		}
	}()
	for range 2 {
		for _, m := range c.Followers(t) {
			time.Sleep(30 * time.Millisecond)
			m.Stop(t)
			time.Sleep(30 * time.Millisecond)
			m.Restart(t)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d puts", puts)
	expectEvent(t, wch, fmt.Sprintf("/g/%d", puts-1))
}

// TestParallelClusters runs clusters side by side, as parallel tests of other
// packages will.
func TestParallelClusters(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			c := etcdtest.NewCluster(t, 3)
			ctx := ctxT(t)
			cli := c.Client(t)
			f := c.Followers(t)[0]
			f.Stop(t)
			if _, err := cli.Put(ctx, "/p", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			f.Restart(t)
			waitValue(t, c.ClientFor(t, f), "/p", fmt.Sprint(i))
		})
	}
}
