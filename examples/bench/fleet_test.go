package main

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testEtcdBin returns the etcd server binary for the tests: the path in
// STRATA_ETCD_BIN (.ci/run sets it; a broken one fails the test), else the
// output of the repository's .ci/etcd-bin (which builds etcd the first
// time; not under -short). It skips the test when there is none.
func testEtcdBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STRATA_ETCD_BIN"); p != "" {
		bin, err := findEtcd(p, io.Discard)
		if err != nil {
			t.Fatalf("STRATA_ETCD_BIN: %v", err)
		}
		return bin
	}
	if testing.Short() {
		t.Skip("no etcd server binary: STRATA_ETCD_BIN is not set, and -short does not run .ci/etcd-bin (which may build one)")
	}
	bin, err := findEtcd("", os.Stderr)
	if err != nil {
		t.Skipf("no etcd server binary (set STRATA_ETCD_BIN or run .ci/etcd-bin): %v", err)
	}
	return bin
}

// TestFleet runs section 6 with 5 clients per path against real etcd and
// grpc-proxy processes and checks what it reports: every client put a
// watcher on the server directly, the proxy coalesced them, every put
// reached every instance, the memory is positive, and afterwards the
// processes, their temp directory and the goroutines are gone. It also
// checks the rendered section.
func TestFleet(t *testing.T) {
	bin := testEtcdBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n, puts = 5, 5
	o := defaultOptions(true)
	o.fleet, o.fleetPuts, o.etcdBin = n, puts, bin
	g0 := runtime.NumGoroutine()
	res, err := measureFleet(ctx, o, t.Logf)
	if err != nil {
		t.Fatal(err)
	}

	d, okD := res.row(fleetDirect)
	p, okP := res.row(fleetProxy)
	if !okD || !okP {
		t.Fatalf("rows %+v, want %q and %q", res.rows, fleetDirect, fleetProxy)
	}
	if got := d.watchers - d.baseWatchers; got < n {
		t.Errorf("direct: %v server watchers above the baseline %v, want at least one per client (%d)", got, d.baseWatchers, n)
	}
	if got := p.watchers - p.baseWatchers; got < 1 || got >= n {
		t.Errorf("through the proxy: %v server watchers above the baseline %v, want at least 1 and fewer than the %d clients", got, p.baseWatchers, n)
	}
	for _, x := range res.rows {
		if len(x.lat) != puts || x.lat.q(.5) <= 0 {
			t.Errorf("%s: %d latencies (p50 %v), want %d positive", x.name, len(x.lat), x.lat.q(.5), puts)
		}
		// HeapInuse moves by whole spans: with a handful of clients it can
		// even fall. HeapAlloc counts the instances' live objects.
		if x.heapAllocPerInst <= 0 || x.goroutinesPer < 1 {
			t.Errorf("%s: heap allocated %v B and %v goroutines per instance, want positive and at least 1", x.name, x.heapAllocPerInst, x.goroutinesPer)
		}
		if x.afterWatchers > x.baseWatchers {
			t.Errorf("%s: %v server watchers after closing, want the baseline %v", x.name, x.afterWatchers, x.baseWatchers)
		}
	}

	// Cleaned up: the processes have exited, the temp directory is gone,
	// and so are the clients' goroutines.
	for _, pid := range res.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("etcd process %d: kill -0 says %v, want it gone", pid, err)
		}
	}
	if _, err := os.Stat(res.dir); !os.IsNotExist(err) {
		t.Errorf("temp directory %s: %v, want it removed", res.dir, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Errorf("%d goroutines after the section, %d before", g, g0)
	}

	// The rendered section: both rows and the ratio row, with numbers.
	md := (&results{fleet: res}).markdown("")
	table := tableOf(t, md, "## 6.")
	for _, row := range []string{fleetDirect, fleetProxy, ratioProxyDirect} {
		if cells := table[row]; len(cells) != 1 || countNumbers(cells[0]) < 7 {
			t.Errorf("section 6: row %q: %q, want one with at least 7 numeric cells", row, cells)
		}
	}
	for _, want := range []string{"etcd grpc-proxy start --endpoints", "--listen-metrics-urls", mWatchers} {
		if !strings.Contains(md, want) {
			t.Errorf("section 6 lacks %q:\n%s", want, md)
		}
	}
}

// TestFindEtcdMissing: a missing binary fails with a message that says how
// to get one.
func TestFindEtcdMissing(t *testing.T) {
	_, err := findEtcd("/nonexistent/etcd", io.Discard)
	if err == nil || !strings.Contains(err.Error(), ".ci/etcd-bin") || !strings.Contains(err.Error(), "-sections") {
		t.Fatalf("findEtcd of a missing binary: %v, want an error naming .ci/etcd-bin and -sections", err)
	}
}

// TestParseSections: names, "all", and an unknown name.
func TestParseSections(t *testing.T) {
	m, err := parseSections("fleet, latency")
	if err != nil || len(m) != 2 || !m["fleet"] || !m["latency"] {
		t.Errorf("parseSections(fleet, latency) = %v, %v", m, err)
	}
	if m, err := parseSections("all"); err != nil || len(m) != len(allSections) {
		t.Errorf("parseSections(all) = %v, %v", m, err)
	}
	if _, err := parseSections("fleet,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("parseSections(fleet,nope) = %v, want an error naming nope", err)
	}
}
