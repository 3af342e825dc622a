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

// changeResult holds the latencies of section 7: a one-key change on a
// configuration of many leaf keys, put to callback.
type changeResult struct {
	keys      int    // leaf keys under each subscriber's prefix
	n, warmup int    // measured and warm-up puts per subscriber
	block     int    // puts per subscriber per turn
	koanfN    int    // measured rounds koanf takes part in
	key       string // the key put, relative to P/data/
	subjects  []latencySubject
}

// changePrefix is the parent of the section's prefixes, deleted at its end.
const changePrefix = "/bench/change/"

// changeKey returns the leaf put in every round, relative to P/data/: the
// one BenchmarkChange10k puts (config/bench_test.go), or the last of fewer
// keys.
func changeKey(keys int) (rel, item string) {
	item = fmt.Sprintf("k%05d", min(42, keys-1))
	return "items/" + item, item
}

// measureChange fills three prefixes with o.changeKeys leaf keys
// P/data/items/kNNNNN = N each and measures, for a raw clientv3 watch,
// Strata's OnChange (Load of Wide with the etcd layer) and koanf's etcd
// provider Watch + reload + Unmarshal into Wide, the time from issuing a
// Put of one of those keys until the callback holds the new value, in
// turns of o.changeBlock puts (raw and Strata; see interleave). koanf
// re-reads the whole prefix on every event, so it runs alone afterwards,
// for o.changeKoanf measured puts only. At the end Strata's snapshot must hold every key and the last value
// put, and the prefixes are deleted.
func measureChange(ctx context.Context, b *bench) (res *changeResult, err error) {
	o := b.opts
	if o.changeKeys < 1 {
		return nil, fmt.Errorf("change: %d keys", o.changeKeys)
	}
	rel, item := changeKey(o.changeKeys)
	res = &changeResult{keys: o.changeKeys, n: o.changePuts, warmup: o.changeWarmup, block: o.changeBlock, koanfN: min(o.changeKoanf, o.changePuts), key: rel}
	var ws []*watcher
	defer func() {
		for _, w := range ws {
			err = errors.Join(err, w.close())
		}
		if _, derr := b.cli.Delete(context.WithoutCancel(ctx), changePrefix, clientv3.WithPrefix()); derr != nil {
			err = errors.Join(err, fmt.Errorf("change: delete %s: %w", changePrefix, derr))
		}
		if err != nil {
			res = nil
		}
	}()

	leaves := make(map[string]string, o.changeKeys)
	for i := range o.changeKeys {
		leaves[fmt.Sprintf("items/k%05d", i)] = itoa(i)
	}
	// newWatcher seeds the subject's prefix; its puts continue after the
	// largest seeded value.
	newWatcher := func(name, sub string) (*watcher, error) {
		p := changePrefix + sub
		w := &watcher{name: name, prefix: p, key: p + "/data/" + rel, seq: o.changeKeys, sink: newSink(), errs: new(atomic.Int64)}
		if _, err := seed(ctx, b.cli, p, leaves); err != nil {
			return nil, err
		}
		return w, nil
	}

	// Raw clientv3: one watch of the prefix, decoding the event itself.
	{
		w, err := newWatcher(latRaw, "raw")
		if err != nil {
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

	// Strata: Load with the etcd layer, one OnChange subscriber reading the
	// item from the new snapshot; once with a Go map (copied whole by each
	// change), once with a bigmap.Map (a change copies a few nodes).
	var strata *config.Config[Wide]
	var strataBig *config.Config[WideBig]
	{
		w, err := newWatcher(latStrata, "strata")
		if err != nil {
			return nil, err
		}
		cfg, err := config.Load[Wide](ctx, config.WithEtcd(b.cli, w.prefix))
		if err != nil {
			return nil, err
		}
		strata = cfg
		cfg.OnChange(func(c config.Change[Wide]) { w.sink.see(c.New.Items[item]) })
		cfg.OnError(func(error) { w.errs.Add(1) })
		w.close = cfg.Close
		ws = append(ws, w)
	}
	{
		w, err := newWatcher(latStrataBig, "strata-bigmap")
		if err != nil {
			return nil, err
		}
		cfg, err := config.Load[WideBig](ctx, config.WithEtcd(b.cli, w.prefix))
		if err != nil {
			return nil, err
		}
		strataBig = cfg
		cfg.OnChange(func(c config.Change[WideBig]) {
			v, _ := c.New.Items.Get(item)
			w.sink.see(v)
		})
		cfg.OnError(func(error) { w.errs.Add(1) })
		w.close = cfg.Close
		ws = append(ws, w)
	}

	// koanf: the provider's Watch; on every event a fresh Load of the
	// whole prefix and an Unmarshal into Wide, as in section 1.
	if res.koanfN > 0 {
		w, err := newWatcher(latKoanf, "koanf")
		if err != nil {
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
			var v Wide
			if err := ko.Unmarshal("", &v); err != nil {
				w.errs.Add(1)
				return
			}
			w.sink.see(v.Items[item])
		})
		if err != nil {
			return nil, err
		}
	}

	// Raw and Strata take turns of block puts, so that what one leaves
	// behind lands in its own turn; koanf runs alone afterwards, so that
	// the garbage of its reloads does not land in theirs. Its first sync put
	// can wait for its first reload of the prefix.
	if err := interleave(ctx, b.cli, ws[:3], res.warmup, res.n, res.block, time.Second); err != nil {
		return nil, fmt.Errorf("change: %w", err)
	}
	if len(ws) > 3 {
		if err := interleave(ctx, b.cli, ws[3:], res.warmup, res.koanfN, res.block, time.Second); err != nil {
			return nil, fmt.Errorf("change: %w", err)
		}
	}

	// The change was applied whole: every key is still there, with the last value.
	for _, w := range ws {
		var n, last int
		switch w.name {
		case latStrata:
			got := strata.Get()
			n, last = len(got.Items), got.Items[item]
		case latStrataBig:
			got := strataBig.Get()
			n = got.Items.Len()
			last, _ = got.Items.Get(item)
		default:
			continue
		}
		if n != o.changeKeys || last != w.seq {
			return nil, fmt.Errorf("change: %s's snapshot has %d items and %s = %d, want %d and %d",
				w.name, n, item, last, o.changeKeys, w.seq)
		}
	}

	for _, w := range ws {
		res.subjects = append(res.subjects, latencySubject{name: w.name, lat: newDist(w.lat), errors: w.errs.Load()})
	}
	return res, nil
}

// subject returns the named subject's result.
func (r *changeResult) subject(name string) (latencySubject, bool) {
	for _, s := range r.subjects {
		if s.name == name {
			return s, true
		}
	}
	return latencySubject{name: name}, false
}
