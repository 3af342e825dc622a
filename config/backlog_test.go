package config_test

import (
	"context"
	"fmt"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
)

// Triple is written three keys per transaction, all with the same value.
type Triple struct {
	A string `koanf:"a"`
	B string `koanf:"b"`
	C string `koanf:"c"`
}

// A subscriber that takes 10 ms per change, under 5,000 quick
// transactions of three 8 KiB values (120 MB in all): the heap stays
// bounded (the revisions waiting for the Config are merged past
// etcd.MaxPendingUpdates or etcd.MaxPendingBytes), the last value is
// applied, revisions only increase, and no change holds half a
// transaction.
func TestSlowSubscriberBoundedBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 5,000 transactions and a slow subscriber")
	}
	const (
		txns    = 5000
		writers = 4
		// Live heap of the whole test process, which also runs the etcd
		// server: its raft log holds much of the 120 MB written. The
		// revisions waiting for the Config add at most
		// etcd.MaxPendingBytes (64 MiB) to that.
		heapBound = 256 << 20
	)
	cli := client(t)
	ctx := context.Background()
	p := prefix(t)
	value := func(i int) string { return fmt.Sprintf("%06d", i) + strings.Repeat("x", 8<<10) }
	for _, k := range []string{"a", "b", "c"} {
		put(t, cli, p, k, value(0))
	}
	cfg, err := config.Load[Triple](ctx, config.WithEtcd(cli, p))
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()

	var (
		mu      sync.Mutex
		lastRev int64
		bad     []string
		changes int
	)
	cfg.OnChange(func(c config.Change[Triple]) {
		mu.Lock()
		changes++
		if c.Revision <= lastRev || c.From >= c.Revision {
			bad = append(bad, fmt.Sprintf("revision %d after %d (from %d)", c.Revision, lastRev, c.From))
		}
		lastRev = c.Revision
		if c.New.A != c.New.B || c.New.B != c.New.C {
			bad = append(bad, fmt.Sprintf("half a transaction at revision %d: %.6s %.6s %.6s", c.Revision, c.New.A, c.New.B, c.New.C))
		}
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	})

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()

	var next atomic.Int64
	var wg sync.WaitGroup
	var lastWrite atomic.Int64
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > txns {
					return
				}
				v := value(i)
				resp, err := cli.Txn(ctx).Then(clientv3.OpPut(p+"/data/a", v), clientv3.OpPut(p+"/data/b", v), clientv3.OpPut(p+"/data/c", v)).Commit()
				if err != nil {
					t.Error(err)
					return
				}
				for {
					old := lastWrite.Load()
					if resp.Header.Revision <= old || lastWrite.CompareAndSwap(old, resp.Header.Revision) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	final := lastWrite.Load()
	deadline := time.Now().Add(90 * time.Second)
	for cfg.Snapshot().Revision < final {
		if time.Now().After(deadline) {
			t.Fatalf("revision %d not applied; the Config runs %d", final, cfg.Snapshot().Revision)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-sampled
	got := cfg.Get()
	if got.A != got.B || got.B != got.C || got.A[:6] == "000000" {
		t.Fatalf("final value %.6s %.6s %.6s", got.A, got.B, got.C)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d bad changes, first: %s", len(bad), bad[0])
	}
	if changes >= txns {
		t.Fatalf("%d changes for %d transactions: nothing was merged", changes, txns)
	}
	if peak.Load() > heapBound {
		t.Fatalf("live heap peaked at %d MiB, bound %d MiB", peak.Load()>>20, heapBound>>20)
	}
	t.Logf("%d changes for %d transactions; live heap peaked at %d MiB", changes, txns, peak.Load()>>20)
}
