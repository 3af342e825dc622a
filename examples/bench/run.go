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

// run starts an embedded etcd, runs the selected sections one after the
// other (each closes everything it opened; the goroutine count is checked
// after each), prints the markdown report to stdout and, unless o.out is
// empty, writes it and the chart (when section 1 ran) to o.out. Progress
// goes to progress.
func run(ctx context.Context, o options, stdout, progress io.Writer) (err error) {
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "%7.1fs  "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return err
		}
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

	steps := []struct {
		name string
		what string
		run  func() error
	}{
		{"latency", fmt.Sprintf("latency: %d puts (+%d warm-up) × 3 subscribers, interleaved", o.puts, o.warmup),
			func() (err error) { r.lat, err = measureLatency(ctx, b); return err }},
		{"load", fmt.Sprintf("start-up load: %v keys", o.loadSizes),
			func() (err error) { r.load, err = measureLoad(ctx, b); return err }},
		{"read", "read cost: testing.Benchmark × 7",
			func() (err error) { r.read, err = measureRead(ctx, b); return err }},
		{"cas", fmt.Sprintf("CAS: %d commits × writers %v × 2", o.casCommits, o.casWriters),
			func() (err error) { r.cas, err = measureCAS(ctx, b); return err }},
		{"fanout", fmt.Sprintf("fan-out: %d instances × 2, %d puts", o.fanout, o.fanoutPuts),
			func() (err error) { r.fan, err = measureFanout(ctx, b); return err }},
		{"fleet", fmt.Sprintf("fleet: %d clients × (direct, grpc-proxy), %d puts; etcd processes from %s", o.fleet, o.fleetPuts, o.etcdBin),
			func() (err error) { r.fleet, err = measureFleet(ctx, o, logf); return err }},
		{"change", fmt.Sprintf("one-key change on %d keys: %d puts (+%d warm-up) × raw and Strata in turns of %d, then koanf × %d",
			o.changeKeys, o.changePuts, o.changeWarmup, o.changeBlock, min(o.changeKoanf, o.changePuts)),
			func() (err error) { r.change, err = measureChange(ctx, b); return err }},
	}
	for i, s := range steps {
		if !o.sections[s.name] {
			continue
		}
		logf("%d/%d %s", i+1, len(steps), s.what)
		if err := s.run(); err != nil {
			return err
		}
		label := s.name
		if label == "fanout" {
			label = "fan-out" // as the leak check has always said
		}
		b.settle(label)
	}
	r.baseline, r.leaks = b.baseline, b.leaks
	r.wall = time.Since(began)

	chart := ""
	if r.lat != nil && o.out != "" {
		chart = chartFile
		if err := latencyChart(r.lat, filepath.Join(o.out, chartFile)); err != nil {
			return err
		}
	}
	md := r.markdown(chart)
	if _, err := io.WriteString(stdout, md); err != nil {
		return err
	}
	if o.out == "" {
		logf("some sections only and no -out: the report is on stdout only")
		return nil
	}
	if err := os.WriteFile(filepath.Join(o.out, reportFile), []byte(md), 0o644); err != nil {
		return err
	}
	if chart != "" {
		logf("wrote %s and %s", filepath.Join(o.out, reportFile), filepath.Join(o.out, chartFile))
	} else {
		logf("wrote %s", filepath.Join(o.out, reportFile))
	}
	return nil
}
