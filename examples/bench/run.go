package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/strataconf/strata/internal/etcdtest"
)

// Output files, relative to options.out.
const (
	reportFile = "bench.md"
	chartFile  = "bench-latency.png"
)

// run starts an embedded etcd, runs the five sections one after the other
// (each closes everything it opened; the goroutine count is checked after
// each), prints the markdown report to stdout and writes it and the chart
// to o.out. Progress goes to progress.
func run(ctx context.Context, o options, stdout, progress io.Writer) (err error) {
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "%7.1fs  "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	cluster, err := etcdtest.Start(sctx, 1)
	cancel()
	if err != nil {
		return err
	}
	defer cluster.Close()
	cli, err := cluster.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	b := &bench{opts: o, etcd: cluster, cli: cli, endpoints: cluster.Endpoints(), progress: progress}

	r := &results{command: o.command, date: time.Now(), goVersion: runtime.Version(),
		platform: runtime.GOOS + "/" + runtime.GOARCH, gomaxprocs: runtime.GOMAXPROCS(0), numCPU: runtime.NumCPU()}
	st, err := cli.Status(ctx, b.endpoints[0])
	if err != nil {
		return fmt.Errorf("etcd status: %w", err)
	}
	r.etcd = st.Version
	// Status dialled (and closed) a connection of its own; the client's
	// connection is made by its first request, so make it before counting.
	if _, err := cli.Get(ctx, "/bench/"); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // let the start-up goroutines settle
	b.baseline = runtime.NumGoroutine()
	logf("etcd %s at %v; %d goroutines", r.etcd, b.endpoints, b.baseline)

	logf("1/5 latency: %d puts (+%d warm-up) × 3 subscribers, interleaved", o.puts, o.warmup)
	if r.lat, err = measureLatency(ctx, b); err != nil {
		return err
	}
	b.settle("latency")
	logf("2/5 start-up load: %v keys", o.loadSizes)
	if r.load, err = measureLoad(ctx, b); err != nil {
		return err
	}
	b.settle("load")
	logf("3/5 read cost: testing.Benchmark × 7")
	if r.read, err = measureRead(ctx, b); err != nil {
		return err
	}
	b.settle("read")
	logf("4/5 CAS: %d commits × writers %v × 2", o.casCommits, o.casWriters)
	if r.cas, err = measureCAS(ctx, b); err != nil {
		return err
	}
	b.settle("cas")
	logf("5/5 fan-out: %d instances × 2, %d puts", o.fanout, o.fanoutPuts)
	if r.fan, err = measureFanout(ctx, b); err != nil {
		return err
	}
	b.settle("fan-out")
	r.baseline, r.leaks = b.baseline, b.leaks
	r.wall = time.Since(began)

	if err := latencyChart(r.lat, filepath.Join(o.out, chartFile)); err != nil {
		return err
	}
	md := r.markdown(chartFile)
	if _, err := io.WriteString(stdout, md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, reportFile), []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", filepath.Join(o.out, reportFile), filepath.Join(o.out, chartFile))
	return nil
}
