// Command bench measures Strata beside raw etcd clientv3 and koanf's etcd
// provider, in one run, against an embedded etcd it starts on loopback:
//
//  1. put-to-callback latency (raw watch, Strata OnChange, koanf Watch);
//  2. start-up load of 1,000 and 10,000 leaf keys into a typed struct;
//  3. read cost of Strata's Get beside koanf's getters;
//  4. compare-and-swap write throughput with 1 and 4 writers, checking
//     that no update is lost;
//  5. fan-out: many Config instances on one client watching one prefix.
//
// It prints a markdown table and writes it to <out>/bench.md, with a CDF
// chart of (1) in <out>/bench-latency.png. It is a module of its own, so
// that its dependencies (gonum/plot, koanf) stay out of the library's
// go.mod; run it from its directory:
//
//	cd examples/bench
//	go run .                     # full run, a few minutes; writes ../../docs
//	go run . -quick              # small counts, well under a minute
//	go run . -n 5000 -out /tmp/bench
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 0, "sequential puts per subscriber in the latency section (default 2000, 100 with -quick)")
	out := flag.String("out", "../../docs", "directory for bench.md and bench-latency.png (default: the repository's docs, from examples/bench)")
	quick := flag.Bool("quick", false, "small counts for a smoke run")
	flag.Parse()

	o := defaultOptions(*quick)
	if *n > 0 {
		o.puts = *n
	}
	o.out = *out
	o.command = strings.TrimSpace("cd examples/bench && go run . " + strings.Join(os.Args[1:], " "))

	// Strata logs rejected values and the like at error level; there
	// should be none, so keep only those.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the counts of one run.
type options struct {
	puts, warmup int   // section 1
	loadSizes    []int // section 2
	runsSmall    int   // timed runs for fewer than 10,000 keys
	runsLarge    int   // timed runs for 10,000 keys or more
	casCommits   int   // section 4, per case
	casWriters   []int
	fanout       int // section 5: instances
	fanoutPuts   int
	benchTime    time.Duration // section 3's -test.benchtime; 0 keeps testing's 1s
	out, command string
	quick        bool
}

// defaultOptions returns the full run's counts, or the smoke run's.
func defaultOptions(quick bool) options {
	if quick {
		return options{puts: 100, warmup: 20, loadSizes: []int{1000}, runsSmall: 5, runsLarge: 3,
			casCommits: 200, casWriters: []int{1, 4}, fanout: 100, fanoutPuts: 10, benchTime: 200 * time.Millisecond,
			out: "../../docs", command: "cd examples/bench && go run . -quick", quick: true}
	}
	return options{puts: 2000, warmup: 100, loadSizes: []int{1000, 10000}, runsSmall: 10, runsLarge: 5,
		casCommits: 1000, casWriters: []int{1, 4}, fanout: 1000, fanoutPuts: 50,
		out: "../../docs", command: "cd examples/bench && go run ."}
}

func (o options) loadRuns(n int) int {
	if n >= 10000 {
		return o.runsLarge
	}
	return o.runsSmall
}
