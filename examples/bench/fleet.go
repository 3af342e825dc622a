package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/strataconf/strata/config"
)

// Section 6: a fleet of instances, each with its own etcd client (its own
// connection) and one Config, against a real etcd server process, first
// directly and then through a real `etcd grpc-proxy` process, which
// coalesces identical watches into one watch on the server.

// Server and proxy metrics the section reads.
const (
	mWatchers = "etcd_debugging_mvcc_watcher_total"      // gauge: watchers on the server
	mStreams  = "etcd_debugging_mvcc_watch_stream_total" // gauge: watch streams on the server
)

// The two paths of section 6.
const (
	fleetDirect = "direct to the server"
	fleetProxy  = "through etcd grpc-proxy"
)

// fleetResult holds section 6.
type fleetResult struct {
	instances, puts int
	etcdVersion     string
	nofile          uint64 // the soft limit of open files in force (0: unknown)
	serverArgs      []string
	proxyArgs       []string
	rows            []fleetRow

	// For the tests: the processes and temp directory, gone after the run.
	pids []int
	dir  string
}

// fleetRow is one path: n clients with a Config each.
type fleetRow struct {
	name string
	// Server gauges before the clients were created, with all of them
	// watching, and after all were closed.
	baseWatchers, baseStreams float64
	watchers, streams         float64
	afterWatchers             float64
	heapInusePerInst          float64 // bytes of HeapInuse after GC, per instance
	heapAllocPerInst          float64 // bytes of HeapAlloc after GC, per instance
	goroutinesPer             float64
	start, closeAll           time.Duration
	lat                       dist // Put issued → every instance's OnChange ran
}

// fleetNoFile is the open-file limit a fleet of n clients needs: the
// bench holds one connection per client and so does the process they
// connect to (server or proxy), plus slack for everything else.
func fleetNoFile(n int) uint64 { return uint64(n) + 1024 }

// measureFleet runs section 6: it starts the etcd server and proxy
// processes (stopped, and their temp directory removed, on every return),
// seeds one prefix per path, and runs fleetCase directly and through the
// proxy. logf reports progress.
func measureFleet(ctx context.Context, o options, logf func(string, ...any)) (res *fleetResult, err error) {
	res = &fleetResult{instances: o.fleet, puts: o.fleetPuts}
	if res.nofile, err = raiseNoFile(fleetNoFile(o.fleet)); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if o.etcdBin == "" {
		return nil, errors.New("fleet: no etcd binary: " + etcdHelp)
	}
	f, err := startFleetEtcd(ctx, o.etcdBin)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	res.dir, res.pids = f.dir, []int{f.server.cmd.Process.Pid, f.proxy.cmd.Process.Pid}
	res.serverArgs, res.proxyArgs = f.serverArgs, f.proxyArgs
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("fleet: stop etcd: %w", cerr))
		}
	}()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\netcd log ends:\n%s\ngrpc-proxy log ends:\n%s", err, f.server.tail(10), f.proxy.tail(10))
		}
	}()

	// The writer: one client on the server, for both paths (only the
	// instances' path differs).
	writer, err := newFleetClient(f.serverEndpoint)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, writer.Close()) }()
	st, err := writer.Status(ctx, f.serverEndpoint)
	if err != nil {
		return nil, fmt.Errorf("fleet: etcd status: %w", err)
	}
	res.etcdVersion = st.Version

	for _, name := range []string{fleetDirect, fleetProxy} {
		p, ep := "/bench/fleet/direct", f.serverEndpoint
		if name == fleetProxy {
			p, ep = "/bench/fleet/proxy", f.proxyEndpoint
		}
		if _, err := seed(ctx, writer, p, smallSeed); err != nil {
			return nil, err
		}
		logf("  fleet %s: %d clients on %s", name, o.fleet, ep)
		row, err := fleetCase(ctx, f, writer, ep, p, name, o.fleet, o.fleetPuts)
		if err != nil {
			return nil, fmt.Errorf("fleet %s: %w", name, err)
		}
		logf("  fleet %s: %.0f server watchers; put→all p50 %s ms, p99 %s ms; %.1f KB heap in use per instance",
			name, row.watchers, ms(row.lat.q(.5)), ms(row.lat.q(.99)), row.heapInusePerInst/1024)
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// newFleetClient returns a client of its own (its own gRPC connection) on
// endpoint, logging nothing.
func newFleetClient(endpoint string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("client on %s: %w", endpoint, err)
	}
	return cli, nil
}

// fleetCase creates n clients on endpoint, each with one Config on prefix
// p and an OnChange subscriber, and measures: the server's watcher and
// watch stream gauges once every instance has seen a first put; the
// client memory (after GC, against before the clients were created) per
// instance; and, over puts rounds, the time from issuing a Put (by writer,
// on the server) until the last instance's OnChange ran. Everything it
// created is closed before it returns.
func fleetCase(ctx context.Context, f *fleetEtcd, writer *clientv3.Client, endpoint, p, name string, n, puts int) (row fleetRow, err error) {
	row.name = name
	base, err := f.scrape(ctx, f.serverMetrics, mWatchers, mStreams)
	if err != nil {
		return row, err
	}
	row.baseWatchers, row.baseStreams = base[mWatchers], base[mStreams]

	var cur atomic.Pointer[fanRound]
	g0 := runtime.NumGoroutine()
	m0 := memNow()
	start := time.Now()
	clients := make([]*clientv3.Client, 0, n)
	cfgs := make([]*config.Config[Small], 0, n)
	closeAll := func() error {
		var errs []error
		for _, c := range cfgs {
			errs = append(errs, c.Close())
		}
		for _, c := range clients {
			errs = append(errs, c.Close())
		}
		return errors.Join(errs...)
	}
	defer func() {
		t := time.Now()
		err = errors.Join(err, closeAll())
		row.closeAll = time.Since(t)
		// The server's watchers, once the instances are gone (bounded).
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, serr := f.scrape(ctx, f.serverMetrics, mWatchers)
			if serr != nil {
				err = errors.Join(err, serr)
				return
			}
			row.afterWatchers = m[mWatchers]
			if row.afterWatchers <= row.baseWatchers || time.Now().After(deadline) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for i := range n {
		cli, err := newFleetClient(endpoint)
		if err != nil {
			return row, err
		}
		clients = append(clients, cli)
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := config.Load[Small](lctx, config.WithEtcd(cli, p))
		cancel()
		if err != nil {
			return row, fmt.Errorf("instance %d: %w", i, err)
		}
		c.OnChange(func(ch config.Change[Small]) { cur.Load().hit(ch.New.A) })
		cfgs = append(cfgs, c)
	}
	row.start = time.Since(start)

	// round puts v and returns the time from issuing the Put until every
	// instance's OnChange saw v.
	round := func(v int, timeout time.Duration) (time.Duration, error) {
		r := &fanRound{want: v, n: int64(n), done: make(chan struct{})}
		cur.Store(r)
		issued := time.Now()
		if _, err := writer.Put(ctx, p+"/data/a", itoa(v)); err != nil {
			return 0, err
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			return 0, fmt.Errorf("put %d: %d of %d instances saw it within %v", v, r.count.Load(), n, timeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return r.last.Sub(issued), nil
	}
	// Rounds until one reaches every instance: the watches are
	// established (a watch's creation is asynchronous) and warm.
	synced := false
	var lastErr error
	for v := 1; v <= 20 && !synced; v++ {
		_, lastErr = round(v, 5*time.Second)
		synced = lastErr == nil
	}
	if !synced {
		return row, fmt.Errorf("not every instance saw any of 20 puts (last: %v)", lastErr)
	}

	m1 := memNow()
	row.heapInusePerInst = (float64(m1.HeapInuse) - float64(m0.HeapInuse)) / float64(n)
	row.heapAllocPerInst = (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(n)
	row.goroutinesPer = float64(runtime.NumGoroutine()-g0) / float64(n)
	m, err := f.scrape(ctx, f.serverMetrics, mWatchers, mStreams)
	if err != nil {
		return row, err
	}
	row.watchers, row.streams = m[mWatchers], m[mStreams]

	var lat []time.Duration
	for i := range puts {
		d, err := round(100+i, 30*time.Second)
		if err != nil {
			return row, err
		}
		lat = append(lat, d)
	}
	row.lat = newDist(lat)
	return row, nil
}

// row returns the named row.
func (r *fleetResult) row(name string) (fleetRow, bool) {
	for _, x := range r.rows {
		if x.name == name {
			return x, true
		}
	}
	return fleetRow{}, false
}
