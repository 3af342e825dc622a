//go:build faultsuite

package faultsuite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Service is the configuration the acceptance test writes and watches.
type Service struct {
	Name  string `koanf:"name" validate:"required"`
	Port  int    `koanf:"port" validate:"min=1,max=65535"`
	Limit int    `koanf:"limit" validate:"min=1,max=100"`
}

// acceptanceStep bounds one step of TestAcceptance, its waits included.
const acceptanceStep = 60 * time.Second

// TestAcceptance checks, on one 3-member cluster of etcd processes, what
// Strata needs from an etcd server, through the library's public API only:
// Load and reload on a put, a resync after a compaction, compare-and-swap
// writes (Writer and RawWriter, conflicts, exactly-once ids), release
// retention, history and rollback, and instance records on leases. It is
// short (no fault stream), so that it can run against every supported
// server version; .ci/run runs it against etcd 3.5. Each step uses a
// prefix of its own.
//
//	go test -tags faultsuite -run TestAcceptance -v ./internal/faultsuite/ -etcd=$(STRATA_ETCD_VERSION=3.5.35 .ci/etcd-bin)
func TestAcceptance(t *testing.T) {
	bin, version := etcdBinary(t)
	start := time.Now()
	c := StartCluster(t, bin, 3)
	steps := []struct {
		name string
		fn   func(ctx context.Context, t *testing.T, c *Cluster, prefix string)
	}{
		{"load-reload", accLoadReload},
		{"compact-resync", accCompactResync},
		{"cas", accCAS},
		{"retention", accRetention},
		{"history-rollback", accHistoryRollback},
		{"instances", accInstances},
	}
	passed := 0
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), acceptanceStep)
			defer cancel()
			s.fn(ctx, t, c, "/acceptance/"+s.name)
		})
		if ok {
			passed++
		}
	}
	line := fmt.Sprintf("acceptance: etcd %s: %d of %d steps passed, %.1fs", version, passed, len(steps), time.Since(start).Seconds())
	t.Log(line)
	fmt.Println(line)
}

// accLoadReload: Load reads what the writer committed; a writer Update, a
// put around the writer and a delete each reach OnChange as one change at
// their revision; an invalid put reaches OnError and leaves the value.
func accLoadReload(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	w := newAccWriter(t, c.Client(t), prefix)
	seed := commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 8080, Limit: 10},
		config.Author("acceptance"), config.Message("seed")))

	cfg, rec := loadRecorded(ctx, t, c.Client(t, c.Members[1].ClientURL), prefix,
		config.WithDefaults(Service{Name: "default", Port: 1, Limit: 5}))
	if got, want := *cfg.Get(), (Service{Name: "api", Port: 8080, Limit: 10}); got != want {
		t.Fatalf("Load: %+v, want %+v", got, want)
	}
	if rev := cfg.Snapshot().Revision; rev < seed.Revision {
		t.Fatalf("Load read revision %d, before the seed's %d", rev, seed.Revision)
	}
	cfg.Health() // the release version is tracked from the first call on

	// Two fields in one Update: one change naming both.
	rel := commit(t, "update")(w.Update(ctx, func(s *Service) error { s.Port, s.Limit = 8081, 20; return nil }))
	ch := rec.waitChange(ctx, t, "the Update", rel.Revision)
	if !slices.Equal(ch.Paths, []string{"limit", "port"}) || ch.Old.Port != 8080 || ch.New.Port != 8081 ||
		ch.New.Limit != 20 || ch.Resync || ch.Source != config.LayerEtcd {
		t.Fatalf("change of the Update: %+v", describe(ch))
	}

	// A put around the writer, as etcdctl would make it.
	limitKey := etcdprov.NewLayout(prefix).LeafKey("limit")
	put := mustPut(ctx, t, c, limitKey, "30")
	ch = rec.waitChange(ctx, t, "a plain put", put)
	if !slices.Equal(ch.Paths, []string{"limit"}) || ch.Old.Limit != 20 || ch.New.Limit != 30 {
		t.Fatalf("change of the plain put: %+v", describe(ch))
	}

	// An invalid put: reported, not applied.
	bad := mustPut(ctx, t, c, limitKey, "1000")
	err := rec.waitError(ctx, t, "the invalid put", bad)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("invalid put reported as %v, want ErrInvalid", err)
	}
	if got := cfg.Get().Limit; got != 30 {
		t.Fatalf("after the invalid put Limit = %d, want 30 (the last good value)", got)
	}

	// A valid write over the invalid content; then a delete falls back to
	// the default.
	rel = commit(t, "set over invalid content")(w.Set(ctx, "limit", "40"))
	ch = rec.waitChange(ctx, t, "the Set", rel.Revision)
	if ch.Old.Limit != 30 || ch.New.Limit != 40 {
		t.Fatalf("change of the Set: %+v", describe(ch))
	}
	rel = commit(t, "delete")(w.Delete(ctx, "limit"))
	ch = rec.waitChange(ctx, t, "the Delete", rel.Revision)
	if !slices.Equal(ch.Paths, []string{"limit"}) || ch.New.Limit != 5 {
		t.Fatalf("change of the Delete: %+v", describe(ch))
	}
	var h config.Health
	waitUntil(ctx, t, "Health to show the Delete", func() bool {
		h = cfg.Health()
		return h.Status == "ok" && h.Etcd != nil && h.Etcd.Watching && h.Revision == rel.Revision && h.Version == rel.Version
	}, func() string { return fmt.Sprintf("last %+v, etcd %+v", h, h.Etcd) })
	rec.checkOrder(t)
}

// accCompactResync: the member a Config watches through is killed, the
// others take writes and compact past them; when it is back, the watch
// finds its revision compacted and re-reads the prefix: one Resync change
// with the newest value. A rollback to a release whose revision was
// compacted still works.
func accCompactResync(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	m, err := c.Follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, o := range c.Members {
		if o != m {
			others = append(others, o.ClientURL)
		}
	}
	w := newAccWriter(t, c.Client(t, others...), prefix)
	seed := commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 8000, Limit: 10}))
	cfg, rec := loadRecorded(ctx, t, c.Client(t, m.ClientURL), prefix)

	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !m.Running() {
			_ = m.Restart(context.Background())
		}
	})
	var last *config.Release
	for i := 1; i <= 5; i++ {
		last = commit(t, "write while "+m.Name+" is down")(w.Set(ctx, "port", strconv.Itoa(8000+i)))
	}
	rev, err := c.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Compact(ctx, rev); err != nil {
		t.Fatalf("compact at %d: %v", rev, err)
	}
	if got := cfg.Get().Port; got != 8000 {
		t.Fatalf("the Config moved to port %d while its member was down", got)
	}
	if err := m.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	ch := rec.waitChange(ctx, t, "the resync after the compaction", last.Revision)
	if !ch.Resync || ch.Old.Port != 8000 || ch.New.Port != 8005 {
		t.Fatalf("change after the compaction: %+v, want one Resync change from port 8000 to 8005", describe(ch))
	}
	if h := cfg.Health(); h.Etcd == nil || h.Etcd.Resyncs < 1 {
		t.Fatalf("Health after the compaction: %+v, want at least one resync", h.Etcd)
	}

	// The seed's revision is compacted; its release can be restored.
	rb := commit(t, "rollback past the compaction")(w.Rollback(ctx, seed.Version))
	if rb.RollbackOf != seed.Version || rb.Hash != seed.Hash {
		t.Fatalf("rollback to %d: RollbackOf %d, hash %s, want the seed's %s", seed.Version, rb.RollbackOf, rb.Hash, seed.Hash)
	}
	ch = rec.waitChange(ctx, t, "the rollback", rb.Revision)
	if ch.New.Port != 8000 || ch.Resync {
		t.Fatalf("change of the rollback: %+v", describe(ch))
	}
	rec.checkOrder(t)
}

// accCAS: versioned compare-and-swap through Writer and RawWriter.
func accCAS(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	cli := c.Client(t)
	w := newAccWriter(t, cli, prefix)
	raw, err := config.NewRawWriter(cli, prefix)
	if err != nil {
		t.Fatal(err)
	}
	r1 := commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 9000, Limit: 10}))
	r2 := commit(t, "raw Set with ExpectVersion")(raw.Set(ctx, "port", "9001", config.ExpectVersion(r1.Version)))
	if r2.Version != r1.Version+1 {
		t.Fatalf("raw Set made version %d, want %d", r2.Version, r1.Version+1)
	}

	// A write based on r1 lost the race.
	_, err = w.Replace(ctx, &Service{Name: "api", Port: 9002, Limit: 10}, config.ExpectVersion(r1.Version))
	var ce *config.ConflictError
	if !errors.Is(err, config.ErrConflict) || !errors.As(err, &ce) || ce.Expected != r1.Version || ce.Current != r2.Version {
		t.Fatalf("Replace expecting version %d after %d: %v, want a ConflictError (expected %d, current %d)",
			r1.Version, r2.Version, err, r1.Version, r2.Version)
	}
	_, err = raw.Set(ctx, "limit", "11", config.ExpectVersion(r1.Version))
	if !errors.Is(err, config.ErrConflict) {
		t.Fatalf("raw Set expecting version %d after %d: %v, want ErrConflict", r1.Version, r2.Version, err)
	}
	content, version, _, err := raw.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if version != r2.Version || content["port"] != "9001" || content["limit"] != "10" {
		t.Fatalf("after the conflicts: version %d, %v; want version %d, port 9001, limit 10", version, content, r2.Version)
	}

	// ExpectRevision also sees a put around the writer.
	put := mustPut(ctx, t, c, etcdprov.NewLayout(prefix).LeafKey("limit"), "12")
	_, err = w.Set(ctx, "port", "9003", config.ExpectRevision(r2.Revision))
	if !errors.Is(err, config.ErrConflict) {
		t.Fatalf("Set expecting revision %d after a plain put at %d: %v, want ErrConflict", r2.Revision, put, err)
	}
	r3 := commit(t, "Set with ExpectRevision")(w.Set(ctx, "port", "9003", config.ExpectRevision(put)))

	// Invalid content is refused and writes nothing.
	if _, err := raw.Set(ctx, "port", "70000"); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("raw Set of port 70000: %v, want ErrInvalid", err)
	}

	// One write id commits once.
	first := commit(t, "Set with a write id")(w.Set(ctx, "limit", "13", config.WriteID("acceptance-once")))
	again := commit(t, "the same write id again")(w.Set(ctx, "limit", "14", config.WriteID("acceptance-once")))
	if again.Version != first.Version || again.Revision != first.Revision {
		t.Fatalf("a write id sent twice: versions %d and %d, want the first release back", first.Version, again.Version)
	}
	_, version, _, err = raw.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if version != r3.Version+1 {
		t.Fatalf("version %d after the invalid write and the repeated id, want %d", version, r3.Version+1)
	}

	// Concurrent Updates through two members: none is lost.
	const writers, each = 2, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	versions := make(chan int64, writers*each)
	for i := range writers {
		wi := newAccWriter(t, c.Client(t, c.Members[i].ClientURL), prefix, config.WithMaxAttempts(100))
		wg.Go(func() {
			for range each {
				rel, err := wi.Update(ctx, func(s *Service) error { s.Port++; return nil })
				if err != nil {
					errs <- err
					return
				}
				versions <- rel.Version
			}
		})
	}
	wg.Wait()
	close(errs)
	close(versions)
	for err := range errs {
		t.Errorf("concurrent Update: %v", err)
	}
	seen := map[int64]bool{}
	for v := range versions {
		if seen[v] {
			t.Errorf("two concurrent Updates returned version %d", v)
		}
		seen[v] = true
	}
	got, version, _, err := w.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 9003+writers*each || version != first.Version+writers*each {
		t.Fatalf("after %d concurrent Updates: port %d at version %d, want %d at version %d",
			writers*each, got.Port, version, 9003+writers*each, first.Version+writers*each)
	}
}

// accRetention: WithRetention keeps the newest n release records; older
// ones are gone from History, Release and Rollback. Kept releases are
// rebuilt from a checkpoint and the records after it: only the newest are
// checked, as the oldest kept ones may have their checkpoint's record
// out of retention.
func accRetention(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	const keep, writes = 40, 45
	cli := c.Client(t)
	w := newAccWriter(t, cli, prefix, config.WithRetention(keep))
	commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 7001, Limit: 10}))
	for i := 2; i <= writes; i++ {
		commit(t, "write")(w.Set(ctx, "port", strconv.Itoa(7000+i)))
	}
	hist, err := w.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != keep || hist[0].Version != writes || hist[keep-1].Version != writes-keep+1 {
		t.Fatalf("History with retention %d after %d writes: %d entries, versions %d..%d; want %d, %d..%d",
			keep, writes, len(hist), hist[len(hist)-1].Version, hist[0].Version, keep, writes-keep+1, writes)
	}
	resp, err := cli.Get(ctx, etcdprov.NewLayout(prefix).Releases(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != keep {
		t.Fatalf("%d release records in etcd, want %d", resp.Count, keep)
	}
	gone := int64(writes - keep)
	if _, _, err := w.Release(ctx, gone); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Release(%d), not kept: %v, want ErrNotFound", gone, err)
	}
	if _, err := w.Rollback(ctx, gone); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Rollback(%d), not kept: %v, want ErrNotFound", gone, err)
	}
	rel, content, err := w.Release(ctx, writes-1)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(7000 + writes - 1); rel.Version != writes-1 || content["port"] != want {
		t.Fatalf("Release(%d): version %d, %v; want port %s", writes-1, rel.Version, content, want)
	}
	rb := commit(t, "rollback to a kept release")(w.Rollback(ctx, writes-1))
	got, version, _, err := w.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Version != writes+1 || version != writes+1 || got.Port != 7000+writes-1 {
		t.Fatalf("Rollback(%d): version %d, port %d; want version %d, port %d", writes-1, version, got.Port, writes+1, 7000+writes-1)
	}
}

// accHistoryRollback: History lists releases newest first with who, why
// and what, and a write around the writer as unrecorded; Rollback restores
// an old release as a new one, which a watching Config applies.
func accHistoryRollback(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	w := newAccWriter(t, c.Client(t), prefix)
	seed := commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 6000, Limit: 10},
		config.Author("alice"), config.Message("first")))
	cfg, rec := loadRecorded(ctx, t, c.Client(t, c.Members[2].ClientURL), prefix)
	commit(t, "port")(w.Set(ctx, "port", "6001", config.Author("bob"), config.Message("move")))
	r3 := commit(t, "name")(w.Set(ctx, "name", "api2", config.Author("carol"), config.Message("rename")))

	hist, err := w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		author, msg, key, old, new string
	}{{"carol", "rename", "name", "api", "api2"}, {"bob", "move", "port", "6000", "6001"}, {"alice", "first", "", "", ""}}
	if len(hist) != len(want) {
		t.Fatalf("History: %d entries, want %d", len(hist), len(want))
	}
	for i, h := range hist {
		wt := want[i]
		if h.Version != seed.Version+int64(len(want)-1-i) || h.Author != wt.author || h.Message != wt.msg || h.Unrecorded {
			t.Errorf("History[%d]: version %d by %q (%q), want version %d by %q (%q)",
				i, h.Version, h.Author, h.Message, seed.Version+int64(len(want)-1-i), wt.author, wt.msg)
		}
		if wt.key != "" && (len(h.Changes) != 1 || h.Changes[0].Key != wt.key || h.Changes[0].Old != wt.old || h.Changes[0].New != wt.new) {
			t.Errorf("History[%d] changes: %+v, want %s: %s -> %s", i, h.Changes, wt.key, wt.old, wt.new)
		}
	}

	put := mustPut(ctx, t, c, etcdprov.NewLayout(prefix).LeafKey("limit"), "20")
	hist, err = w.History(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || !hist[0].Unrecorded || hist[0].Revision != put || len(hist[0].Changes) != 1 || hist[0].Changes[0].Key != "limit" {
		t.Fatalf("History after a plain put at %d: first entry %+v, want it unrecorded, naming limit", put, hist[0])
	}

	rb := commit(t, "rollback")(w.Rollback(ctx, seed.Version, config.Author("dave")))
	if rb.Version != r3.Version+1 || rb.RollbackOf != seed.Version || rb.Hash != seed.Hash {
		t.Fatalf("Rollback(%d): version %d, RollbackOf %d, hash %s; want version %d, RollbackOf %d, hash %s",
			seed.Version, rb.Version, rb.RollbackOf, rb.Hash, r3.Version+1, seed.Version, seed.Hash)
	}
	ch := rec.waitChange(ctx, t, "the rollback", rb.Revision)
	if got := *ch.New; got != (Service{Name: "api", Port: 6000, Limit: 10}) {
		t.Fatalf("the Config after the rollback: %+v", got)
	}
	if got := *cfg.Get(); got != *ch.New {
		t.Fatalf("Get after the rollback: %+v", got)
	}
	rec.checkOrder(t)
}

// accInstances: WithInstance keeps a record on a lease that follows the
// applied release, comes back when its lease is revoked, is removed with
// its lease on Close, and expires when its keepalives stop.
func accInstances(ctx context.Context, t *testing.T, c *Cluster, prefix string) {
	const ttl = 2 * time.Second
	w := newAccWriter(t, c.Client(t), prefix)
	commit(t, "seed")(w.Replace(ctx, &Service{Name: "api", Port: 5000, Limit: 10}))
	cfgA, _ := loadRecorded(ctx, t, c.Client(t, c.Members[0].ClientURL), prefix,
		config.WithInstance("a", map[string]string{"zone": "z1"}, ttl))
	cliB := c.Client(t, c.Members[1].ClientURL)
	cfgB, _ := loadRecorded(ctx, t, cliB, prefix, config.WithInstance("b", nil, ttl))

	rel := commit(t, "update")(w.Set(ctx, "port", "5001"))
	waitUntil(ctx, t, "both instance records at the update", func() bool {
		ins, err := config.Instances(ctx, c.admin, prefix)
		if err != nil || len(ins) != 2 {
			return false
		}
		for _, in := range ins {
			if in.AppliedRevision != rel.Revision || in.AppliedVersion != rel.Version {
				return false
			}
		}
		return ins[0].ID == "a" && ins[0].Labels["zone"] == "z1" && ins[1].ID == "b"
	})

	keyA := etcdprov.NewLayout(prefix).Instances() + "a"
	leaseA := recordLease(ctx, t, c, keyA)
	ttlResp, err := c.admin.TimeToLive(ctx, leaseA)
	if err != nil {
		t.Fatal(err)
	}
	if ttlResp.TTL <= 0 || ttlResp.GrantedTTL != int64(ttl/time.Second) {
		t.Fatalf("lease of %s: TTL %d of %d, want a live lease of %d s", keyA, ttlResp.TTL, ttlResp.GrantedTTL, int64(ttl/time.Second))
	}

	// A lost lease: the record is re-created on a new one.
	if _, err := c.admin.Revoke(ctx, leaseA); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the record of a on a new lease", func() bool {
		resp, err := c.admin.Get(ctx, keyA)
		return err == nil && len(resp.Kvs) == 1 && clientv3.LeaseID(resp.Kvs[0].Lease) != leaseA
	})
	leaseA = recordLease(ctx, t, c, keyA)

	// Close removes the record at once, with its lease.
	if err := cfgA.Close(); err != nil {
		t.Fatal(err)
	}
	ins, err := config.Instances(ctx, c.admin, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].ID != "b" {
		t.Fatalf("instances after closing a: %+v, want only b", ins)
	}
	if ttlResp, err = c.admin.TimeToLive(ctx, leaseA); err != nil || ttlResp.TTL != -1 {
		t.Fatalf("lease of a after Close: %+v, %v; want it gone (TTL -1)", ttlResp, err)
	}

	// An instance that stops renewing (its client gone, as when the
	// process dies) loses its record when the lease expires.
	keyB := etcdprov.NewLayout(prefix).Instances() + "b"
	leaseB := recordLease(ctx, t, c, keyB)
	_ = cliB.Close()
	stopped := time.Now()
	waitUntil(ctx, t, "the record of b to expire", func() bool {
		resp, err := c.admin.Get(ctx, keyB)
		return err == nil && len(resp.Kvs) == 0
	})
	if d := time.Since(stopped); d > 5*ttl {
		t.Errorf("the record of b expired %v after its keepalives stopped, with a TTL of %v", d, ttl)
	}
	if ttlResp, err = c.admin.TimeToLive(ctx, leaseB); err != nil || ttlResp.TTL != -1 {
		t.Fatalf("lease of b after it expired: %+v, %v; want it gone (TTL -1)", ttlResp, err)
	}
	_ = cfgB.Close()
}

// etcdBinary returns the etcd server binary of -etcd or $STRATA_ETCD_BIN
// and its version, failing the test when there is none.
func etcdBinary(t *testing.T) (bin, version string) {
	t.Helper()
	bin = *etcdBin
	if bin == "" {
		bin = os.Getenv("STRATA_ETCD_BIN")
	}
	if bin == "" {
		t.Fatal("faultsuite: no etcd binary: pass -etcd=/path/to/etcd or set STRATA_ETCD_BIN (.ci/etcd-bin builds one)")
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("faultsuite: %s --version: %v\n%s", bin, err, out)
	}
	t.Logf("faultsuite: %s: %s", bin, strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; "))
	version = "unknown"
	for l := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "etcd Version: "); ok {
			version = v
		}
	}
	return bin, version
}

// newAccWriter returns a Writer of Service on cli.
func newAccWriter(t *testing.T, cli *clientv3.Client, prefix string, opts ...config.WriterOption) *config.Writer[Service] {
	t.Helper()
	w, err := config.NewWriter[Service](cli, prefix, append([]config.WriterOption{config.WithWriteTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// commit returns a function that fails the test when a write failed (what
// names it) and returns its release otherwise.
func commit(t *testing.T, what string) func(*config.Release, error) *config.Release {
	return func(rel *config.Release, err error) *config.Release {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rel
	}
}

// mustPut puts key=value with a plain client, around the writer, and
// returns the revision of the put.
func mustPut(ctx context.Context, t *testing.T, c *Cluster, key, value string) int64 {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	resp, err := c.admin.Put(pctx, key, value)
	if err != nil {
		t.Fatalf("put %s=%s: %v", key, value, err)
	}
	return resp.Header.Revision
}

// recordLease returns the lease of the instance record at key.
func recordLease(ctx context.Context, t *testing.T, c *Cluster, key string) clientv3.LeaseID {
	t.Helper()
	resp, err := c.admin.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("instance record %s: %v, want one key on a lease", key, resp.Kvs)
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// waitUntil polls cond every 20 ms until it holds, failing the test when
// ctx ends first; seen, if given, then says what was seen instead.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool, seen ...func() string) {
	t.Helper()
	for !cond() {
		if !sleep(ctx, 20*time.Millisecond) {
			msg := fmt.Sprintf("waiting for %s: %v", what, ctx.Err())
			for _, f := range seen {
				msg += "; " + f()
			}
			t.Fatal(msg)
		}
	}
}

// recorder keeps every change and error a Config reported.
type recorder struct {
	mu      sync.Mutex
	changes []config.Change[Service]
	errs    []error
}

// loadRecorded loads a Config of prefix through cli, with a recorder
// subscribed; it is closed when the test ends.
func loadRecorded(ctx context.Context, t *testing.T, cli *clientv3.Client, prefix string, opts ...config.Option) (*config.Config[Service], *recorder) {
	t.Helper()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts = append([]config.Option{config.WithEtcd(cli, prefix), config.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	cfg, err := config.Load[Service](lctx, opts...)
	if err != nil {
		t.Fatalf("load %s: %v", prefix, err)
	}
	t.Cleanup(func() { _ = cfg.Close() })
	r := &recorder{}
	cfg.OnChange(func(ch config.Change[Service]) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changes = append(r.changes, ch)
	})
	cfg.OnError(func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.errs = append(r.errs, err)
	})
	return cfg, r
}

// waitChange waits for the change at revision rev and returns it.
func (r *recorder) waitChange(ctx context.Context, t *testing.T, what string, rev int64) config.Change[Service] {
	t.Helper()
	var got config.Change[Service]
	waitUntil(ctx, t, "the change of "+what+" at revision "+strconv.FormatInt(rev, 10), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, ch := range r.changes {
			if ch.Revision == rev {
				got = ch
				return true
			}
		}
		return false
	}, r.summary)
	return got
}

// waitError waits for an *InvalidError at revision rev and returns it.
func (r *recorder) waitError(ctx context.Context, t *testing.T, what string, rev int64) error {
	t.Helper()
	var got error
	waitUntil(ctx, t, "the error of "+what+" at revision "+strconv.FormatInt(rev, 10), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, err := range r.errs {
			var ie *config.InvalidError
			if errors.As(err, &ie) && ie.Revision == rev {
				got = err
				return true
			}
		}
		return false
	}, r.summary)
	return got
}

// summary lists the revisions of the changes and the errors seen so far.
func (r *recorder) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var revs []int64
	for _, ch := range r.changes {
		revs = append(revs, ch.Revision)
	}
	return fmt.Sprintf("changes at revisions %v, errors %q", revs, r.errs)
}

// checkOrder fails the test unless the changes came in increasing
// revision order, each once.
func (r *recorder) checkOrder(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.changes); i++ {
		if r.changes[i].Revision <= r.changes[i-1].Revision {
			t.Errorf("change %d at revision %d after one at %d", i, r.changes[i].Revision, r.changes[i-1].Revision)
		}
	}
}

// describe shows a change in a failure message.
func describe(ch config.Change[Service]) string {
	return fmt.Sprintf("revision %d, paths %v, %+v -> %+v, resync %v, source %s", ch.Revision, ch.Paths, *ch.Old, *ch.New, ch.Resync, ch.Source)
}
