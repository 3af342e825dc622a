package main

import (
	"fmt"
	"strings"
	"time"
)

// results is everything one run measured, ready to be reported.
type results struct {
	command    string
	date       time.Time
	goVersion  string
	platform   string
	gomaxprocs int
	numCPU     int
	etcd       string
	wall       time.Duration

	lat    *latencyResult
	load   *loadResult
	read   *readResult
	cas    *casResult
	fan    *fanoutResult
	fleet  *fleetResult
	change *changeResult

	baseline int
	leaks    []leakRecord
}

// Labels of the ratio rows.
const (
	ratioStrataRaw   = "ratio Strata / raw"
	ratioStrataKoanf = "ratio Strata / koanf"
	ratioBigRaw      = "ratio Strata with bigmap.Map / raw"
)

// markdown renders the report: a header line, then one table per section
// with ratio rows under the figures.
func (r *results) markdown(chart string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Strata benchmarks\n\n")
	w("`%s` · %s · %s %s · GOMAXPROCS=%d (NumCPU=%d) · etcd %s (embedded, in this process, loopback) · wall time %s\n\n",
		r.command, r.date.UTC().Format("2006-01-02 15:04 MST"), r.goVersion, r.platform, r.gomaxprocs, r.numCPU, r.etcd,
		r.wall.Round(time.Second))
	w("One run, one embedded etcd member started by the program (no fsync) sharing the process and its cores with " +
		"the clients, so absolute figures are those of this machine; the ratios are the point. Lower is better except commits/s.\n\n")

	if l := r.lat; l != nil {
		raw, st, ko := l.subject(latRaw), l.subject(latStrata), l.subject(latKoanf)
		w("## 1. Put-to-callback latency\n\n")
		w("%d sequential puts of `P/data/a` per subscriber after %d warm-up rounds; each subscriber watches its own prefix "+
			"on the same server; rounds are **interleaved** (one put per subscriber per round, the first one rotating). "+
			"Time from issuing the Put until the callback holds the new value (koanf: after its reload and Unmarshal).\n\n",
			l.n, l.warmup)
		w("| subscriber | p50 µs | p90 µs | p99 µs | max µs | callback errors |\n|---|---:|---:|---:|---:|---:|\n")
		for _, s := range []latencySubject{raw, st, ko} {
			w("| %s | %s | %s | %s | %s | %d |\n", s.name, us(s.lat.q(.5)), us(s.lat.q(.9)), us(s.lat.q(.99)), us(s.lat.max()), s.errors)
		}
		for _, x := range []struct {
			label string
			d     latencySubject
		}{{ratioStrataRaw, raw}, {ratioStrataKoanf, ko}} {
			w("| %s | %s | %s | %s | %s | |\n", x.label, ratio(st.lat.q(.5), x.d.lat.q(.5)), ratio(st.lat.q(.9), x.d.lat.q(.9)),
				ratio(st.lat.q(.99), x.d.lat.q(.99)), ratio(st.lat.max(), x.d.lat.max()))
		}
		if chart != "" {
			w("\n![put-to-callback latency CDF](%s)\n", chart)
		}
		w("\n")
	}

	if l := r.load; l != nil {
		w("## 2. Start-up load into a typed struct\n\n")
		w("`n` leaf keys `P/data/items/kNNNNN` loaded into `struct{ Items map[string]int }`. Subjects take turns within each run; " +
			"one untimed warm-up run; a garbage collection before each timed load, so that no subject pays for the garbage of the one before; median of the timed runs. Strata: `Load` with `WithWatch(false, false)` (read, merge, bind, " +
			"validate), then `Close`. koanf: `Load` into a fresh instance through its etcd provider (dialled once beforehand; " +
			"its keys stripped of the prefix and unflattened on `/`), then `Unmarshal`.\n\n")
		w("| loader |")
		for _, n := range l.sizes {
			w(" %s keys, median of %d, ms |", thousands(n), l.runs[n])
		}
		w("\n|---|%s\n", strings.Repeat("---:|", len(l.sizes)))
		for _, name := range []string{loadRaw, loadStrata, loadKoanf} {
			w("| %s |", name)
			for _, n := range l.sizes {
				w(" %s |", ms(l.median[name][n]))
			}
			w("\n")
		}
		for _, x := range []struct{ label, vs string }{{ratioStrataRaw, loadRaw}, {ratioStrataKoanf, loadKoanf}} {
			w("| %s |", x.label)
			for _, n := range l.sizes {
				w(" %s |", ratio(l.median[loadStrata][n], l.median[x.vs][n]))
			}
			w("\n")
		}
		w("\n")
	}

	if rd := r.read; rd != nil {
		w("## 3. Read cost\n\n")
		w("`testing.Benchmark` inside the program on a loaded `Small` (4 leaves). koanf's values come from etcd as text, so " +
			"`k.Int` parses on every call; the 2-goroutine rows use `RunParallel` (koanf's getters take a `sync.RWMutex` read lock). " +
			"The last row is what a typed snapshot costs koanf per read if you unmarshal on demand.\n\n")
		w("| getter | ns/op | allocs/op | B/op |\n|---|---:|---:|---:|\n")
		for _, x := range rd.rows {
			w("| %s | %.2f | %d | %d |\n", x.name, x.nsPerOp, x.allocsPerOp, x.bytesPerOp)
		}
		for _, x := range rd.rows {
			if x.vs == "" {
				continue
			}
			k, _ := rd.row(x.vs)
			w("| %s: %s vs %s | %s | | |\n", ratioStrataKoanf, x.name, k.name, ratioF(x.nsPerOp, k.nsPerOp))
		}
		w("\n")
	}

	if c := r.cas; c != nil {
		w("## 4. Compare-and-swap write throughput on one key\n\n")
		w("Each case increments one counter a fixed number of times, spread over the writers, on its own prefix. Raw: `Get`, then "+
			"`Txn(If ModRevision unchanged, Then Put n+1)`, retried at once on a lost race. Strata: `Writer.Update(c.N++)` with "+
			"`WithMaxAttempts(%d)`: takes the prefix from the writer's watched copy (it reads it for its first two writes and after a lost race), re-runs the mutation, validates, and commits the leaf, the version key and a "+
			"release record in one transaction, retrying after a jittered backoff (1 ms doubling to 100 ms). Attempts include commits. "+
			"Check: the counter's final value (and for Strata the release version) equals the number of successful commits.\n\n",
			casMaxAttempts)
		w("| writer | writers | commits | attempts | failed | commits/s | no lost update |\n|---|---:|---:|---:|---:|---:|---|\n")
		for _, x := range c.rows {
			check := fmt.Sprintf("ok (counter +%d)", x.final)
			if !x.lostCheck {
				check = fmt.Sprintf("**FAILED**: counter +%d after %d commits", x.final, x.commits)
			}
			w("| %s | %d | %d | %d | %d | %.0f | %s |\n", x.name, x.writers, x.commits, x.attempts, x.failed, x.perSecond(), check)
		}
		for _, n := range r.casWriters() {
			raw, _ := c.row(casRaw, n)
			st, _ := c.row(casStrata, n)
			w("| %s | %d | | | | %s | |\n", ratioStrataRaw, n, ratioF(st.perSecond(), raw.perSecond()))
		}
		if c.allChecksPass() {
			w("\nLost-update check: **PASS**: every counter equals its number of successful commits, and no increment failed.\n\n")
		} else {
			w("\nLost-update check: **FAIL**: see the rows above.\n\n")
		}
	}

	if f := r.fan; f != nil {
		w("## 5. Fan-out: %s watchers of one prefix on one client\n\n", thousands(f.instances))
		w("Raw: `Watch` + a goroutine each. Strata: `Load` + one `OnChange` each, all on ONE shared client. Memory: after GC, once a first "+
			"put reached every instance, against before they were created, divided by the instances; it includes the in-process etcd "+
			"server's state for each watcher (the raw row is that baseline). Latency: %d puts, from `Put` returning until the last "+
			"instance's callback saw the value (0 if all had already seen it).\n\n", f.puts)
		w("| watchers | heap B/instance | stack B/instance | goroutines/instance | create all ms | close all ms | put→all p50 ms | p99 ms | max ms |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range f.rows {
			w("| %s | %.0f | %.0f | %.1f | %s | %s | %s | %s | %s |\n", x.name, x.heapPerInst, x.stackPerInst, x.goroutinesPer,
				ms(x.start), ms(x.closeAll), ms(x.lat.q(.5)), ms(x.lat.q(.99)), ms(x.lat.max()))
		}
		raw, _ := f.row(fanRaw)
		st, _ := f.row(fanStrata)
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ratioStrataRaw, ratioF(st.heapPerInst, raw.heapPerInst),
			ratioF(st.stackPerInst, raw.stackPerInst), ratioF(st.goroutinesPer, raw.goroutinesPer), ratio(st.start, raw.start),
			ratio(st.closeAll, raw.closeAll), ratio(st.lat.q(.5), raw.lat.q(.5)), ratio(st.lat.q(.99), raw.lat.q(.99)),
			ratio(st.lat.max(), raw.lat.max()))
		w("\n")
	}

	if f := r.fleet; f != nil {
		r.fleetMarkdown(w)
	}

	if c := r.change; c != nil {
		r.changeMarkdown(w)
	}

	if r.lat != nil || r.load != nil || r.read != nil || r.change != nil { // the notes explain sections 1 to 3 and 7
		w("## Notes on koanf's etcd provider (providers/etcd/v2 v2.1.0)\n\n")
		w("- `Read` returns the etcd keys as they are (`\"/p/data/db/host\": \"...\"`), flat, although koanf's `Provider` contract " +
			"asks for a nested map: `k.String(\"db.host\")` and `Unmarshal` into a nested struct need an adapter (here: strip the " +
			"prefix, `maps.Unflatten` on `/`).\n")
		w("- `Watch` calls back once per event, not per revision: a transaction of k keys gives k callbacks, and the documented " +
			"reaction (a fresh `Load`) re-reads the whole prefix each time, so the cost per change grows with the prefix.\n")
		w("- The watch has no start revision and is created in a goroutine after `Watch` returns: changes between the initial " +
			"`Load` and the watch taking effect are lost (section 1 re-puts until each subscriber sees one). It is never resumed: " +
			"a closed channel (compaction, cancellation) ends it silently, and the callback never receives an error.\n")
		w("- It uses `context.Background()` and the provider has no `Close`: its own client (the provider cannot be given one) " +
			"and the watch goroutine live until the process ends; this program closes the client through reflection so that " +
			"the leak check holds. `DialTimeout` is also the timeout of every `Read`; left at zero, `Read` fails at once.\n\n")
	}

	w("## Leak check\n\n")
	ok := len(r.leaks) > 0
	var parts []string
	for _, l := range r.leaks {
		ok = ok && l.ok
		parts = append(parts, fmt.Sprintf("%s %d", l.section, l.goroutines))
	}
	verdict := "**ok**: back to the baseline after every section"
	if !ok {
		verdict = "**LEAK**: above the baseline after a section"
	}
	w("Goroutines after each section closed everything (baseline %d, with etcd and the shared client running): %s: %s.\n",
		r.baseline, strings.Join(parts, ", "), verdict)
	return b.String()
}

// casWriters lists the writer counts of section 4 in order.
func (r *results) casWriters() []int {
	var ns []int
	for _, x := range r.cas.rows {
		if len(ns) == 0 || ns[len(ns)-1] != x.writers {
			ns = append(ns, x.writers)
		}
	}
	return ns
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(a, b time.Duration) string { return ratioF(float64(a), float64(b)) }

func ratioF(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// ratioSmall is ratioF with three decimals below 0.1, so that a ratio of
// a few to a thousand does not read 0.00×.
func ratioSmall(a, b float64) string {
	if b != 0 && a/b < 0.1 {
		return fmt.Sprintf("%.3f×", a/b)
	}
	return ratioF(a, b)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Label of section 6's ratio row.
const ratioProxyDirect = "ratio proxy / direct"

// fleetMarkdown renders section 6.
func (r *results) fleetMarkdown(w func(string, ...any)) {
	f := r.fleet
	cmdline := func(args []string) string {
		return strings.ReplaceAll("etcd "+strings.Join(args, " "), f.dir, "$DIR")
	}
	w("## 6. A fleet: %s clients, one Config each, directly and through `etcd grpc-proxy`\n\n", thousands(f.instances))
	w("A real etcd %s server process and a real `etcd grpc-proxy` process in front of it, both run from the binary given by "+
		"`-etcd` (default: the output of `.ci/etcd-bin`), on loopback and on the same cores as this program:\n\n", f.etcdVersion)
	w("```sh\n%s\n%s\n```\n\n", cmdline(f.serverArgs), cmdline(f.proxyArgs))
	w("For each path, %s instances are created one after the other, each with its **own** `clientv3.Client` (its own gRPC "+
		"connection) and one `config.Load[Small](ctx, config.WithEtcd(cli, P))` with an `OnChange` subscriber, all on the same "+
		"prefix P (one prefix per path). The paths run one after the other, direct first, every client closed in between.\n\n",
		thousands(f.instances))
	w("- **Server watchers / streams**: the gauges `%s` and `%s` from the server's `/metrics`, once a first put reached every "+
		"instance (the proxy's own watches are included in both rows; before the clients the server had the counts in "+
		"parentheses).\n", mWatchers, mStreams)
	w("- **Client memory**: `HeapInuse` (and `HeapAlloc`) of this process after GC, once every instance saw a first put, " +
		"against before the clients were created, divided by the instances: the client, its connection and the Config. " +
		"The server and the proxy are other processes; their memory is not in these figures.\n")
	w("- **Latency**: %d puts of `P/data/a`, each issued on the server by one writer client (the same for both paths), "+
		"from issuing the Put until the last instance's `OnChange` saw the value; the next Put waits for that.\n", f.puts)
	nofile := "not checked on this OS"
	if f.nofile > 0 {
		nofile = fmt.Sprintf("%d (raised in-process with setrlimit when below %d, so that the etcd processes inherit it too)",
			f.nofile, fleetNoFile(f.instances))
	}
	w("- Open files: the soft limit was %s. The server's `--max-concurrent-streams` (default math.MaxUint32 per "+
		"connection) does not bind: each client opens one watch stream on its own connection, and the proxy's are coalesced.\n\n",
		nofile)
	w("| path | server watchers | server watch streams | heap in use KB/instance | heap alloc KB/instance " +
		"| goroutines/instance | create all s | close all ms | put→all p50 ms | p99 ms | max ms |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range f.rows {
		w("| %s | %.0f (%.0f) | %.0f (%.0f) | %.1f | %.1f | %.1f | %.2f | %s | %s | %s | %s |\n", x.name,
			x.watchers, x.baseWatchers, x.streams, x.baseStreams, x.heapInusePerInst/1024, x.heapAllocPerInst/1024,
			x.goroutinesPer, x.start.Seconds(), ms(x.closeAll), ms(x.lat.q(.5)), ms(x.lat.q(.99)), ms(x.lat.max()))
	}
	d, okD := f.row(fleetDirect)
	p, okP := f.row(fleetProxy)
	if okD && okP {
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ratioProxyDirect,
			ratioSmall(p.watchers, d.watchers), ratioSmall(p.streams, d.streams), ratioF(p.heapInusePerInst, d.heapInusePerInst),
			ratioF(p.heapAllocPerInst, d.heapAllocPerInst), ratioF(p.goroutinesPer, d.goroutinesPer), ratio(p.start, d.start),
			ratio(p.closeAll, d.closeAll), ratio(p.lat.q(.5), d.lat.q(.5)), ratio(p.lat.q(.99), d.lat.q(.99)),
			ratio(p.lat.max(), d.lat.max()))
	}
	var after []string
	for _, x := range f.rows {
		after = append(after, fmt.Sprintf("%s %.0f", x.name, x.afterWatchers))
	}
	w("\nServer watchers after the instances were closed: %s.\n\n", strings.Join(after, ", "))
}

// changeLimit is the bound issue #13 sets on section 7's Strata / raw ratio.
const changeLimit = 3.0

// changeMarkdown renders section 7.
func (r *results) changeMarkdown(w func(string, ...any)) {
	c := r.change
	raw, _ := c.subject(latRaw)
	st, _ := c.subject(latStrata)
	big, hasBig := c.subject(latStrataBig)
	ko, hasKoanf := c.subject(latKoanf)
	w("## 7. One-key change on a %s-key configuration\n\n", thousands(c.keys))
	w("Each subscriber has its own prefix P holding %s leaf keys `P/data/items/kNNNNN` = N on the same server (Strata binds "+
		"them to `struct{ Items map[string]int }` and, in its second row, to `struct{ Items bigmap.Map[int] }`; koanf to the "+
		"first), and gets %d warm-up and %d measured sequential puts of `P/data/%s`. "+
		"Raw and Strata take **turns of %d puts** each (which of them goes first rotates): put by put, as in section 1, the raw "+
		"rounds would pay for part of Strata's work on its %s-key snapshot (its garbage, its loop finishing after the callback) "+
		"and the ratio would look smaller than it is. Time from issuing the Put until the callback holds the new value: the raw "+
		"watch decodes its event; Strata applies the change and calls `OnChange`; koanf re-reads the whole prefix into a fresh "+
		"instance on every event and unmarshals it (its documented reaction), so it is **slow**: it runs alone after the others, "+
		"for the same warm-up and %d measured puts only. After the puts Strata's snapshots held all %s keys and the last value put.\n\n"+
		"A snapshot must never change, so a change to a Go map copies the whole map (%s entries here; the copy is made ahead, "+
		"on another goroutine, but it and its garbage cost CPU that the server and the next change share on this machine). "+
		"A `bigmap.Map` shares all but a few nodes with the map it came from. The same measure "+
		"as `BenchmarkChange10k` in `config/bench_test.go` (`go test -run XXX -bench Change10k ./config/`), which runs its "+
		"subjects one after the other.\n\n",
		thousands(c.keys), c.warmup, c.n, c.key, c.block, thousands(c.keys), c.koanfN, thousands(c.keys), thousands(c.keys))
	w("| subscriber | puts | p50 µs | p90 µs | p99 µs | max µs | callback errors |\n|---|---:|---:|---:|---:|---:|---:|\n")
	subjects := []latencySubject{raw, st}
	if hasBig {
		subjects = append(subjects, big)
	}
	if hasKoanf {
		subjects = append(subjects, ko)
	}
	for _, s := range subjects {
		w("| %s | %d | %s | %s | %s | %s | %d |\n", s.name, len(s.lat), us(s.lat.q(.5)), us(s.lat.q(.9)), us(s.lat.q(.99)),
			us(s.lat.max()), s.errors)
	}
	type vsRow struct {
		label string
		a, b  latencySubject
	}
	vs := []vsRow{{ratioStrataRaw, st, raw}}
	if hasBig {
		vs = append(vs, vsRow{ratioBigRaw, big, raw})
	}
	if hasKoanf {
		vs = append(vs, vsRow{ratioStrataKoanf, st, ko})
	}
	for _, x := range vs {
		w("| %s | | %s | %s | %s | %s | |\n", x.label, ratio(x.a.lat.q(.5), x.b.lat.q(.5)), ratio(x.a.lat.q(.9), x.b.lat.q(.9)),
			ratio(x.a.lat.q(.99), x.b.lat.q(.99)), ratio(x.a.lat.max(), x.b.lat.max()))
	}
	within := func(a, b time.Duration) string {
		if b > 0 && float64(a) <= changeLimit*float64(b) {
			return "within"
		}
		return "**above**"
	}
	w("\nIssue #13 asks for Strata at most %.0f× the raw watch event: with a Go map p50 %s (%s), p99 %s (%s)",
		changeLimit, ratio(st.lat.q(.5), raw.lat.q(.5)), within(st.lat.q(.5), raw.lat.q(.5)),
		ratio(st.lat.q(.99), raw.lat.q(.99)), within(st.lat.q(.99), raw.lat.q(.99)))
	if hasBig {
		w("; with a bigmap.Map p50 %s (%s), p99 %s (%s)", ratio(big.lat.q(.5), raw.lat.q(.5)), within(big.lat.q(.5), raw.lat.q(.5)),
			ratio(big.lat.q(.99), raw.lat.q(.99)), within(big.lat.q(.99), raw.lat.q(.99)))
	}
	w(".")
	if hasKoanf && len(ko.lat) > 0 && len(ko.lat) < 100 {
		w(" With %d puts, koanf's p99 is its maximum.", len(ko.lat))
	}
	w("\n\n")
}
