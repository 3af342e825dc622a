package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/strataconf/strata/config"
)

// readResult holds the getter costs of section 3.
type readResult struct {
	rows []readRow
}

// readRow is one getter measured with testing.Benchmark.
type readRow struct {
	name        string
	nsPerOp     float64
	allocsPerOp int64
	bytesPerOp  int64
	iterations  int
	vs          string // for a Strata row: the koanf row it is compared with
}

const (
	readStrataInt      = "Strata cfg.Get().A"
	readKoanfInt       = `koanf k.Int("a")`
	readStrataString   = "Strata cfg.Get().DB.Host"
	readKoanfString    = `koanf k.String("db.host")`
	readStrataParallel = "Strata cfg.Get().A, 2 goroutines"
	readKoanfParallel  = `koanf k.Int("a"), 2 goroutines`
	readKoanfUnmarshal = `koanf k.Unmarshal("", &Small{})`
)

// readSink keeps the compiler from dropping the benchmarked reads.
var readSink int

// measureRead benchmarks the getters on a loaded Small: Strata's Get (an
// atomic pointer load, then a field read) beside koanf's typed getters on
// an instance loaded through its etcd provider from an identical prefix.
// The parallel rows run GOMAXPROCS goroutines (testing.B.RunParallel);
// koanf's getters take a sync.RWMutex read lock, Strata's take none.
func measureRead(ctx context.Context, b *bench) (res *readResult, err error) {
	p := "/bench/read"
	if _, err := seed(ctx, b.cli, p, map[string]string{"a": "7", "name": "bench", "db/host": "db.internal", "db/port": "5432"}); err != nil {
		return nil, err
	}
	cfg, err := config.Load[Small](ctx, config.WithEtcd(b.cli, p), config.WithWatch(false, false))
	if err != nil {
		return nil, err
	}
	defer cfg.Close()
	kp, err := newKoanfEtcd(b.endpoints, p)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, kp.Close()) }()
	ko, err := kp.load()
	if err != nil {
		return nil, err
	}
	if cfg.Get().A != 7 || ko.Int("a") != 7 || cfg.Get().DB.Host != "db.internal" || ko.String("db.host") != "db.internal" {
		return nil, fmt.Errorf("read: Strata and koanf disagree: %+v vs %v", *cfg.Get(), ko.All())
	}

	serial := func(fn func() int) func(*testing.B) {
		return func(tb *testing.B) {
			tb.ReportAllocs()
			s := 0
			for tb.Loop() {
				s += fn()
			}
			readSink += s
		}
	}
	parallel := func(fn func() int) func(*testing.B) {
		return func(tb *testing.B) {
			tb.ReportAllocs()
			tb.RunParallel(func(pb *testing.PB) {
				s := 0
				for pb.Next() {
					s += fn()
				}
				if s == -1 {
					readSink++
				}
			})
		}
	}
	cases := []struct {
		name, vs string
		fn       func(*testing.B)
	}{
		{readStrataInt, readKoanfInt, serial(func() int { return cfg.Get().A })},
		{readKoanfInt, "", serial(func() int { return ko.Int("a") })},
		{readStrataString, readKoanfString, serial(func() int { return len(cfg.Get().DB.Host) })},
		{readKoanfString, "", serial(func() int { return len(ko.String("db.host")) })},
		{readStrataParallel, readKoanfParallel, parallel(func() int { return cfg.Get().A })},
		{readKoanfParallel, "", parallel(func() int { return ko.Int("a") })},
		{readKoanfUnmarshal, "", serial(func() int {
			var s Small
			if ko.Unmarshal("", &s) != nil {
				return -1
			}
			return s.A
		})},
	}
	if b.opts.benchTime > 0 {
		// testing.Benchmark reads its duration from the -test.benchtime
		// flag, registered by testing.Init (a no-op in a test binary).
		testing.Init()
		if err := flag.Set("test.benchtime", b.opts.benchTime.String()); err != nil {
			return nil, err
		}
	}
	res = &readResult{}
	for _, c := range cases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := testing.Benchmark(c.fn)
		if r.N == 0 {
			return nil, fmt.Errorf("read: benchmark %q did not run", c.name)
		}
		res.rows = append(res.rows, readRow{name: c.name, nsPerOp: float64(r.T.Nanoseconds()) / float64(r.N),
			allocsPerOp: r.AllocsPerOp(), bytesPerOp: r.AllocedBytesPerOp(), iterations: r.N, vs: c.vs})
	}
	return res, nil
}

// row returns the named row.
func (r *readResult) row(name string) (readRow, bool) {
	for _, x := range r.rows {
		if x.name == name {
			return x, true
		}
	}
	return readRow{}, false
}
