package main

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/etcdtest"
)

// TestChange runs section 7 with few keys and puts against an embedded
// etcd and checks what it reports: every subscriber saw every measured put
// with no callback error, koanf took part in its own rounds only, the
// section deleted its prefixes and closed its goroutines, and the rendered
// section has its rows and the bound. A second run without koanf
// and with fewer than 43 keys (the key put is then the last one) renders
// no koanf row.
func TestChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := etcdtest.Start(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cli, err := cluster.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Get(ctx, "/bench/"); err != nil { // the client's connection
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name                     string
		keys, puts, warmup, kPut int
		key                      string
	}{
		{"koanf", 500, 12, 2, 3, "items/k00042"},
		{"no-koanf", 20, 8, 1, 0, "items/k00019"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions(true)
			o.changeKeys, o.changePuts, o.changeWarmup, o.changeKoanf = tc.keys, tc.puts, tc.warmup, tc.kPut
			o.changeBlock = 5 // the last turn is a partial one
			b := &bench{opts: o, etcd: cluster, cli: cli, endpoints: cluster.Endpoints(), progress: io.Discard}
			g0 := runtime.NumGoroutine()
			res, err := measureChange(ctx, b)
			if err != nil {
				t.Fatal(err)
			}

			if res.keys != tc.keys || res.n != tc.puts || res.koanfN != tc.kPut || res.key != tc.key || res.block != 5 {
				t.Errorf("result keys %d, puts %d, koanf rounds %d, key %q; want %d, %d, %d, %q",
					res.keys, res.n, res.koanfN, res.key, tc.keys, tc.puts, tc.kPut, tc.key)
			}
			want := map[string]int{latRaw: tc.puts, latStrata: tc.puts, latStrataBig: tc.puts}
			if tc.kPut > 0 {
				want[latKoanf] = tc.kPut
			}
			if len(res.subjects) != len(want) {
				t.Errorf("%d subjects, want %d", len(res.subjects), len(want))
			}
			for name, n := range want {
				s, ok := res.subject(name)
				if !ok || len(s.lat) != n || s.lat.q(.5) <= 0 || s.errors != 0 {
					t.Errorf("%s: present %v, %d latencies (p50 %v), %d callback errors; want %d positive and no error",
						name, ok, len(s.lat), s.lat.q(.5), s.errors, n)
				}
			}

			// Cleaned up: the prefixes are gone, and so are the watches'
			// and the Config's goroutines.
			resp, err := cli.Get(ctx, changePrefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Count != 0 {
				t.Errorf("%d keys left under %s", resp.Count, changePrefix)
			}
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if g := runtime.NumGoroutine(); g > g0 {
				t.Errorf("%d goroutines after the section, %d before", g, g0)
			}

			// The rendered section.
			md := (&results{change: res}).markdown("")
			table := tableOf(t, md, "## 7.")
			rows := map[string]int{latRaw: 6, latStrata: 6, latStrataBig: 6, ratioStrataRaw: 4, ratioBigRaw: 4}
			if tc.kPut > 0 {
				rows[latKoanf], rows[ratioStrataKoanf] = 6, 4
			} else if len(table[latKoanf]) != 0 || len(table[ratioStrataKoanf]) != 0 {
				t.Errorf("section 7 without koanf has koanf rows: %q", md)
			}
			for row, numbers := range rows {
				if cells := table[row]; len(cells) != 1 || countNumbers(cells[0]) < numbers {
					t.Errorf("section 7: row %q: %q, want one with at least %d numeric cells", row, cells, numbers)
				}
			}
			for _, s := range []string{"Issue #13 asks for Strata at most 3×", "`P/data/" + tc.key + "`", "turns of 5 puts", "BenchmarkChange10k"} {
				if !strings.Contains(md, s) {
					t.Errorf("section 7 lacks %q:\n%s", s, md)
				}
			}
		})
	}
}
