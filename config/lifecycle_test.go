package config_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/config"
)

// Close revokes the instance record's lease every time: the record is gone
// when Close returns, not left to its TTL. The race it guards against (the
// keepalive channel closing before the status goroutine sees the
// cancellation) happened in about 1 of 15 runs, so the test closes many
// Configs.
func TestCloseAlwaysRevokesInstanceRecord(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "pool", "1")
	file := filepath.Join(t.TempDir(), "snap.json")
	for i := range 40 {
		cfg, err := config.Load[Ops](context.Background(), config.WithEtcd(cli, p),
			config.WithInstance("close", nil, 0), config.WithSnapshotFile(file))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the instance record", func() bool {
			resp, err := cli.Get(context.Background(), p+"/meta/instances/close", clientv3.WithCountOnly())
			return err == nil && resp.Count == 1
		})
		// Close while the status goroutine is busy with a change (it has
		// just written the snapshot file and now updates the record), so
		// that both the cancellation and the closed keepalive channel are
		// ready when it looks again.
		rev := put(t, cli, p, "pool", strconv.Itoa(i+2))
		waitFor(t, "the snapshot file", func() bool {
			b, _ := os.ReadFile(file)
			return bytes.Contains(b, []byte(`"revision": `+itoa(rev)))
		})
		cfg.Close()
		resp, err := cli.Get(context.Background(), p+"/meta/instances/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 0 {
			t.Fatalf("run %d: Close returned with the instance record still in etcd: %s", i, resp.Kvs[0].Value)
		}
	}
}

// Close called from another goroutine while a subscriber runs returns only
// after that subscriber has returned, and no subscriber runs after it.
func TestCloseWaitsForRunningSubscriber(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg := loadPair(t, cli, p)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished, after atomic.Bool
	cfg.OnChange(func(config.Change[Pair]) {
		if finished.Load() {
			after.Store(true)
			return
		}
		close(entered)
		<-release
		finished.Store(true)
	})
	put(t, cli, p, "a", "1")
	<-entered
	closed := make(chan bool)
	go func() {
		cfg.Close()
		closed <- finished.Load()
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a subscriber was running")
	case <-time.After(300 * time.Millisecond): // Close would have returned by now
	}
	close(release)
	if !<-closed {
		t.Fatal("Close returned before the running subscriber finished")
	}
	put(t, cli, p, "a", "2")
	time.Sleep(100 * time.Millisecond)
	if after.Load() {
		t.Fatal("a subscriber ran after Close returned")
	}
}

// A subscriber may call Close: it returns without waiting for the
// subscriber that called it, no later subscriber runs, and every goroutine
// of the Config ends once the subscriber returns.
//
// With only an etcd layer the reload loop waits on its subscription alone,
// and Close wakes it there; with an instance record it waits on its
// context as well.
func TestCloseFromSubscriber(t *testing.T) {
	t.Run("etcd layer only", func(t *testing.T) { closeFromSubscriber(t, false) })
	t.Run("with an instance record", func(t *testing.T) { closeFromSubscriber(t, true) })
}

func closeFromSubscriber(t *testing.T, instance bool) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "c", "etcd") // the writing client's goroutines are running now
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	own, err := shared.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	opts := []config.Option{config.WithEtcd(own, p)}
	if instance {
		opts = append(opts, config.WithInstance("close-from-subscriber", nil, 0))
	}
	cfg, err := config.Load[Pair](context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	cfg.OnChange(func(config.Change[Pair]) {
		cfg.Close()
		close(returned)
	})
	var later atomic.Int64
	cfg.OnChange(func(config.Change[Pair]) { later.Add(1) })
	cfg.OnError(func(error) { later.Add(1) })
	put(t, cli, p, "a", "1")
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Close called from a subscriber did not return")
	}
	cfg.Close() // from another goroutine now: waits for the loop to end
	put(t, cli, p, "a", "2")
	time.Sleep(100 * time.Millisecond)
	if n := later.Load(); n != 0 {
		t.Fatalf("%d subscribers ran after Close returned", n)
	}
	resp, err := cli.Get(context.Background(), p+"/meta/instances/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("instance records after Close: %v, %v", resp, err)
	}
}
