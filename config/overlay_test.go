package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// Layered is an application whose required db.host comes from its file;
// etcd holds name, port and db/pool.
type Layered struct {
	Name    string   `koanf:"name" validate:"required"`
	Port    int      `koanf:"port" validate:"required,min=1,max=65535"`
	Counter int      `koanf:"counter"`
	Tags    []string `koanf:"tags"`
	DB      struct {
		Host string `koanf:"host" validate:"required"`
		Pool int    `koanf:"pool" validate:"omitempty,min=1,max=100"`
	} `koanf:"db"`
}

// layered seeds a prefix the way acceptance 1 describes and, with publish,
// runs the application once so that it publishes its relaxed schema.
func layered(t *testing.T, cli *clientv3.Client, publish bool) string {
	t.Helper()
	p := prefix(t)
	put(t, cli, p, "name", "payments")
	put(t, cli, p, "port", "8080")
	put(t, cli, p, "db/pool", "10")
	if publish {
		file := filepath.Join(t.TempDir(), "app.yaml")
		if err := os.WriteFile(file, []byte("db:\n  host: db.internal\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load[Layered](context.Background(), config.WithFile(file), config.WithEtcd(cli, p),
			config.WithPublishSchema(), config.WithWatch(false, false))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Close()
	}
	return p
}

// Acceptance 1: a writer with no options works on an overlay whose
// required db.host comes from the application's file.
func TestWriterOnOverlay(t *testing.T) {
	cli := client(t)
	ctx := context.Background()
	for _, publish := range []bool{false, true} {
		t.Run(fmt.Sprintf("published=%v", publish), func(t *testing.T) {
			p := layered(t, cli, publish)
			w := mustWriter[Layered](t, cli, p)
			r1, err := w.Update(ctx, func(a *Layered) error { a.DB.Pool = 20; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(r1.Changes) != 1 || r1.Changes[0].Key != "db/pool" || r1.Changes[0].New != "20" {
				t.Fatalf("changes = %+v", r1.Changes)
			}
			cur, _, _, err := w.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cur.Name = "billing"
			if _, err := w.Replace(ctx, cur); err != nil {
				t.Fatal(err)
			}
			if got := get(t, cli, p, "name"); got != "billing" {
				t.Fatalf("name = %q after Replace", got)
			}
			if _, err := cli.Get(ctx, p+"/data/db/host"); err != nil {
				t.Fatal(err)
			}
			if got := get(t, cli, p, "db/host"); got != "" {
				t.Fatalf("Replace wrote db/host = %q: the file provides it", got)
			}
			if _, err := w.Rollback(ctx, r1.Version); err != nil {
				t.Fatal(err)
			}
			if got := get(t, cli, p, "name"); got != "payments" {
				t.Fatalf("name = %q after Rollback", got)
			}
			_, err = w.Update(ctx, func(a *Layered) error { a.Port = 0; return nil })
			var ie *config.InvalidError
			if !errors.Is(err, config.ErrInvalid) || !errors.As(err, &ie) || ie.Problems[0].Path != "port" {
				t.Fatalf("port 0: err = %v", err)
			}
			_, err = w.Delete(ctx, "name")
			if publish != errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Delete name with the schema published=%v: err = %v", publish, err)
			}
		})
	}
}

// Acceptance 2: 4 goroutines x 25 Updates of a counter on the overlay.
func TestConcurrentUpdatesOnOverlay(t *testing.T) {
	cli := client(t)
	p := layered(t, cli, true)
	w := mustWriter[Layered](t, cli, p)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := w.Update(context.Background(), func(a *Layered) error { a.Counter++; return nil }); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := get(t, cli, p, "counter"); got != "100" {
		t.Fatalf("counter = %s, want 100", got)
	}
	hist, err := w.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 100 {
		t.Fatalf("History lists %d entries, want 100", len(hist))
	}
}

// A current content that is invalid does not block a write whose result
// is valid, nor let through one whose result is not.
func TestInvalidCurrentDoesNotBlock(t *testing.T) {
	cli := client(t)
	p := layered(t, cli, false)
	put(t, cli, p, "port", "abc") // around the writer
	w := mustWriter[Layered](t, cli, p)
	ctx := context.Background()
	if _, err := w.Update(ctx, func(a *Layered) error { a.DB.Pool = 30; return nil }); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "port") {
		t.Fatalf("a write leaving port=abc: err = %v", err)
	}
	if _, err := w.Update(ctx, func(a *Layered) error { a.Port = 9090; a.DB.Pool = 30; return nil }); err != nil {
		t.Fatalf("a write that fixes port: %v", err)
	}
	if get(t, cli, p, "port") != "9090" || get(t, cli, p, "db/pool") != "30" {
		t.Fatal("the fixing write did not land")
	}
}

// Build 2: ExpectRevision sees releases through the writer: a stale
// Replace does not bring a deleted key back.
func TestExpectRevisionSeesDelete(t *testing.T) {
	cli := client(t)
	p := layered(t, cli, false)
	w := mustWriter[Layered](t, cli, p)
	ctx := context.Background()
	cur, _, readAt, err := w.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Delete(ctx, "db.pool"); err != nil {
		t.Fatal(err)
	}
	cur.Port = 8081
	if _, err := w.Replace(ctx, cur, config.ExpectRevision(readAt)); !errors.Is(err, config.ErrConflict) {
		t.Fatalf("stale Replace: err = %v", err)
	}
	if got := get(t, cli, p, "db/pool"); got != "" {
		t.Fatalf("db/pool = %q: the deleted key came back", got)
	}
	// A delete around the writer is caught too.
	_, _, readAt, _ = w.Get(ctx)
	if _, err := cli.Delete(ctx, p+"/data/name"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Set(ctx, "port", "8082", config.ExpectRevision(readAt)); !errors.Is(err, config.ErrConflict) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("after a delete around the writer: err = %v", err)
	}
}

// Build 5: Replace writes a value equal to the writer's defaults that
// etcd does not hold: etcd holds name and db/pool but no port, the
// writer's default port is 7000, and Replace with port 7000 stores port.
func TestReplaceWritesDefaultValues(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "name", "payments")
	put(t, cli, p, "db/pool", "10")
	w := mustWriter[Layered](t, cli, p, config.WithWriterDefaults(Layered{Name: "svc", Port: 7000}))
	ctx := context.Background()
	if got := get(t, cli, p, "port"); got != "" {
		t.Fatalf("etcd holds port = %q before the Replace", got)
	}
	v := Layered{Name: "payments", Port: 7000} // port equals the default
	v.DB.Host = "db.internal"
	v.DB.Pool = 10
	rel, err := w.Replace(ctx, &v)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, cli, p, "port"); got != "7000" {
		t.Fatalf("etcd's port = %q after Replace, want 7000 (changes: %+v)", got, rel.Changes)
	}
	if got := get(t, cli, p, "db/host"); got != "db.internal" {
		t.Fatalf("db/host = %q", got)
	}
	var wrotePort bool
	for _, ch := range rel.Changes {
		wrotePort = wrotePort || (ch.Key == "port" && ch.New == "7000")
	}
	if !wrotePort {
		t.Fatalf("the release does not list port: %+v", rel.Changes)
	}
	// The same Replace again finds nothing to change.
	again, err := w.Replace(ctx, &v)
	if err != nil || len(again.Changes) != 0 || again.Version != rel.Version {
		t.Fatalf("Replace again: %+v, %v", again, err)
	}
}

// Build 5: Update changes a slice stored as index keys.
func TestUpdateSliceOfIndexKeys(t *testing.T) {
	cli := client(t)
	p := layered(t, cli, false)
	put(t, cli, p, "tags/0", "a")
	put(t, cli, p, "tags/1", "b")
	w := mustWriter[Layered](t, cli, p)
	ctx := context.Background()
	if _, err := w.Update(ctx, func(a *Layered) error { a.Tags = append(a.Tags, "c"); return nil }); err != nil {
		t.Fatal(err)
	}
	got, _, _, err := w.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Tags, ",") != "a,b,c" {
		t.Fatalf("tags = %v", got.Tags)
	}
	// Emptying a slice held as index keys deletes them.
	put(t, cli, p, "tags/0", "x") // around the writer, beside the JSON text
	cli.Delete(ctx, p+"/data/tags")
	if _, err := w.Update(ctx, func(a *Layered) error { a.Tags = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, p+"/data/tags", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("%d tags keys left (%v)", resp.Count, err)
	}
}

// Build 5: a version key deleted around the writer does not let the next
// write overwrite an existing release record.
func TestDeletedVersionKeyKeepsReleases(t *testing.T) {
	cli := client(t)
	p := layered(t, cli, false)
	w := mustWriter[Layered](t, cli, p)
	ctx := context.Background()
	r1, err := w.Set(ctx, "db.pool", "11", config.Message("first"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, p+"/meta/version"); err != nil {
		t.Fatal(err)
	}
	w2 := mustWriter[Layered](t, cli, p) // a writer with no cache
	r2, err := w2.Set(ctx, "db.pool", "12", config.Message("second"))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Version <= r1.Version {
		t.Fatalf("second release is version %d, first was %d", r2.Version, r1.Version)
	}
	rel, _, err := w.Release(ctx, r1.Version)
	if err != nil || rel.Message != "first" {
		t.Fatalf("release %d: %+v, %v", r1.Version, rel, err)
	}
}

// dropper is a gRPC interceptor that lets commits (transactions with
// compares) reach etcd and loses their answers while drop is on; with
// fail on, it then fails every call until fail is off again.
type dropper struct {
	drop, fail atomic.Bool
	dropped    atomic.Int64
}

func (d *dropper) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if d.fail.Load() && d.dropped.Load() > 0 {
		return status.Error(codes.Unavailable, "test: etcd unreachable")
	}
	txn, ok := req.(*pb.TxnRequest)
	if !ok || len(txn.Compare) == 0 || !d.drop.Load() {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	d.drop.Store(false)
	d.dropped.Add(1)
	return status.Error(codes.Unavailable, "test: the answer to the commit was lost")
}

// Acceptance 3: a commit whose answer is lost is applied exactly once; the
// caller gets the release, or ErrUnknownOutcome, never a plain error.
func TestLostCommitAnswer(t *testing.T) {
	d := &dropper{}
	cfg := shared.ClientConfig()
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainUnaryInterceptor(d.intercept))
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	p := layered(t, cli, true)
	w := mustWriter[Layered](t, cli, p)
	inc := func(a *Layered) error { a.Counter++; return nil }

	// Resolved inside the writer.
	d.drop.Store(true)
	rel, err := w.Update(context.Background(), inc)
	if err != nil {
		t.Fatalf("Update after a lost answer: %v", err)
	}
	if d.dropped.Load() != 1 {
		t.Fatal("no answer was dropped")
	}
	if got := get(t, cli, p, "counter"); got != "1" {
		t.Fatalf("counter = %s, want 1", got)
	}

	// Not resolvable before the context ends: ErrUnknownOutcome; the same
	// write sent again with its id finds the earlier commit.
	d.dropped.Store(0)
	d.drop.Store(true)
	d.fail.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = w.Update(ctx, inc, config.WriteID("inc-2"))
	cancel()
	if !errors.Is(err, config.ErrUnknownOutcome) {
		t.Fatalf("err = %v, want ErrUnknownOutcome", err)
	}
	d.fail.Store(false)
	again, err := w.Update(context.Background(), inc, config.WriteID("inc-2"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != rel.Version+1 {
		t.Fatalf("the resent write returned version %d, want %d", again.Version, rel.Version+1)
	}
	if got := get(t, cli, p, "counter"); got != "2" {
		t.Fatalf("counter = %s, want 2", got)
	}
	hist, _ := w.History(context.Background(), 0)
	if len(hist) != 2 {
		t.Fatalf("History lists %d releases, want 2", len(hist))
	}
}

// Acceptance 4: a prefix of 8,000 keys of 200 bytes: one Set writes a
// small record, and after 50 more writes and a compaction, Rollback
// restores the content exactly.
func TestLargeConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("large configuration")
	}
	cli := client(t)
	p := prefix(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	value := func() string {
		b := make([]byte, 200)
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rng.IntN(36)]
		}
		return string(b)
	}
	for i := 0; i < 8000; i += 100 {
		var ops []clientv3.Op
		for j := i; j < i+100; j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s/data/k%05d", p, j), value()))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	w := mustRaw(t, cli, p)
	first, err := w.Set(ctx, "k00000", value())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, fmt.Sprintf("%s/meta/releases/%020d", p, first.Version))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(err)
	}
	if n := len(resp.Kvs[0].Value); n >= 16<<10 {
		t.Fatalf("release record is %d bytes", n)
	}
	for i := 1; i <= 50; i++ {
		if _, err := w.Set(ctx, fmt.Sprintf("k%05d", i*97), value()); err != nil {
			t.Fatal(err)
		}
	}
	shared.Compact(t, 0)
	rel, err := w.Rollback(ctx, first.Version)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Hash != first.Hash {
		t.Fatalf("rollback gave %s, release %d was %s", rel.Hash, first.Version, first.Hash)
	}
	data, _, _, err := w.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if data.Hash() != first.Hash {
		t.Fatal("etcd's content after the rollback differs from the release")
	}
	// Every retained release can be rebuilt.
	for v := first.Version; v <= rel.Version; v++ {
		r, c, err := w.Release(ctx, v)
		if err != nil {
			t.Fatalf("release %d: %v", v, err)
		}
		if c.Hash() != r.Hash {
			t.Fatalf("release %d rebuilt to another content", v)
		}
	}
}

// Releases keep values byte for byte, also when they are not UTF-8.
func TestReleasesKeepBytes(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustRaw(t, cli, p)
	ctx := context.Background()
	raw := "caf\xe9 \xff"
	r1, err := w.Set(ctx, "label", raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Set(ctx, "label", "plain"); err != nil {
		t.Fatal(err)
	}
	_, c, err := w.Release(ctx, r1.Version)
	if err != nil {
		t.Fatal(err)
	}
	if c["label"] != raw {
		t.Fatalf("release %d holds %q, want %q", r1.Version, c["label"], raw)
	}
	hist, _ := w.History(ctx, 0)
	if len(hist) != 2 || hist[1].Changes[0].New != raw {
		t.Fatalf("history: %+v", hist)
	}
}

// Changes made around the writer are kept in the record of the release
// that follows them.
func TestOutsideChangesRecorded(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustRaw(t, cli, p)
	ctx := context.Background()
	if _, err := w.Set(ctx, "a", "1"); err != nil {
		t.Fatal(err)
	}
	put(t, cli, p, "b", "2") // etcdctl put
	r2, err := w.Set(ctx, "a", "3")
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Outside) != 1 || r2.Outside[0].Key != "b" || r2.Outside[0].New != "2" {
		t.Fatalf("outside = %+v", r2.Outside)
	}
	hist, _ := w.History(ctx, 0)
	if len(hist) != 2 || len(hist[0].Outside) != 1 {
		t.Fatalf("history: %+v", hist)
	}
	resp, _ := cli.Get(ctx, fmt.Sprintf("%s/meta/releases/%020d", p, r2.Version))
	var rec map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil || rec["outside"] == nil {
		t.Fatalf("record: %s", resp.Kvs[0].Value)
	}
	// Every release rebuilds, across the write around the writer.
	shared.Compact(t, 0)
	if _, err := w.Rollback(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if get(t, cli, p, "b") != "" || get(t, cli, p, "a") != "1" {
		t.Fatal("rollback to release 1 did not restore its content")
	}
}

// get returns the value of p/data/rel, "" when there is none.
func get(t testing.TB, cli *clientv3.Client, p, rel string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), p+"/data/"+rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// Prefixes that are not absolute key paths are refused, naming the rule,
// by Load, NewWriter and NewRawWriter alike.
func TestBadPrefixRefused(t *testing.T) {
	cli := client(t)
	for _, p := range []string{"", "  ", "app/prod", "/a//b"} {
		if _, err := config.NewRawWriter(cli, p); err == nil || !strings.Contains(err.Error(), "absolute key path") {
			t.Errorf("NewRawWriter(%q): %v", p, err)
		}
		if _, err := config.NewWriter[Layered](cli, p); err == nil || !strings.Contains(err.Error(), "absolute key path") {
			t.Errorf("NewWriter(%q): %v", p, err)
		}
		if _, err := config.Load[Layered](context.Background(), config.WithEtcd(cli, p)); err == nil || !strings.Contains(err.Error(), "absolute key path") {
			t.Errorf("Load(%q): %v", p, err)
		}
	}
}

// Set refuses a leaf where a subtree is held (and the reverse), and the
// mask at a secret path; nothing is written.
func TestSetRefusesShadowsAndMask(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustWriter[Counter](t, cli, p, counterDefaults)
	ctx := context.Background()
	if _, err := w.Set(ctx, "token", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Set(ctx, "token", config.Mask); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "refusing to store it at token") {
		t.Fatalf("mask at a secret path: %v", err)
	}
	if got := get(t, cli, p, "token"); got != "hunter2" {
		t.Fatalf("token = %q", got)
	}
	p = prefix(t) // no schema
	raw := mustRaw(t, cli, p)
	if _, err := raw.Set(ctx, "db.host", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Set(ctx, "db", "5"); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "db/host") {
		t.Fatalf("leaf over a subtree: %v", err)
	}
	if _, err := raw.Set(ctx, "db.host.name", "5"); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "db/host") {
		t.Fatalf("leaf under a leaf: %v", err)
	}
	if get(t, cli, p, "db") != "" || get(t, cli, p, "db/host/name") != "" {
		t.Fatal("a refused Set wrote")
	}
}

// A corrupt release record is listed with its error; the others stay
// readable, and releases rebuilt without replaying it still rebuild.
func TestCorruptRecord(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustRaw(t, cli, p)
	ctx := context.Background()
	for i := range 3 {
		if _, err := w.Set(ctx, "n", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, fmt.Sprintf("%s/meta/releases/%020d", p, 2), "{broken"); err != nil {
		t.Fatal(err)
	}
	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[1].Version != 2 || hist[1].Err == nil || hist[0].Err != nil || hist[2].Err != nil {
		t.Fatalf("history: %+v", hist)
	}
	if _, c, err := w.Release(ctx, 1); err != nil || c["n"] != "0" {
		t.Fatalf("release 1: %v %v", c, err)
	}
	if _, _, err := w.Release(ctx, 3); err == nil || !strings.Contains(err.Error(), "cannot be rebuilt") {
		t.Fatalf("release 3 replays the corrupt record: %v", err)
	}
}

// Publishing a schema checks the current content against it (a stricter
// schema is refused with the failing paths), is a release in History, and
// writes nothing on a dry run or when it is already in force.
func TestPublishSchemaIsChecked(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	w := mustRaw(t, cli, p)
	ctx := context.Background()
	loose := []byte(`{"type":"object","properties":{"port":{"type":"integer"}}}`)
	strict := []byte(`{"type":"object","properties":{"port":{"type":"integer","maximum":1000}},"required":["name"]}`)
	if _, err := w.PublishSchema(ctx, loose); err != nil { // over no content
		t.Fatal(err)
	}
	if _, err := w.Set(ctx, "port", "8080"); err != nil {
		t.Fatal(err)
	}
	_, err := w.PublishSchema(ctx, strict)
	var ie *config.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 2 || ie.Problems[0].Path != "name" || ie.Problems[1].Path != "port" {
		t.Fatalf("stricter schema: %v", err)
	}
	if doc, _ := w.Schema(ctx); string(doc) != string(loose) {
		t.Fatal("a refused schema was published")
	}
	if rel, err := w.PublishSchema(ctx, loose); err != nil || rel.Schema != "" {
		t.Fatalf("the same schema again: %+v %v", rel, err)
	}
	forced, err := mustRaw(t, cli, p, config.WithoutSchemaCheck()).PublishSchema(ctx, strict, config.Message("tighten"), config.DryRun())
	if err != nil || !forced.DryRun || forced.Schema == "" {
		t.Fatalf("dry run: %+v %v", forced, err)
	}
	if doc, _ := w.Schema(ctx); string(doc) != string(loose) {
		t.Fatal("a dry run published")
	}
	rel, err := mustRaw(t, cli, p, config.WithoutSchemaCheck()).PublishSchema(ctx, strict, config.Message("tighten"))
	if err != nil {
		t.Fatal(err)
	}
	hist, _ := w.History(ctx, 0)
	if len(hist) != 3 || hist[0].Version != rel.Version || hist[0].Schema == "" || hist[0].Message != "tighten" || len(hist[0].Changes) != 0 {
		t.Fatalf("history: %+v", hist)
	}
}

// A secret inside a slice element never shows in a write's changes or in
// History, whether the slice is one JSON text or index keys.
func TestSecretInsideSliceMasked(t *testing.T) {
	type Cred struct {
		User  string `koanf:"user"`
		Token string `koanf:"token" secret:"true"`
	}
	type App struct {
		Creds []Cred `koanf:"creds"`
	}
	cli := client(t)
	p := prefix(t)
	w := mustWriter[App](t, cli, p)
	ctx := context.Background()
	rel, err := w.Update(ctx, func(a *App) error {
		a.Creds = append(a.Creds, Cred{User: "ci", Token: "tok-hunter2-secret"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, cli, p, "creds/1/token", "tok-index-secret") // as index keys, around the writer
	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || !hist[0].Unrecorded || len(hist[0].Changes) != 1 || hist[0].Changes[0].New != config.Mask {
		t.Fatalf("history: %+v", hist)
	}
	all := fmt.Sprintf("%+v %+v", rel, hist)
	if strings.Contains(all, "hunter2") || strings.Contains(all, "tok-index-secret") {
		t.Fatalf("a secret shows: %s", all)
	}
}
