// Command bench measures Strata beside raw etcd clientv3 and koanf's etcd
// provider, in one run, against an embedded etcd it starts on loopback:
//
//  1. put-to-callback latency (raw watch, Strata OnChange, koanf Watch);
//  2. start-up load of 1,000 and 10,000 leaf keys into a typed struct;
//  3. read cost of Strata's Get beside koanf's getters;
//  4. compare-and-swap write throughput with 1 and 4 writers, checking
//     that no update is lost;
//  5. fan-out: many Config instances on one client watching one prefix;
//  6. a fleet: many clients (one per simulated instance, one Config each)
//     on a real etcd server process, directly and through a real
//     `etcd grpc-proxy` process (-etcd names the binary; see fleet.go);
//  7. a one-key change on a 10,000-key configuration, put to callback (raw
//     watch, Strata OnChange, koanf Watch + reload; see change.go).
//
// -sections picks sections by name (latency, load, read, cas, fanout,
// fleet, change); all run by default. It prints a markdown table and
// writes it to <out>/bench.md, with a CDF chart of (1) in
// <out>/bench-latency.png. A run of some sections only writes nothing
// unless -out is given, so that it never replaces the full report in docs/
// with a partial one. It is a module of its own, so that its dependencies
// (gonum/plot, koanf) stay out of the library's go.mod; run it from its
// directory:
//
//	cd examples/bench
//	go run .                     # full run, a few minutes; writes ../../docs
//	go run . -quick              # small counts, well under a minute
//	go run . -n 5000 -out /tmp/bench
//	go run . -sections fleet     # the fleet section only (report on stdout)
//	go run . -sections latency,load,read,cas,fanout,change   # all but the fleet
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 0, "sequential puts per subscriber in the latency section (default 2000, 100 with -quick)")
	out := flag.String("out", "../../docs", "directory for bench.md and bench-latency.png (default: the repository's docs, from examples/bench)")
	quick := flag.Bool("quick", false, "small counts for a smoke run")
	sections := flag.String("sections", "all", "comma-separated sections to run: "+strings.Join(allSections, ", ")+" (or all)")
	fleet := flag.Int("fleet", 0, "instances (clients) in the fleet section (default 1000, 20 with -quick)")
	etcdBin := flag.String("etcd", "", "etcd server binary for the fleet section (default: $STRATA_ETCD_BIN, else the output of the repository's .ci/etcd-bin)")
	flag.Parse()

	o := defaultOptions(*quick)
	if *n > 0 {
		o.puts = *n
	}
	if *fleet > 0 {
		o.fleet = *fleet
	}
	o.out = *out
	var err error
	if o.sections, err = parseSections(*sections); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if !o.all() && !outSet {
		o.out = "" // a partial report goes to stdout only
	}
	if o.sections["fleet"] {
		// Resolved first, so that a missing binary fails the run at once.
		if o.etcdBin, err = findEtcd(*etcdBin, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	o.command = strings.TrimSpace("cd examples/bench && go run . " + strings.Join(os.Args[1:], " "))

	// Strata logs rejected values and the like at error level; there
	// should be none, so keep only those.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	// Interrupted or terminated, the sections still close what they
	// opened (the fleet section's etcd processes and temp directory).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	fleet        int // section 6: instances, each with its own client
	fleetPuts    int
	etcdBin      string          // section 6: the etcd server binary
	changeKeys   int             // section 7: leaf keys per prefix
	changePuts   int             // section 7: measured puts per subscriber
	changeWarmup int             // section 7: warm-up puts
	changeBlock  int             // section 7: puts per subscriber per turn
	changeKoanf  int             // section 7: measured puts of koanf (it reloads the whole prefix)
	sections     map[string]bool // the sections to run
	benchTime    time.Duration   // section 3's -test.benchtime; 0 keeps testing's 1s
	out, command string
	quick        bool
}

// defaultOptions returns the full run's counts, or the smoke run's.
func defaultOptions(quick bool) options {
	if quick {
		return options{puts: 100, warmup: 20, loadSizes: []int{1000}, runsSmall: 5, runsLarge: 3,
			casCommits: 200, casWriters: []int{1, 4}, fanout: 100, fanoutPuts: 10, fleet: 20, fleetPuts: 10,
			changeKeys: 1000, changePuts: 30, changeWarmup: 5, changeBlock: 10, changeKoanf: 10,
			benchTime: 200 * time.Millisecond, sections: sectionSet(allSections...), out: "../../docs", command: "cd examples/bench && go run . -quick", quick: true}
	}
	return options{puts: 2000, warmup: 100, loadSizes: []int{1000, 10000}, runsSmall: 30, runsLarge: 15,
		casCommits: 1000, casWriters: []int{1, 4}, fanout: 1000, fanoutPuts: 50, fleet: 1000, fleetPuts: 100,
		changeKeys: 10000, changePuts: 500, changeWarmup: 20, changeBlock: 50, changeKoanf: 50,
		sections: sectionSet(allSections...), out: "../../docs", command: "cd examples/bench && go run ."}
}

func (o options) loadRuns(n int) int {
	if n >= 10000 {
		return o.runsLarge
	}
	return o.runsSmall
}

// allSections names the sections in the order they run.
var allSections = []string{"latency", "load", "read", "cas", "fanout", "fleet", "change"}

func sectionSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// parseSections parses -sections: "all" or a comma-separated list of
// section names.
func parseSections(s string) (map[string]bool, error) {
	if strings.TrimSpace(s) == "all" {
		return sectionSet(allSections...), nil
	}
	m := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(allSections, n) {
			return nil, fmt.Errorf("-sections: unknown section %q (sections: %s, or all)", n, strings.Join(allSections, ", "))
		}
		m[n] = true
	}
	return m, nil
}

// all reports whether every section runs.
func (o options) all() bool {
	for _, n := range allSections {
		if !o.sections[n] {
			return false
		}
	}
	return true
}
