package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// fanoutResult holds section 5.
type fanoutResult struct {
	instances, puts int
	rows            []fanoutRow
}

// fanoutRow is one kind of watcher, many instances of it on one client.
type fanoutRow struct {
	name            string
	heapPerInst     float64 // bytes of HeapAlloc after GC, per instance
	stackPerInst    float64 // bytes of StackInuse, per instance
	goroutinesPer   float64
	start, closeAll time.Duration // creating / closing all instances
	lat             dist          // Put returned → all callbacks saw it
	early           int           // rounds where all had seen it before Put returned
}

const (
	fanRaw    = "raw clientv3 watches"
	fanStrata = "Strata Config instances"
)

// fanRound is one put awaited by every instance.
type fanRound struct {
	want  int
	n     int64
	count atomic.Int64
	last  time.Time // set by the callback completing the round, before done closes
	done  chan struct{}
}

func (r *fanRound) hit(v int) {
	if r == nil || v != r.want {
		return
	}
	if r.count.Add(1) == r.n {
		r.last = time.Now()
		close(r.done)
	}
}

// measureFanout starts opts.fanout watchers of one prefix on ONE shared
// client (a fresh one, closed at the end), first as raw clientv3 watches
// (a goroutine each, decoding the event), then as Strata Configs (Load with
// the etcd layer and one OnChange subscriber each). For each it reports
// the heap and stack per instance (after GC, after a first put reached
// every instance, against before they were created) and the time from a
// Put returning until every instance's callback saw the new value.
//
// etcd runs in this process, so the per-instance memory includes the
// server's state for one watcher; the raw row measures that baseline.
func measureFanout(ctx context.Context, b *bench) (res *fanoutResult, err error) {
	cli, err := b.etcd.NewClient()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cli.Close()) }()
	res = &fanoutResult{instances: b.opts.fanout, puts: b.opts.fanoutPuts}
	for _, name := range []string{fanRaw, fanStrata} {
		p := map[string]string{fanRaw: "/bench/fanout/raw", fanStrata: "/bench/fanout/strata"}[name]
		row, err := fanoutCase(ctx, cli, p, name, res.instances, res.puts)
		if err != nil {
			return nil, fmt.Errorf("fan-out %s: %w", name, err)
		}
		res.rows = append(res.rows, row)
	}
	return res, nil
}

// memNow returns the memory statistics after two collections.
func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func fanoutCase(ctx context.Context, cli *clientv3.Client, p, name string, n, puts int) (row fanoutRow, err error) {
	row.name = name
	if _, err := seed(ctx, cli, p, smallSeed); err != nil {
		return row, err
	}
	var cur atomic.Pointer[fanRound]
	hit := func(v int) { cur.Load().hit(v) }

	g0 := runtime.NumGoroutine()
	m0 := memNow()
	var closeAll func() error
	start := time.Now()
	switch name {
	case fanRaw:
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		closeAll = func() error { cancel(); wg.Wait(); return nil }
		for range n {
			wch := cli.Watch(wctx, p+"/data/", clientv3.WithPrefix())
			wg.Go(func() {
				for resp := range wch {
					for _, ev := range resp.Events {
						hit(atoi(ev.Kv.Value))
					}
				}
			})
		}
	case fanStrata:
		cfgs := make([]*config.Config[Small], 0, n)
		closeAll = func() error {
			var errs []error
			for _, c := range cfgs {
				errs = append(errs, c.Close())
			}
			return errors.Join(errs...)
		}
		for range n {
			c, err := config.Load[Small](ctx, config.WithEtcd(cli, p))
			if err != nil {
				closeAll()
				return row, err
			}
			c.OnChange(func(ch config.Change[Small]) { hit(ch.New.A) })
			cfgs = append(cfgs, c)
		}
	}
	row.start = time.Since(start)
	defer func() {
		t := time.Now()
		err = errors.Join(err, closeAll())
		row.closeAll = time.Since(t)
	}()

	// One round until every instance answers: the watches are established
	// (a watch's creation is asynchronous) and warm. Values stay valid for
	// Small (A >= 0).
	round := func(v int, timeout time.Duration) (time.Duration, error) {
		r := &fanRound{want: v, n: int64(n), done: make(chan struct{})}
		cur.Store(r)
		if _, err := cli.Put(ctx, p+"/data/a", itoa(v)); err != nil {
			return 0, err
		}
		returned := time.Now()
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			return 0, fmt.Errorf("put %d: %d of %d instances saw it within %v", v, r.count.Load(), n, timeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return r.last.Sub(returned), nil
	}
	synced := false
	for v := 1; v <= 20 && !synced; v++ {
		_, err := round(v, 2*time.Second)
		synced = err == nil
	}
	if !synced {
		return row, fmt.Errorf("not every instance saw any of 20 puts")
	}

	m1 := memNow()
	row.heapPerInst = (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(n)
	row.stackPerInst = (float64(m1.StackInuse) - float64(m0.StackInuse)) / float64(n)
	row.goroutinesPer = float64(runtime.NumGoroutine()-g0) / float64(n)

	var lat []time.Duration
	for i := range puts {
		d, err := round(100+i, 30*time.Second)
		if err != nil {
			return row, err
		}
		if d < 0 {
			row.early++
			d = 0
		}
		lat = append(lat, d)
	}
	row.lat = newDist(lat)
	return row, nil
}

// row returns the named row.
func (r *fanoutResult) row(name string) (fanoutRow, bool) {
	for _, x := range r.rows {
		if x.name == name {
			return x, true
		}
	}
	return fanoutRow{}, false
}
