package config_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/strataconf/strata/config"
)

type Pair struct {
	A int    `koanf:"a"`
	B int    `koanf:"b" validate:"max=1000000"`
	C string `koanf:"c"`
}

// recorder collects changes and errors from a Config's subscribers.
type recorder[T any] struct {
	mu      sync.Mutex
	changes []config.Change[T]
	errs    []error
	signal  chan struct{}
}

func record[T any](cfg *config.Config[T]) *recorder[T] {
	r := &recorder[T]{signal: make(chan struct{}, 1)}
	cfg.OnChange(func(c config.Change[T]) {
		r.mu.Lock()
		r.changes = append(r.changes, c)
		r.mu.Unlock()
		r.poke()
	})
	cfg.OnError(func(err error) {
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		r.poke()
	})
	return r
}

func (r *recorder[T]) poke() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// wait blocks until cond holds over the recorded changes and errors, or
// fails the test after a generous deadline.
func (r *recorder[T]) wait(t testing.TB, what string, cond func(changes []config.Change[T], errs []error) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.changes, r.errs)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s: %d changes, errors %v", what, len(r.changes), r.errs)
		}
	}
}

func loadPair(t testing.TB, cli *clientv3.Client, p string, opts ...config.Option) *config.Config[Pair] {
	t.Helper()
	cfg, err := config.Load[Pair](context.Background(), append([]config.Option{config.WithEtcd(cli, p)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cfg.Close() })
	return cfg
}

// Acceptance: transactions writing a and b together are seen together.
func TestTransactionsAreAtomic(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg := loadPair(t, cli, p)
	var torn, multi int
	var mu sync.Mutex
	cfg.OnChange(func(c config.Change[Pair]) {
		mu.Lock()
		defer mu.Unlock()
		if c.New.A != c.New.B {
			torn++
		}
		if strings.Join(c.Paths, ",") != "a,b" {
			multi++
		}
	})
	r := record(cfg)
	// Readers racing the reload loop must never see a torn value either.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var tornReads int64
	var rmu sync.Mutex
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v := cfg.Get(); v.A != v.B {
					rmu.Lock()
					tornReads++
					rmu.Unlock()
				}
			}
		}()
	}
	const n = 1000
	for i := 1; i <= n; i++ {
		v := strconv.Itoa(i)
		_, err := cli.Txn(context.Background()).Then(
			clientv3.OpPut(p+"/data/a", v), clientv3.OpPut(p+"/data/b", v)).Commit()
		if err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, "the last transaction", func(c []config.Change[Pair], _ []error) bool { return len(c) > 0 && c[len(c)-1].New.A == n })
	close(stop)
	readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	if torn != 0 || tornReads != 0 || multi != 0 {
		t.Fatalf("torn changes %d, torn reads %d, changes not listing exactly a,b: %d", torn, tornReads, multi)
	}
	if got := len(r.changes); got != n {
		t.Fatalf("%d changes for %d transactions", got, n)
	}
}

// Acceptance: sequential writes give strictly increasing revisions, none
// skipped, and the final value is the last write.
func TestSequentialWritesInOrder(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg := loadPair(t, cli, p)
	r := record(cfg)
	const n = 1000
	revs := make([]int64, 0, n)
	for i := 1; i <= n; i++ {
		revs = append(revs, put(t, cli, p, "a", strconv.Itoa(i)))
	}
	r.wait(t, "the last write", func(c []config.Change[Pair], _ []error) bool { return len(c) == n })
	for i, c := range r.changes {
		if c.Revision != revs[i] {
			t.Fatalf("change %d has revision %d, want %d (skipped or out of order)", i, c.Revision, revs[i])
		}
		if c.New.A != i+1 || (i > 0 && c.Old.A != i) {
			t.Fatalf("change %d: old %d new %d", i, c.Old.A, c.New.A)
		}
	}
	if got := cfg.Get().A; got != n {
		t.Fatalf("Get().A = %d, want %d", got, n)
	}
	if got := cfg.Snapshot().Revision; got != revs[n-1] {
		t.Fatalf("snapshot revision %d, want %d", got, revs[n-1])
	}
}

// Acceptance: a bad value keeps the last good config and is reported with
// the key, rule and revision; the next good write applies.
func TestBadCandidateKeepsLastGood(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "b", "1")
	cfg := loadPair(t, cli, p)
	r := record(cfg)
	before := cfg.Get()

	rev := put(t, cli, p, "b", "abc")
	r.wait(t, "the wrong-type error", func(_ []config.Change[Pair], errs []error) bool { return len(errs) == 1 })
	rev2 := put(t, cli, p, "b", "2000000")
	r.wait(t, "the validation error", func(_ []config.Change[Pair], errs []error) bool { return len(errs) == 2 })
	if cfg.Get() != before {
		t.Fatal("a rejected candidate replaced the snapshot")
	}
	for i, want := range []struct {
		rev  int64
		text []string
	}{
		{rev, []string{"b (etcd key " + p + "/data/b)", `"abc"`}},
		{rev2, []string{"b (etcd key " + p + "/data/b)", "failed max=1000000"}},
	} {
		err := r.errs[i]
		var ie *config.InvalidError
		if !errors.As(err, &ie) || ie.Revision != want.rev {
			t.Fatalf("error %d = %v, want an InvalidError at revision %d", i, err, want.rev)
		}
		for _, s := range want.text {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not contain %q", err, s)
			}
		}
	}
	if len(r.changes) != 0 {
		t.Fatalf("rejected candidates produced changes: %v", r.changes)
	}
	good := put(t, cli, p, "b", "7")
	r.wait(t, "the good write", func(c []config.Change[Pair], _ []error) bool { return len(c) == 1 })
	if cfg.Get().B != 7 || r.changes[0].Revision != good || r.changes[0].Old.B != 1 {
		t.Fatalf("good write: %+v", r.changes[0])
	}
}

// A key deleted from etcd while running falls back to the layer below.
func TestDeleteWhileRunningFallsBack(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "c", "etcd")
	cfg := loadPair(t, cli, p, config.WithDefaults(Pair{C: "default"}))
	r := record(cfg)
	del(t, cli, p, "c")
	r.wait(t, "the delete", func(c []config.Change[Pair], _ []error) bool { return len(c) == 1 })
	if got := cfg.Get().C; got != "default" || strings.Join(r.changes[0].Paths, ",") != "c" {
		t.Fatalf("after delete: c = %q, paths %v", got, r.changes[0].Paths)
	}
}

func TestOnChangeOfAndUnsubscribe(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg := loadPair(t, cli, p)
	r := record(cfg)
	var mu sync.Mutex
	var seen []string
	stopC := config.OnChangeOf(cfg, func(v *Pair) string { return v.C }, func(old, new string) {
		mu.Lock()
		seen = append(seen, old+">"+new)
		mu.Unlock()
	})
	var plain int
	stopPlain := cfg.OnChange(func(config.Change[Pair]) { mu.Lock(); plain++; mu.Unlock() })

	put(t, cli, p, "a", "1") // unrelated to the projection
	put(t, cli, p, "c", "x")
	put(t, cli, p, "b", "2") // unrelated
	r.wait(t, "3 changes", func(c []config.Change[Pair], _ []error) bool { return len(c) == 3 })
	stopC()
	stopPlain()
	stopPlain() // harmless twice
	put(t, cli, p, "c", "y")
	r.wait(t, "4 changes", func(c []config.Change[Pair], _ []error) bool { return len(c) == 4 })
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != ">x" {
		t.Fatalf("projection saw %v, want only >x", seen)
	}
	if plain != 3 {
		t.Fatalf("unsubscribed subscriber ran %d times, want 3", plain)
	}
}

func TestPanickingSubscriberIsRecovered(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	cfg := loadPair(t, cli, p)
	cfg.OnChange(func(config.Change[Pair]) { panic("boom") })
	r := record(cfg) // registered after the panicking one: still runs
	put(t, cli, p, "a", "1")
	r.wait(t, "change and panic report", func(c []config.Change[Pair], errs []error) bool { return len(c) == 1 && len(errs) == 1 })
	if !errors.Is(r.errs[0], config.ErrPanic) || !strings.Contains(r.errs[0].Error(), "boom") {
		t.Fatalf("panic report: %v", r.errs[0])
	}
	put(t, cli, p, "a", "2")
	r.wait(t, "the next change", func(c []config.Change[Pair], _ []error) bool { return len(c) == 2 })
}

func TestCloseStopsEverything(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "c", "etcd") // the writing client's goroutines are running now
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// The Config's own client: clientv3 keeps its lease keepalive and watch
	// streams until the client is closed, so it is closed after the Config.
	own, err := shared.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	cfg, err := config.Load[Pair](context.Background(), config.WithEtcd(own, p),
		config.WithFile(writeFile(t, "p.yaml", "c: file\n")),
		config.WithSnapshotFile(filepath.Join(t.TempDir(), "snap.json")),
		config.WithInstance("leak-check", nil, 0),
		config.WithMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	r := record(cfg)
	put(t, cli, p, "a", "1")
	r.wait(t, "a change", func(c []config.Change[Pair], _ []error) bool { return len(c) == 1 })
	cfg.Close()
	cfg.Close()
	put(t, cli, p, "a", "2")
	time.Sleep(100 * time.Millisecond)
	if len(r.changes) != 1 || cfg.Get().A != 1 {
		t.Fatalf("a change was applied after Close")
	}
}

// Acceptance: edits in place, atomic renames and ConfigMap-style symlink
// swaps each reload once; etcd still wins over the file.
func TestFileReload(t *testing.T) {
	cli := client(t)
	p := prefix(t)
	put(t, cli, p, "c", "etcd") // etcd wins over the file for c
	dir := t.TempDir()
	// A Kubernetes ConfigMap volume: app.yaml -> ..data/app.yaml, ..data -> ..v1
	mustDo(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
	mustDo(t, os.WriteFile(filepath.Join(dir, "..v1", "app.yaml"), []byte("a: 1\nc: file\n"), 0o644))
	mustDo(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	mustDo(t, os.Symlink(filepath.Join("..data", "app.yaml"), filepath.Join(dir, "app.yaml")))
	path := filepath.Join(dir, "app.yaml")

	cfg := loadPair(t, cli, p, config.WithFile(path))
	r := record(cfg)
	if v := cfg.Get(); v.A != 1 || v.C != "etcd" {
		t.Fatalf("initial: %+v", v)
	}
	steps := []struct {
		name  string
		do    func()
		wantA int
	}{
		{"configmap swap", func() {
			mustDo(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
			mustDo(t, os.WriteFile(filepath.Join(dir, "..v2", "app.yaml"), []byte("a: 2\nc: file2\n"), 0o644))
			mustDo(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
			mustDo(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
			mustDo(t, os.RemoveAll(filepath.Join(dir, "..v1")))
		}, 2},
		{"atomic rename", func() {
			// Replace the symlink chain by a plain file, as an editor would.
			tmp := filepath.Join(dir, ".app.yaml.tmp")
			mustDo(t, os.WriteFile(tmp, []byte("a: 3\nc: file3\n"), 0o644))
			mustDo(t, os.Rename(tmp, path))
		}, 3},
		{"edit in place", func() {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			mustDo(t, err)
			_, err = f.WriteString("a: 4\nc: file4\n")
			mustDo(t, err)
			mustDo(t, f.Close())
		}, 4},
	}
	for i, s := range steps {
		s.do()
		r.wait(t, s.name, func(ch []config.Change[Pair], _ []error) bool { return len(ch) >= i+1 })
		time.Sleep(400 * time.Millisecond) // a duplicate reload would arrive by now
		r.mu.Lock()
		n := len(r.changes)
		ch := r.changes[n-1]
		r.mu.Unlock()
		if n != i+1 {
			t.Fatalf("%s: %d changes in all, want %d", s.name, n, i+1)
		}
		if ch.New.A != s.wantA || ch.New.C != "etcd" || ch.Source != config.LayerFile || strings.Join(ch.Paths, ",") != "a" {
			t.Fatalf("%s: change %+v (new %+v)", s.name, ch, *ch.New)
		}
	}
	// A file that disappears is reported, not read as empty.
	mustDo(t, os.Remove(path))
	r.wait(t, "the missing-file error", func(_ []config.Change[Pair], errs []error) bool { return len(errs) == 1 })
	if !errors.Is(r.errs[0], fs.ErrNotExist) || cfg.Get().A != 4 {
		t.Fatalf("after removal: %v, a = %d", r.errs[0], cfg.Get().A)
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
