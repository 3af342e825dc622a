package file

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/strataconf/strata/providers"
)

const (
	// debounce is how long Watch waits after the last event in the directory
	// before it looks at the file.
	debounce = 100 * time.Millisecond
	// maxDelay bounds the wait while events keep arriving (for example a
	// busy neighbour file), so that a change is never held back for long.
	maxDelay = time.Second
)

// watchStarted is called once Watch has read the file for the first time.
// Tests replace it to know when a change will be seen.
var watchStarted = func(*Provider) {}

// Watch calls fn with the file's new content (or the error reading or
// decoding it) each time the file changes, until ctx is done; then it
// returns ctx.Err(). Its starting point is the content
// the last Read saw (or, without one, the content when Watch starts): a
// change between that Read and the start of Watch is not lost. It returns
// early with an error only if watching cannot start (for example when the directory does not exist) or
// if the watcher stops delivering events.
//
// Watch watches the file's directory, not the file, so edits in place, atomic
// renames over the file and Kubernetes ConfigMap symlink swaps (..data) are
// all seen; a change made only inside another directory that the path
// resolves into (such as an edit in place of ..data/app.yaml) is not. Each
// burst of events is debounced (100 ms after the last event, at most 1 s
// after the first); then the file is read through its path and fn is called
// only if its bytes differ from what it was at the previous call (or when
// Watch started). A file that disappears or becomes unreadable counts as a
// change, as does its return; it is never taken for an empty file. Watcher
// errors (such as a queue overflow) cause a re-check and are otherwise
// ignored. fn runs on Watch's goroutine, so at most one call runs at a time.
func (p *Provider) Watch(ctx context.Context, fn func(*providers.Content, error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file %s: watch: %w", p.path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(p.path)); err != nil {
		return fmt.Errorf("file %s: watch: %w", p.path, err)
	}
	// Read only after Add: any later change produces an event.
	last, lastErr := os.ReadFile(p.path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	if seen := p.lastSeen(); seen != nil && ((seen.err == nil) != (lastErr == nil) || !bytes.Equal(seen.b, last)) {
		// Changed since the caller's Read: report it like any change.
		last, lastErr = seen.b, seen.err
		timer.Reset(debounce)
	}
	watchStarted(p)
	var deadline time.Time // when the pending check must run at the latest; zero if none
	errs := w.Errors
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("file %s: watch: event channel closed", p.path)
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil // never ready again; avoids spinning on a closed channel
				continue
			}
		case <-timer.C:
			deadline = time.Time{}
			b, err := os.ReadFile(p.path)
			if (err == nil) != (lastErr == nil) || !bytes.Equal(b, last) {
				last, lastErr = b, err
				fn(p.decode(b, err))
			}
			continue
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(maxDelay)
		}
		timer.Reset(min(debounce, deadline.Sub(now)))
	}
}
