package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strataconf/strata/config"
)

// Build 5: a version key set back around the writer (here to 1, so that
// the next write's release record key, 2, already exists) never lets a
// write overwrite an existing release record: the commit is guarded by
// the record key's CreateRevision == 0.
func TestVersionKeySetBackKeepsReleases(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustRaw(t, cli, p, config.WithMaxAttempts(3))
	for i := 1; i <= 3; i++ {
		if _, err := w.Set(ctx, "n", strconv.Itoa(i), config.Message(fmt.Sprintf("release %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	records := func() map[string]string {
		t.Helper()
		resp, err := cli.Get(ctx, p+"/meta/releases/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = fmt.Sprintf("%d:%s", kv.ModRevision, kv.Value)
		}
		return out
	}
	before := records()
	if len(before) != 3 {
		t.Fatalf("%d release records, want 3", len(before))
	}
	if _, err := cli.Put(ctx, p+"/meta/version", "1"); err != nil { // around the writer
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		w    *config.RawWriter
	}{
		{"the writer that wrote the releases", w},
		{"a new writer", mustRaw(t, cli, p, config.WithMaxAttempts(3))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			rel, err := tc.w.Set(tctx, "n", "4", config.Message("after the version key was set back"))
			after := records()
			for k, v := range before {
				if after[k] != v {
					t.Errorf("release record %s changed:\n was %s\n now %s", k, v, after[k])
				}
			}
			switch {
			case err == nil:
				// The writer recovered: the write is a new, higher release.
				if rel.Version <= 3 {
					t.Fatalf("the write became release %d, at or below the newest existing record 3", rel.Version)
				}
				if _, ok := after[fmt.Sprintf("%s/meta/releases/%020d", p, rel.Version)]; !ok {
					t.Fatalf("no record for release %d", rel.Version)
				}
			case errors.Is(err, config.ErrConflict):
				if !strings.Contains(err.Error(), "set back around the writer") {
					t.Fatalf("the conflict does not say why: %v", err)
				}
				if got := get(t, cli, p, "n"); got != "3" {
					t.Fatalf("n = %q after a refused write, want 3", got)
				}
				if len(after) != len(before) {
					t.Fatalf("a refused write added records: %v", after)
				}
			default:
				t.Fatalf("Set after the version key was set back: %v (want a release above 3, or ErrConflict)", err)
			}
			t.Logf("outcome: release %+v, err %v", rel, err)
		})
	}
}

// lossy is a gRPC interceptor that lets every nth commit (a transaction
// with compares) reach etcd and then loses its answer.
type lossy struct {
	n                int64
	commits, dropped atomic.Int64
}

func (l *lossy) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	txn, ok := req.(*pb.TxnRequest)
	if !ok || len(txn.Compare) == 0 {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	if l.commits.Add(1)%l.n != 0 {
		return nil
	}
	l.dropped.Add(1)
	return status.Error(codes.Unavailable, "test: the answer to the commit was lost")
}

// Acceptance 2 and 3 together: 4 goroutines x 25 Updates of a counter
// through a client that loses the answer of every 7th commit after it
// reached etcd. Every Update returns a release or an error wrapping
// ErrUnknownOutcome, never a plain error; each write commits at most once
// (its WriteID is in at most one release record); and the counter equals
// the number of releases that incremented it: the Updates that returned a
// release plus the ErrUnknownOutcome ones that committed.
func TestLostAnswersUnderConcurrentUpdates(t *testing.T) {
	plain := client(t)
	p := layered(t, plain, true)
	l := &lossy{n: 7}
	cfg := shared.ClientConfig()
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainUnaryInterceptor(l.intercept))
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	w := mustWriter[Layered](t, cli, p, config.WithRetention(1000))

	const workers, each = 4, 25
	type outcome struct {
		id  string
		rel *config.Release
		err error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	deadline, cancelAll := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelAll()
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("inc-%d-%02d", g, i)
				ctx, cancel := context.WithTimeout(deadline, 5*time.Second)
				rel, err := w.Update(ctx, func(a *Layered) error { a.Counter++; return nil }, config.WriteID(id))
				cancel()
				mu.Lock()
				outcomes = append(outcomes, outcome{id, rel, err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if deadline.Err() != nil {
		t.Fatal("the Updates did not finish within 20s")
	}
	if l.dropped.Load() == 0 {
		t.Fatalf("no answer was dropped (%d commits)", l.commits.Load())
	}

	// The release records, read with the plain client: WriteID -> version,
	// and which versions incremented the counter (and by how much).
	resp, err := plain.Get(context.Background(), p+"/meta/releases/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]int64{}
	var counterReleases int
	for _, kv := range resp.Kvs {
		var rec struct {
			Version int64  `json:"version"`
			WriteID string `json:"write_id"`
			Changes []struct {
				Key string          `json:"key"`
				Old json.RawMessage `json:"old"`
				New json.RawMessage `json:"new"`
			} `json:"changes"`
		}
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatalf("record %s: %v", kv.Key, err)
		}
		if rec.WriteID == "" {
			t.Errorf("record %d has no write id", rec.Version)
		} else if v, seen := byID[rec.WriteID]; seen {
			t.Errorf("write %s committed twice: releases %d and %d", rec.WriteID, v, rec.Version)
		}
		byID[rec.WriteID] = rec.Version
		for _, ch := range rec.Changes {
			if ch.Key != "counter" {
				continue
			}
			counterReleases++
			var o, n string
			json.Unmarshal(ch.Old, &o)
			json.Unmarshal(ch.New, &n)
			oi, _ := strconv.Atoi(o) // absent before the first: 0
			ni, err := strconv.Atoi(n)
			if err != nil || ni != oi+1 {
				t.Errorf("release %d changed counter %q -> %q, not by one", rec.Version, o, n)
			}
		}
	}

	var released, unknownCommitted, unknownNot int
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			released++
			if v, ok := byID[o.id]; !ok || v != o.rel.Version {
				t.Errorf("write %s returned release %d; the records hold it as %d (found %v)", o.id, o.rel.Version, v, ok)
			}
		case errors.Is(o.err, config.ErrUnknownOutcome):
			if _, ok := byID[o.id]; ok {
				unknownCommitted++
			} else {
				unknownNot++
			}
		default:
			t.Errorf("write %s: a plain error: %v", o.id, o.err)
		}
	}
	got := get(t, plain, p, "counter")
	t.Logf("%d commits sent, %d answers dropped; %d releases returned, %d unknown outcomes (%d committed); counter = %s",
		l.commits.Load(), l.dropped.Load(), released, unknownCommitted+unknownNot, unknownCommitted, got)
	if want := strconv.Itoa(released + unknownCommitted); got != want {
		t.Errorf("counter = %s, want %s (releases returned + unknown outcomes that committed)", got, want)
	}
	if strconv.Itoa(counterReleases) != got {
		t.Errorf("counter = %s, but %d releases changed it", got, counterReleases)
	}
	hist, err := w.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var listed int
	for _, h := range hist {
		if !h.Unrecorded && h.Err == nil && len(h.Changes) > 0 {
			listed++
		}
	}
	if listed != counterReleases {
		t.Errorf("History lists %d releases with changes, the records %d", listed, counterReleases)
	}
}
