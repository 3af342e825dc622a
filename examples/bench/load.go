package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// loadResult holds the start-up load medians of section 2.
type loadResult struct {
	sizes  []int
	runs   map[int]int                      // timed runs per size
	median map[string]map[int]time.Duration // subject → size → median
}

const (
	loadRaw    = "raw clientv3 ranged Get + decode"
	loadStrata = "Strata Load (no watch)"
	loadKoanf  = "koanf etcd provider Load + Unmarshal"
)

// loader loads the prefix into a Wide and returns it.
type loader struct {
	name string
	load func() (*Wide, error)
}

// measureLoad loads n leaf keys (P/data/items/kNNNNN) into Wide, for each
// size: with a raw ranged Get decoded by hand, with Strata's Load (watch
// off, so it is the read, merge, bind and validate only), and with koanf's
// etcd provider (Load into a fresh instance, then Unmarshal). The
// subjects take turns within each run; one untimed run warms up. koanf's
// provider is dialled once per size, outside the timing: dialling its own
// client is extra start-up cost Strata does not have (it is given one).
func measureLoad(ctx context.Context, b *bench) (*loadResult, error) {
	res := &loadResult{sizes: b.opts.loadSizes, runs: map[int]int{}, median: map[string]map[int]time.Duration{}}
	for _, n := range b.opts.loadSizes {
		runs := b.opts.loadRuns(n)
		res.runs[n] = runs
		if err := loadSize(ctx, b, n, runs, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func loadSize(ctx context.Context, b *bench, n, runs int, res *loadResult) (err error) {
	p := fmt.Sprintf("/bench/load/%d", n)
	leaves := make(map[string]string, n)
	for i := range n {
		leaves[fmt.Sprintf("items/k%05d", i)] = itoa(i)
	}
	if _, err := seed(ctx, b.cli, p, leaves); err != nil {
		return err
	}
	kp, err := newKoanfEtcd(b.endpoints, p)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, kp.Close()) }()

	loaders := []loader{
		{loadRaw, func() (*Wide, error) {
			resp, err := b.cli.Get(ctx, p+"/data/items/", clientv3.WithPrefix())
			if err != nil {
				return nil, err
			}
			w := &Wide{Items: make(map[string]int, len(resp.Kvs))}
			strip := len(p + "/data/items/")
			for _, kv := range resp.Kvs {
				v := atoi(kv.Value)
				if v < 0 {
					return nil, fmt.Errorf("%s: not a number", kv.Key)
				}
				w.Items[string(kv.Key[strip:])] = v
			}
			return w, nil
		}},
		{loadStrata, func() (*Wide, error) {
			cfg, err := config.Load[Wide](ctx, config.WithEtcd(b.cli, p), config.WithWatch(false, false))
			if err != nil {
				return nil, err
			}
			defer cfg.Close()
			return cfg.Get(), nil
		}},
		{loadKoanf, func() (*Wide, error) {
			ko, err := kp.load()
			if err != nil {
				return nil, err
			}
			w := new(Wide)
			if err := ko.Unmarshal("", w); err != nil {
				return nil, err
			}
			return w, nil
		}},
	}
	times := map[string][]time.Duration{}
	for r := range runs + 1 {
		for _, l := range rotate(loaders, r) {
			runtime.GC() // no subject pays for the garbage of the one before
			start := time.Now()
			w, err := l.load()
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("load %d keys, %s: %w", n, l.name, err)
			}
			if err := checkWide(w, n); err != nil {
				return fmt.Errorf("load %d keys, %s: %w", n, l.name, err)
			}
			if r > 0 {
				times[l.name] = append(times[l.name], d)
			}
		}
	}
	for name, ts := range times {
		if res.median[name] == nil {
			res.median[name] = map[int]time.Duration{}
		}
		res.median[name][n] = median(ts)
	}
	return nil
}

// checkWide verifies that a load produced all n items with their values.
func checkWide(w *Wide, n int) error {
	if len(w.Items) != n {
		return fmt.Errorf("got %d items, want %d", len(w.Items), n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		k := fmt.Sprintf("k%05d", i)
		if got, ok := w.Items[k]; !ok || got != i {
			return fmt.Errorf("items.%s = %d (present %v), want %d", k, got, ok, i)
		}
	}
	return nil
}
