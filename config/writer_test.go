package config_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/etcdtest"
	"github.com/strataconf/strata/schema"
)

type Counter struct {
	N      int               `koanf:"n"`
	Name   string            `koanf:"name" validate:"required"`
	Pool   int               `koanf:"pool" validate:"min=1,max=100"`
	Mode   string            `koanf:"mode" validate:"omitempty,oneof=fast safe"`
	Token  string            `koanf:"token" secret:"true"`
	Labels map[string]string `koanf:"labels"`
	Tags   []string          `koanf:"tags"`
}

var counterDefaults = config.WithWriterDefaults(Counter{Name: "svc", Pool: 5})

func revision(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/strata-revision-probe")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// Acceptance: 4 goroutines x 250 increments give exactly 1,000 and 1,000
// distinct releases.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults, config.WithRetention(5000))
	const writers, each = 4, 250
	var wg sync.WaitGroup
	versions := make(chan int64, writers*each)
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				rel, err := w.Update(context.Background(), func(c *Counter) error { c.N++; return nil },
					config.Author("g"+strconv.Itoa(g)))
				if err != nil {
					errs <- err
					return
				}
				versions <- rel.Version
			}
		}()
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %d returned twice", v)
		}
		seen[v] = true
	}
	got, version, _, err := w.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.N != writers*each || version != writers*each || len(seen) != writers*each {
		t.Fatalf("n = %d, version = %d, distinct releases %d; want %d", got.N, version, len(seen), writers*each)
	}
	hist, err := w.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != writers*each || hist[0].Version != writers*each || hist[len(hist)-1].Version != 1 {
		t.Fatalf("history has %d releases (%d..%d)", len(hist), hist[0].Version, hist[len(hist)-1].Version)
	}
}

// Acceptance: a stale ExpectVersion and invalid content leave etcd as it was.
func TestReplaceConflictAndInvalid(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	rel, err := w.Replace(ctx, &Counter{Name: "a", Pool: 10}, config.ExpectVersion(0), config.Author("ops"), config.Message("first"))
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 1 || rel.Revision == 0 || len(rel.Changes) == 0 {
		t.Fatalf("first release: %+v", rel)
	}
	if _, err := w.Replace(ctx, &Counter{Name: "b", Pool: 11}, config.ExpectVersion(1)); err != nil {
		t.Fatal(err)
	}

	before := revision(t, cli)
	_, err = w.Replace(ctx, &Counter{Name: "c", Pool: 12}, config.ExpectVersion(1))
	var ce *config.ConflictError
	if !errors.Is(err, config.ErrConflict) || !errors.As(err, &ce) || ce.Current != 2 || ce.Expected != 1 {
		t.Fatalf("stale version: %v", err)
	}
	if after := revision(t, cli); after != before {
		t.Fatalf("a conflicting write moved the revision %d → %d", before, after)
	}

	_, err = w.Replace(ctx, &Counter{Name: "", Pool: 500, Mode: "wild"})
	var ie *config.InvalidError
	if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &ie) {
		t.Fatalf("invalid content: %v", err)
	}
	var paths []string
	for _, pr := range ie.Problems {
		paths = append(paths, pr.Path)
	}
	if strings.Join(paths, ",") != "mode,name,pool" {
		t.Fatalf("problems %v, want mode, name and pool", ie.Problems)
	}
	if after := revision(t, cli); after != before {
		t.Fatalf("an invalid write moved the revision %d → %d", before, after)
	}
	got, version, _, _ := w.Get(ctx)
	if got.Name != "b" || version != 2 {
		t.Fatalf("after refused writes: %+v at version %d", got, version)
	}
}

// Acceptance: a raw put between read and commit makes the commit fail.
func TestRawPutBetweenReadAndCommit(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	if _, err := w.Set(ctx, "pool", "7"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err := w.Update(ctx, func(c *Counter) error {
		calls++
		put(t, cli, p, "mode", "fast") // etcdctl put, between read and commit
		c.Pool = 8
		return nil
	}, config.ExpectVersion(1))
	if !errors.Is(err, config.ErrConflict) || calls != 1 {
		t.Fatalf("err = %v after %d calls, want ErrConflict after 1", err, calls)
	}
	got, _, _, _ := w.Get(ctx)
	if got.Pool != 7 || got.Mode != "fast" {
		t.Fatalf("after the lost race: %+v", got)
	}
	// Without ExpectVersion the mutation is re-run on the new data.
	calls = 0
	rel, err := w.Update(ctx, func(c *Counter) error {
		calls++
		if calls == 1 {
			put(t, cli, p, "mode", "safe")
		}
		c.Pool = 9
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("retry: %v after %d calls", err, calls)
	}
	got, _, _, _ = w.Get(ctx)
	if got.Pool != 9 || got.Mode != "safe" || rel.Version != 2 {
		t.Fatalf("after retry: %+v, release %d", got, rel.Version)
	}
	// The raw puts show up in history as unrecorded changes.
	put(t, cli, p, "mode", "fast")
	hist, err := w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !hist[0].Unrecorded || len(hist[0].Changes) != 1 || hist[0].Changes[0].Key != "mode" || hist[1].Version != 2 {
		t.Fatalf("history head: %+v", hist[0])
	}
}

func TestSetDeleteDryRunAndSecrets(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	if _, err := w.Set(ctx, "token", "s3cr3t"); err != nil {
		t.Fatal(err)
	}
	before := revision(t, cli)
	rel, err := w.Update(ctx, func(c *Counter) error {
		c.Token = "n3w-s3cr3t"
		c.Labels = map[string]string{"team": "pay"}
		c.Tags = []string{"a", "b"}
		return nil
	}, config.DryRun())
	if err != nil {
		t.Fatal(err)
	}
	if !rel.DryRun || rel.Version != 2 || revision(t, cli) != before {
		t.Fatalf("dry run wrote or misreported: %+v", rel)
	}
	var keys []string
	for _, ch := range rel.Changes {
		keys = append(keys, ch.Key+"="+ch.New)
		if strings.Contains(ch.Old+ch.New, "s3cr3t") {
			t.Fatalf("dry run shows a secret: %+v", ch)
		}
	}
	if strings.Join(keys, " ") != `labels/team=pay tags=["a","b"] token=******` {
		t.Fatalf("dry-run changes: %v", keys)
	}
	if _, err := w.Set(ctx, "pool", "1000"); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Set of an invalid value: %v", err)
	}
	if _, err := w.Set(ctx, "pool", "9"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Delete(ctx, "pool"); err != nil {
		t.Fatal(err)
	}
	if got, _, _, _ := w.Get(ctx); got.Pool != 5 {
		t.Fatalf("deleted pool did not fall back to the default: %d", got.Pool)
	}
	if _, err := w.Delete(ctx, "pool"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// A no-op write commits nothing.
	rev := revision(t, cli)
	rel, err = w.Update(ctx, func(*Counter) error { return nil })
	if err != nil || len(rel.Changes) != 0 || revision(t, cli) != rev {
		t.Fatalf("no-op write: %+v, %v", rel, err)
	}
}

// Acceptance: history shows who, why, when and where; rollback restores a
// release exactly, also after compaction and a member restart.
func TestHistoryAndRollbackAfterCompaction(t *testing.T) {
	c := etcdtest.New(t)
	cli := c.Client(t)
	p := "/strata/rollback"
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	var rels []*config.Release
	for i, fn := range []func(*Counter){
		func(c *Counter) { c.Pool = 10; c.Labels = map[string]string{"a": "1", "b": "2"} },
		func(c *Counter) { c.Pool = 20; delete(c.Labels, "a"); c.Tags = []string{"x"} },
		func(c *Counter) { c.Pool = 30; c.Mode = "fast" },
	} {
		rel, err := w.Update(ctx, func(c *Counter) error { fn(c); return nil },
			config.Author("ops"+strconv.Itoa(i+1)), config.Message("step "+strconv.Itoa(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	hist, err := w.History(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].Version != 3 || hist[1].Version != 2 {
		t.Fatalf("history(2): %+v", hist)
	}
	for i, h := range hist {
		want := rels[2-i]
		if h.Author != want.Author || h.Message != want.Message || h.Revision != want.Revision || h.Hash != want.Hash ||
			h.Time.Before(start) || h.Time.After(time.Now()) {
			t.Fatalf("history entry %d = %+v, want %+v", i, h, want)
		}
	}
	_, want1, err := w.Raw().Release(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}

	c.Compact(t, 0)
	m := c.Members[0]
	m.Stop(t)
	m.Restart(t)

	var rel *config.Release
	deadline := time.Now().Add(20 * time.Second)
	for {
		rel, err = w.Rollback(ctx, 1, config.Author("oncall"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the client reconnects after the restart
	}
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 4 || rel.RollbackOf != 1 || rel.Message != "rollback to release 1" {
		t.Fatalf("rollback release: %+v", rel)
	}
	got, _, _, err := w.Raw().Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != want1.Hash() || rel.Hash != rels[0].Hash {
		t.Fatalf("rolled back content %v, want %v", got, want1)
	}
	v, _, _, _ := w.Get(ctx)
	if v.Pool != 10 || v.Labels["a"] != "1" || v.Mode != "" || len(v.Tags) != 0 {
		t.Fatalf("rolled back value: %+v", v)
	}
	if _, err := w.Rollback(ctx, 99); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("rollback to a missing release: %v", err)
	}
}

func TestRetention(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults, config.WithRetention(3))
	for i := 1; i <= 6; i++ {
		if _, err := w.Set(context.Background(), "n", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := w.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Version != 6 || hist[2].Version != 4 {
		t.Fatalf("kept %+v", hist)
	}
	if _, err := w.Rollback(context.Background(), 2); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("rollback to a pruned release: %v", err)
	}
}

func TestWriterPublishesSchemaAndRawWriterChecksIt(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	if _, err := w.Set(ctx, "pool", "10"); err != nil {
		t.Fatal(err)
	}
	raw := mustRaw(t, cli, p)
	doc, err := raw.Schema(ctx)
	if err != nil || string(doc) != string(w.Schema()) {
		t.Fatalf("published schema: %v", err)
	}
	before := revision(t, cli)
	_, err = raw.Replace(ctx, config.Content{"name": "x", "pool": "1000", "token": "s3cr3t-value"})
	var ve *schema.ValidationError
	if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &ve) || !strings.Contains(err.Error(), "pool") {
		t.Fatalf("raw write against the schema: %v", err)
	}
	if revision(t, cli) != before {
		t.Fatal("a rejected raw write moved the revision")
	}
	rel, err := raw.Replace(ctx, config.Content{"name": "x", "pool": "11", "token": "s3cr3t-value"}, config.Author("cli"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rel.Changes {
		if strings.Contains(ch.New, "s3cr3t") {
			t.Fatalf("raw writer result shows a secret: %+v", ch)
		}
	}
	if got, _, _, _ := w.Get(ctx); got.Pool != 11 || got.Token != "s3cr3t-value" {
		t.Fatalf("typed read of the raw write: %+v", got)
	}
}

func TestLoadPublishesSchema(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg, err := config.Load[Counter](context.Background(), config.WithDefaults(Counter{Name: "x", Pool: 1}),
		config.WithEtcd(cli, p), config.WithPublishSchema(), config.WithWatch(false, false))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Close()
	doc, err := mustRaw(t, cli, p).Schema(context.Background())
	want := mustWriter[Counter](t, cli, p, config.WithWriterDefaults(Counter{Name: "x", Pool: 1})).Schema()
	if err != nil || string(doc) != string(want) {
		t.Fatalf("published schema: %v\n%s", err, doc)
	}
	// The defaults provide name and pool: a push need not.
	if _, err := mustRaw(t, cli, p).Replace(context.Background(), config.Content{"n": "3"}); err != nil {
		t.Fatalf("push checked against the relaxed schema: %v", err)
	}
}

// ExpectRevision catches a write made around the writer after the caller
// read, which ExpectVersion cannot see.
func TestExpectRevision(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	if _, err := w.Set(ctx, "pool", "7"); err != nil {
		t.Fatal(err)
	}
	_, version, readAt, err := w.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put(t, cli, p, "mode", "fast") // etcdctl put after our read
	before := revision(t, cli)
	_, err = w.Set(ctx, "pool", "8", config.ExpectVersion(version), config.ExpectRevision(readAt))
	if !errors.Is(err, config.ErrConflict) || !strings.Contains(err.Error(), "data key mode changed") {
		t.Fatalf("err = %v", err)
	}
	if revision(t, cli) != before {
		t.Fatal("a conflicting write moved the revision")
	}
	if _, err := w.Set(ctx, "pool", "8", config.ExpectRevision(revision(t, cli))); err != nil {
		t.Fatal(err)
	}
	hist, _ := w.History(ctx, 1)
	if len(hist) != 1 {
		t.Fatalf("History(1) gave %d entries", len(hist))
	}
}

// mustWriter returns a writer of p or ends the test.
func mustWriter[T any](t testing.TB, cli *clientv3.Client, p string, opts ...config.WriterOption) *config.Writer[T] {
	t.Helper()
	w, err := config.NewWriter[T](cli, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// mustRaw returns a RawWriter of p or ends the test.
func mustRaw(t testing.TB, cli *clientv3.Client, p string, opts ...config.RawWriterOption) *config.RawWriter {
	t.Helper()
	w, err := config.NewRawWriter(cli, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
