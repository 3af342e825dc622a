package config_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/bigmap"
	"github.com/strataconf/strata/config"
)

// BenchmarkGet measures the read path: one atomic load, no allocation.
func BenchmarkGet(b *testing.B) {
	cli := client(b)
	p := prefix(b)
	put(b, cli, p, "a", "1")
	cfg := loadPair(b, cli, p, config.WithWatch(false, false))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var sink int
		for pb.Next() {
			sink += cfg.Get().A
		}
		_ = sink
	})
}

// Wide has 10,000 leaf fields' worth of keys: a map of 10,000 entries.
type Wide struct {
	Items map[string]int `koanf:"items"`
}

// WideBig is Wide with its map a bigmap.Map.
type WideBig struct {
	Items bigmap.Map[int] `koanf:"items"`
}

// BenchmarkLoad10k loads 10,000 leaf keys from etcd into a typed struct,
// beside a raw clientv3 ranged Get of the same prefix in the same run.
func BenchmarkLoad10k(b *testing.B) {
	cli := client(b)
	p := prefix(b)
	const n = 10000
	ctx := context.Background()
	fillItems(b, cli, p, n)
	b.Run("raw-get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := cli.Get(ctx, p+"/data/", clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != n {
				b.Fatalf("get: %v, %d keys", err, len(resp.Kvs))
			}
		}
	})
	b.Run("strata-load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cfg, err := config.Load[Wide](ctx, config.WithEtcd(cli, p), config.WithWatch(false, false))
			if err != nil || len(cfg.Get().Items) != n {
				b.Fatalf("load: %v", err)
			}
			cfg.Close()
		}
	})
}

// BenchmarkPutToCallback measures the latency from a Put returning to the
// OnChange callback, beside a raw clientv3 watch on the same server in the
// same run. It reports p50 and p99 in microseconds.
func BenchmarkPutToCallback(b *testing.B) {
	cli := client(b)
	ctx := context.Background()
	measure := func(b *testing.B, p string, subscribe func(func(int))) {
		measurePutToCallback(b, cli, p+"/data/a", 0, subscribe)
	}
	b.Run("raw-watch", func(b *testing.B) {
		p := prefix(b)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		measure(b, p, func(fn func(int)) {
			wch := cli.Watch(wctx, p+"/data/", clientv3.WithPrefix())
			go func() {
				for resp := range wch {
					for _, ev := range resp.Events {
						v, _ := strconv.Atoi(string(ev.Kv.Value))
						fn(v)
					}
				}
			}()
		})
	})
	b.Run("strata-onchange", func(b *testing.B) {
		p := prefix(b)
		cfg := loadPair(b, cli, p)
		measure(b, p, func(fn func(int)) {
			cfg.OnChange(func(c config.Change[Pair]) { fn(c.New.A) })
		})
	})
}

// BenchmarkCASWrites measures committed writes per second on one key with 1
// and 4 concurrent writers: Strata's Writer.Update beside a raw etcd Txn
// compare-and-swap loop in the same run.
func BenchmarkCASWrites(b *testing.B) {
	cli := client(b)
	ctx := context.Background()
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("raw-txn/writers=%d", writers), func(b *testing.B) {
			key := prefix(b) + "/data/n"
			parallel(b, writers, func() {
				for {
					resp, err := cli.Get(ctx, key)
					if err != nil {
						b.Error(err)
						return
					}
					var n, mod int64
					if len(resp.Kvs) > 0 {
						n, _ = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
						mod = resp.Kvs[0].ModRevision
					}
					tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", mod)).
						Then(clientv3.OpPut(key, strconv.FormatInt(n+1, 10))).Commit()
					if err != nil {
						b.Error(err)
						return
					}
					if tr.Succeeded {
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("strata-update/writers=%d", writers), func(b *testing.B) {
			w := mustWriter[Counter](b, cli, prefix(b), counterDefaults, config.WithMaxAttempts(10000))
			start, _, _, err := w.Get(ctx)
			if err != nil {
				b.Fatal(err)
			}
			parallel(b, writers, func() {
				if _, err := w.Update(ctx, func(c *Counter) error { c.N++; return nil }); err != nil {
					b.Error(err)
				}
			})
			got, _, _, err := w.Get(ctx)
			if err != nil || got.N-start.N != b.N {
				b.Fatalf("lost updates: %d increments after %d commits (%v)", got.N-start.N, b.N, err)
			}
		})
	}
}

// parallel runs b.N calls of fn spread over n goroutines and reports the
// rate.
func parallel(b *testing.B, n int, fn func()) {
	jobs := make(chan struct{}, b.N)
	for range b.N {
		jobs <- struct{}{}
	}
	close(jobs)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				fn()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkFanout measures one put reaching 200 Configs that watch the same
// prefix through one client (time until the last callback).
func BenchmarkFanout(b *testing.B) {
	cli := client(b)
	p := prefix(b)
	const n = 200
	var mu sync.Mutex
	var want, seen int
	done := make(chan struct{}, 1)
	for range n {
		cfg := loadPair(b, cli, p)
		cfg.OnChange(func(c config.Change[Pair]) {
			mu.Lock()
			defer mu.Unlock()
			if c.New.A == want {
				if seen++; seen == n {
					done <- struct{}{}
				}
			}
		})
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		mu.Lock()
		want, seen = i, 0
		mu.Unlock()
		if _, err := cli.Put(ctx, p+"/data/a", strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

// BenchmarkCommitSize compares one writer's commits per second with a raw
// clientv3 CAS (get the version key, then a Txn that puts one data key and
// the version if the version key is unchanged) on configurations of 10
// and 5,000 leaf keys of 100 bytes. Each Strata commit is RawWriter.Set of
// one key, from the writer's cache: no read, and a Txn guarded by the
// version key and the key it changes, with its release record.
func BenchmarkCommitSize(b *testing.B) {
	cli := client(b)
	ctx := context.Background()
	for _, keys := range []int{10, 5000} {
		seed := func(p string) {
			for i := 0; i < keys; i += 100 {
				var ops []clientv3.Op
				for j := i; j < min(keys, i+100); j++ {
					ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/data/k%05d", p, j), strings.Repeat("v", 100)))
				}
				if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(fmt.Sprintf("raw-cas/keys=%d", keys), func(b *testing.B) {
			p := prefix(b)
			seed(p)
			version := p + "/meta/version"
			b.ResetTimer()
			for i := range b.N {
				resp, err := cli.Get(ctx, version)
				if err != nil {
					b.Fatal(err)
				}
				var rev int64
				if len(resp.Kvs) > 0 {
					rev = resp.Kvs[0].ModRevision
				}
				tr, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(version), "=", rev)).
					Then(clientv3.OpPut(p+"/data/k00001", strconv.Itoa(i)), clientv3.OpPut(version, strconv.Itoa(i))).Commit()
				if err != nil || !tr.Succeeded {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
		b.Run(fmt.Sprintf("strata-set/keys=%d", keys), func(b *testing.B) {
			p := prefix(b)
			seed(p)
			w := mustRaw(b, cli, p)
			b.ResetTimer()
			for i := range b.N {
				if _, err := w.Set(ctx, "k00001", strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkChange10k measures a one-key change on a configuration of
// 10,000 leaf keys, from the Put returning to OnChange, beside a raw
// clientv3 watch event on the same server in the same run.
func BenchmarkChange10k(b *testing.B) {
	cli := client(b)
	ctx := context.Background()
	const n = 10000
	b.Run("raw-watch", func(b *testing.B) {
		p := prefix(b)
		fillItems(b, cli, p, n)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		measurePutToCallback(b, cli, p+"/data/items/k00042", n, func(fn func(int)) {
			wch := cli.Watch(wctx, p+"/data/", clientv3.WithPrefix())
			go func() {
				for resp := range wch {
					for _, ev := range resp.Events {
						v, _ := strconv.Atoi(string(ev.Kv.Value))
						fn(v)
					}
				}
			}()
		})
	})
	b.Run("strata-onchange", func(b *testing.B) {
		p := prefix(b)
		fillItems(b, cli, p, n)
		cfg, err := config.Load[Wide](ctx, config.WithEtcd(cli, p))
		if err != nil {
			b.Fatal(err)
		}
		defer cfg.Close()
		measurePutToCallback(b, cli, p+"/data/items/k00042", n, func(fn func(int)) {
			cfg.OnChange(func(c config.Change[Wide]) { fn(c.New.Items["k00042"]) })
		})
	})
	b.Run("strata-onchange-bigmap", func(b *testing.B) {
		p := prefix(b)
		fillItems(b, cli, p, n)
		cfg, err := config.Load[WideBig](ctx, config.WithEtcd(cli, p))
		if err != nil {
			b.Fatal(err)
		}
		defer cfg.Close()
		measurePutToCallback(b, cli, p+"/data/items/k00042", n, func(fn func(int)) {
			cfg.OnChange(func(c config.Change[WideBig]) {
				v, _ := c.New.Items.Get("k00042")
				fn(v)
			})
		})
	})
}

// fillItems writes n keys P/data/items/kNNNNN (values 0..n-1), 100 per
// transaction.
func fillItems(b *testing.B, cli *clientv3.Client, p string, n int) {
	b.Helper()
	for i := 0; i < n; i += 100 {
		ops := make([]clientv3.Op, 0, 100)
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/data/items/k%05d", p, j), strconv.Itoa(j)))
		}
		if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// measurePutToCallback puts key = from+1, from+2, ... once per iteration
// and waits until subscribe's callback sees the value, reporting p50 and
// p99 of the time from the Put to the callback in microseconds.
func measurePutToCallback(b *testing.B, cli *clientv3.Client, key string, from int, subscribe func(func(int))) {
	got := make(chan int, 1)
	subscribe(func(v int) {
		for { // keep the newest value; never block the subscriber
			select {
			case got <- v:
				return
			default:
				select {
				case <-got:
				default:
				}
			}
		}
	})
	lat := make([]time.Duration, 0, b.N)
	i := from
	for b.Loop() {
		i++
		start := time.Now()
		if _, err := cli.Put(context.Background(), key, strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		for v := range got {
			if v == i {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
