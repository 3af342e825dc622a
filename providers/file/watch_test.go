package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strataconf/strata/providers"
)

// started maps a *Provider to a channel closed when its Watch has started.
var started sync.Map

func TestMain(m *testing.M) {
	watchStarted = func(p *Provider) {
		if ch, ok := started.LoadAndDelete(p); ok {
			close(ch.(chan struct{}))
		}
	}
	goleak.VerifyTestMain(m)
}

// startWatch runs p.Watch(ctx, fn) in a goroutine, waits until it has
// started, and returns a channel that receives its result.
func startWatch(t *testing.T, ctx context.Context, p *Provider, fn func()) <-chan error {
	t.Helper()
	ready := make(chan struct{})
	started.Store(p, ready)
	done := make(chan error, 1)
	go func() { done <- p.Watch(ctx, func(*providers.Content, error) { fn() }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Watch = %v", err)
	case <-time.After(callTimeout):
		t.Fatal("Watch did not start")
	}
	return done
}

const (
	callTimeout = 10 * time.Second       // generous: the test fails only if no call comes at all
	quietPeriod = 500 * time.Millisecond // well above the 100 ms debounce
)

// watch starts p.Watch and returns a channel that receives one value per fn
// call. The watch is stopped, and its return checked, at the end of the test.
func watch(t *testing.T, p *Provider) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs last; stops the watch even if startWatch fails
	calls := make(chan struct{}, 16)
	done := startWatch(t, ctx, p, func() { calls <- struct{}{} })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch = %v, want context.Canceled", err)
			}
		case <-time.After(callTimeout):
			t.Error("Watch did not return after cancel")
		}
	})
	return calls
}

// expectCalls waits for n calls, then checks that no further call comes.
func expectCalls(t *testing.T, calls <-chan struct{}, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-calls:
		case <-time.After(callTimeout):
			t.Fatalf("got %d calls, want %d", i, n)
		}
	}
	select {
	case <-calls:
		t.Fatalf("got more than %d calls", n)
	case <-time.After(quietPeriod):
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustNew(t *testing.T, path string) *Provider {
	t.Helper()
	p, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRead checks that Read gives {"v": want}.
func checkRead(t *testing.T, p *Provider, want int) {
	t.Helper()
	m, err := readTree(p)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got, ok := m["v"].(int); !ok || got != want {
		t.Fatalf("Read = %v, want v: %d", m, want)
	}
}

func TestWatchEditInPlace(t *testing.T) {
	t.Parallel()
	path := write(t, "app.yaml", "v: 1\n")
	p := mustNew(t, path)
	calls := watch(t, p)

	for v := 2; v <= 3; v++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		mustDo(t, err)
		_, err = fmt.Fprintf(f, "v: %d\n", v)
		mustDo(t, err)
		mustDo(t, f.Close())
		expectCalls(t, calls, 1)
		checkRead(t, p, v)
	}
}

func TestWatchAtomicReplace(t *testing.T) {
	t.Parallel()
	path := write(t, "app.yaml", "v: 1\n")
	p := mustNew(t, path)
	calls := watch(t, p)

	tmp := filepath.Join(filepath.Dir(path), ".app.yaml.tmp")
	for v := 2; v <= 3; v++ { // twice: the watch must survive the first replace
		mustWrite(t, tmp, fmt.Sprintf("v: %d\n", v))
		mustDo(t, os.Rename(tmp, path))
		expectCalls(t, calls, 1)
		checkRead(t, p, v)
	}
}

// configMap lays out dir the way the kubelet does for a ConfigMap volume:
// app.yaml -> ..data/app.yaml, ..data -> ..2026_11_27_v1.
func configMap(t *testing.T) (path string) {
	t.Helper()
	dir := t.TempDir()
	mustDo(t, os.Mkdir(filepath.Join(dir, "..2026_11_27_v1"), 0o700))
	mustWrite(t, filepath.Join(dir, "..2026_11_27_v1", "app.yaml"), "v: 1\n")
	mustDo(t, os.Symlink("..2026_11_27_v1", filepath.Join(dir, "..data")))
	path = filepath.Join(dir, "app.yaml")
	mustDo(t, os.Symlink(filepath.Join("..data", "app.yaml"), path))
	return path
}

func TestWatchConfigMapSwap(t *testing.T) {
	t.Parallel()
	path := configMap(t)
	dir := filepath.Dir(path)
	p := mustNew(t, path)
	checkRead(t, p, 1)
	calls := watch(t, p)

	for v := 2; v <= 3; v++ { // twice: the watch must survive the first swap
		name := fmt.Sprintf("..2026_11_27_v%d", v)
		mustDo(t, os.Mkdir(filepath.Join(dir, name), 0o700))
		mustWrite(t, filepath.Join(dir, name, "app.yaml"), fmt.Sprintf("v: %d\n", v))
		mustDo(t, os.Symlink(name, filepath.Join(dir, "..data_tmp")))
		mustDo(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		mustDo(t, os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..2026_11_27_v%d", v-1))))
		expectCalls(t, calls, 1)
		checkRead(t, p, v)
	}
}

func TestWatchSameContent(t *testing.T) {
	t.Parallel()
	path := write(t, "app.yaml", "v: 1\n")
	p := mustNew(t, path)
	calls := watch(t, p)

	mustWrite(t, path, "v: 1\n")
	tmp := path + ".tmp"
	mustWrite(t, tmp, "v: 1\n")
	mustDo(t, os.Rename(tmp, path))
	expectCalls(t, calls, 0)
	// The watch is still live: a real change is reported.
	mustWrite(t, path, "v: 2\n")
	expectCalls(t, calls, 1)
}

func TestWatchRemoveAndRecreate(t *testing.T) {
	t.Parallel()
	path := write(t, "app.yaml", "v: 1\n")
	p := mustNew(t, path)
	calls := watch(t, p)

	mustDo(t, os.Remove(path))
	expectCalls(t, calls, 1)
	if _, err := readTree(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read after removal = %v, want fs.ErrNotExist", err)
	}
	mustWrite(t, path, "v: 1\n") // the old content counts as a change after a removal
	expectCalls(t, calls, 1)
	checkRead(t, p, 1)
}

func TestWatchEmptyIsNotMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.yaml")
	p := mustNew(t, path)
	calls := watch(t, p)

	mustWrite(t, path, "")
	expectCalls(t, calls, 1)
	if m, err := readTree(p); err != nil || len(m) != 0 {
		t.Fatalf("Read = %v, %v; want an empty map", m, err)
	}
}

func TestWatchConfigMapTargetGone(t *testing.T) {
	t.Parallel()
	path := configMap(t)
	p := mustNew(t, path)
	calls := watch(t, p)

	mustDo(t, os.Remove(filepath.Join(filepath.Dir(path), "..data")))
	expectCalls(t, calls, 1)
	if _, err := readTree(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read after removal = %v, want fs.ErrNotExist", err)
	}
}

func TestWatchMissingDir(t *testing.T) {
	t.Parallel()
	p := mustNew(t, filepath.Join(t.TempDir(), "nope", "app.yaml"))
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	err := p.Watch(ctx, func(*providers.Content, error) { t.Error("fn called") })
	if err == nil || !errors.Is(err, fs.ErrNotExist) || ctx.Err() != nil {
		t.Fatalf("Watch = %v, want an immediate fs.ErrNotExist", err)
	}
}

// TestWatchCancel is not parallel, so that no other test's goroutines come
// and go while it looks for leaks.
func TestWatchCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "app.yaml")
	mustWrite(t, path, "v: 1\n")
	p := mustNew(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	done := startWatch(t, ctx, p, func() {})
	mustWrite(t, path, "v: 2\n") // leave a check pending at cancel
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Watch returned %v after cancel", d)
		}
	case <-time.After(callTimeout):
		t.Fatal("Watch did not return after cancel")
	}
}

// A change between the caller's Read and the start of Watch is reported.
func TestWatchStartsFromLastRead(t *testing.T) {
	t.Parallel()
	path := write(t, "app.yaml", "v: 1\n")
	p := mustNew(t, path)
	checkRead(t, p, 1)
	mustWrite(t, path, "v: 2\n") // before Watch starts
	calls := watch(t, p)
	expectCalls(t, calls, 1)
	checkRead(t, p, 2)
}
