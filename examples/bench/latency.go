package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// latencyResult holds the put-to-callback latencies of section 1.
type latencyResult struct {
	n, warmup int
	subjects  []latencySubject
}

// latencySubject is one watcher measured in section 1.
type latencySubject struct {
	name   string
	lat    dist  // measured rounds only, sorted
	errors int64 // callback errors (koanf reload/unmarshal failures)
}

// watcher is a subscriber under test: puts to key reach sink.
type watcher struct {
	name   string
	prefix string
	key    string // the key put in every round
	sink   *sink
	seq    int // the last value put to key
	lat    []time.Duration
	errs   *atomic.Int64
	close  func() error
}

const (
	latRaw    = "raw clientv3 watch"
	latStrata = "Strata OnChange"
	// latStrataBig is Strata with the section-7 map a bigmap.Map.
	latStrataBig = "Strata OnChange, bigmap.Map"
	latKoanf     = "koanf etcd provider Watch + reload"
)

// measureLatency measures, for each subscriber, the time from issuing a
// Put of P/data/a until the subscriber's callback sees the new value. Each
// subscriber watches its own prefix on the same server; the rounds are
// interleaved (one put per subscriber per round, the first one rotating),
// so that drift of the shared machine hits all three alike.
func measureLatency(ctx context.Context, b *bench) (*latencyResult, error) {
	res := &latencyResult{n: b.opts.puts, warmup: b.opts.warmup}
	var ws []*watcher
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()

	// Raw clientv3: one watch of the prefix, decoding the event itself.
	{
		w := &watcher{name: latRaw, prefix: "/bench/latency/raw", key: "/bench/latency/raw/data/a", sink: newSink(), errs: new(atomic.Int64)}
		if _, err := seed(ctx, b.cli, w.prefix, smallSeed); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := b.cli.Watch(wctx, w.prefix+"/data/", clientv3.WithPrefix())
		var wg sync.WaitGroup
		wg.Go(func() {
			for resp := range wch {
				for _, ev := range resp.Events {
					if string(ev.Kv.Key) == w.key {
						w.sink.see(atoi(ev.Kv.Value))
					}
				}
			}
		})
		w.close = func() error { cancel(); wg.Wait(); return nil }
		ws = append(ws, w)
	}

	// Strata: Load with the etcd layer, one OnChange subscriber.
	{
		w := &watcher{name: latStrata, prefix: "/bench/latency/strata", key: "/bench/latency/strata/data/a", sink: newSink(), errs: new(atomic.Int64)}
		if _, err := seed(ctx, b.cli, w.prefix, smallSeed); err != nil {
			return nil, err
		}
		cfg, err := config.Load[Small](ctx, config.WithEtcd(b.cli, w.prefix))
		if err != nil {
			return nil, err
		}
		cfg.OnChange(func(c config.Change[Small]) { w.sink.see(c.New.A) })
		cfg.OnError(func(error) { w.errs.Add(1) })
		w.close = cfg.Close
		ws = append(ws, w)
	}

	// koanf: the etcd provider's Watch; on every event, throw the old
	// config away and load a fresh koanf instance (as koanf's README does
	// for its file provider), then unmarshal into the same struct.
	{
		w := &watcher{name: latKoanf, prefix: "/bench/latency/koanf", key: "/bench/latency/koanf/data/a", sink: newSink(), errs: new(atomic.Int64)}
		if _, err := seed(ctx, b.cli, w.prefix, smallSeed); err != nil {
			return nil, err
		}
		kp, err := newKoanfEtcd(b.endpoints, w.prefix)
		if err != nil {
			return nil, err
		}
		w.close = kp.Close
		ws = append(ws, w)
		err = kp.Watch(func(_ any, err error) {
			if err != nil {
				w.errs.Add(1)
				return
			}
			ko, err := kp.load()
			if err != nil {
				w.errs.Add(1)
				return
			}
			var s Small
			if err := ko.Unmarshal("", &s); err != nil {
				w.errs.Add(1)
				return
			}
			w.sink.see(s.A)
		})
		if err != nil {
			return nil, err
		}
	}

	if err := interleave(ctx, b.cli, ws, res.warmup, res.n, 1, 200*time.Millisecond); err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}

	var errs []error
	for _, w := range ws {
		res.subjects = append(res.subjects, latencySubject{name: w.name, lat: newDist(w.lat), errors: w.errs.Load()})
		errs = append(errs, w.close())
	}
	ws = nil
	return res, errors.Join(errs...)
}

// subject returns the named subject's result.
func (r *latencyResult) subject(name string) latencySubject {
	for _, s := range r.subjects {
		if s.name == name {
			return s
		}
	}
	return latencySubject{name: name}
}

// interleave measures put-to-callback latencies for ws: it first puts to
// each watcher's key until the watcher sees one (up to 50 puts, syncWait
// apart: koanf's watch starts in a goroutine after Watch returns, so an
// early put can go unseen), then runs warmup+n puts per watcher in turns of
// block puts each, the first watcher of a turn rotating; each put waits (at
// most 10 s) until its callback holds the value. The measured puts'
// latencies (those after the first warmup) go to w.lat. With block 1 the
// watchers alternate put by put; a larger block keeps the work a watcher
// leaves behind (garbage, its loop finishing after the callback) in its own
// turn, but for a turn's first put.
func interleave(ctx context.Context, cli *clientv3.Client, ws []*watcher, warmup, n, block int, syncWait time.Duration) error {
	put := func(w *watcher) (time.Time, error) {
		w.seq++
		start := time.Now()
		_, err := cli.Put(ctx, w.key, itoa(w.seq))
		return start, err
	}

	for _, w := range ws {
		synced := false
		for range 50 {
			if _, err := put(w); err != nil {
				return err
			}
			if _, ok := w.sink.wait(w.seq, syncWait); ok {
				synced = true
				break
			}
		}
		if !synced {
			return fmt.Errorf("%s saw none of 50 puts", w.name)
		}
	}

	block = max(1, block)
	total := warmup + n
	for turn := 0; turn*block < total; turn++ {
		for _, w := range rotate(ws, turn) {
			for i := turn * block; i < min((turn+1)*block, total); i++ {
				start, err := put(w)
				if err != nil {
					return err
				}
				t, ok := w.sink.wait(w.seq, 10*time.Second)
				if !ok {
					return fmt.Errorf("%s did not see put %d within 10s", w.name, w.seq)
				}
				if i >= warmup {
					w.lat = append(w.lat, t.Sub(start))
				}
			}
		}
	}
	return nil
}
