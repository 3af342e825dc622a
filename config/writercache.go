package config

import (
	"context"
	"errors"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/internal/canary"
)

// writerCache is a RawWriter's copy of its prefix's data keys, kept
// current by a watch, and of the guard keys as the writer last read or
// wrote them. With it a write needs no read: it commits in one
// transaction, guarded by the guard keys' mod revisions and by the mod
// revisions of the keys it changes, and its work grows with its change,
// not with the configuration.
//
// The goroutine follow owns the watch and applies its events; every field
// below mu is guarded by mu. A write holds mu while it computes its change
// from the cache, never while it waits on etcd.
type writerCache struct {
	stop context.CancelFunc
	done chan struct{} // closed when follow returns

	mu      sync.Mutex
	content Content          // the data keys, relative to P/data/, as stored
	modRevs map[string]int64 // data key → mod revision
	dirs    map[string]int   // "db/pool" → how many data keys lie beneath it
	docs    map[string]int   // "db/pool" → how many documents are mounted there ("db/pool.yaml")
	hasher  *contentHasher
	rev     int64         // the data keys are as etcd held them at this revision
	moved   chan struct{} // closed (and replaced) whenever rev moves
	failed  bool          // the watch ended: the cache is no longer current
	meta    *cacheMeta    // the guard keys; nil when not known
	want    int64         // the revision of the writer's newest commit that changed data keys
	// log holds the newest data key changes applied, oldest first, with
	// their old values; it is complete after revision logFrom.
	log      []loggedChange
	logFrom  int64
	logBytes int // the bytes of the values in log
}

// loggedChange is one data key change the cache applied.
type loggedChange struct {
	rev int64
	KeyChange
}

// maxLog and maxLogBytes bound the changes the cache remembers (a write
// looks back at those made between its view and its commit), by count and
// by the bytes of the values they hold.
const (
	maxLog      = 4096
	maxLogBytes = 8 << 20
)

// cacheMeta is what a writer knows of the keys beside the data keys: the
// version key, the schema and the rollout record, with their mod
// revisions. Only the writer's own reads and commits change it; commits
// are guarded by these mod revisions, so a change made by anyone else
// fails the commit, and the writer reads again.
type cacheMeta struct {
	version, versionRev int64
	schema              []byte
	schemaRev           int64
	rollout             *canary.Record
	rolloutRev          int64
}

// cacheHolder holds a writer's current cache. It is apart from the
// RawWriter so that a writer nobody closed can stop its cache when it is
// garbage collected (runtime.AddCleanup must not keep the writer alive).
type cacheHolder struct {
	mu     sync.Mutex
	cache  *writerCache
	wanted bool // the writer read for a write before: a second one makes the cache
	closed bool
}

// current returns the cache, or nil.
func (h *cacheHolder) current() *writerCache {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cache
}

// renew replaces the cache with make's unless it is current or the holder
// is closed. The first call only notes that the writer writes: a writer
// that writes once (a CLI command, a console request) never starts a
// watch.
func (h *cacheHolder) renew(make func() *writerCache) {
	h.mu.Lock()
	old := h.cache
	if h.closed || (old != nil && !old.stale()) || !h.wanted {
		h.wanted = true
		h.mu.Unlock()
		return
	}
	h.cache = make()
	h.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// close stops the cache, waits for its goroutine and keeps no other.
func (h *cacheHolder) close() {
	if c := h.drop(); c != nil {
		c.close()
	}
}

// collected stops the cache of a writer that was garbage collected,
// without waiting: it runs on the runtime's cleanup goroutine.
func (h *cacheHolder) collected() {
	if c := h.drop(); c != nil {
		c.stop()
	}
}

// drop marks the holder closed and returns its cache, if any.
func (h *cacheHolder) drop() *writerCache {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.cache
	h.cache, h.closed = nil, true
	return c
}

// stale reports whether the cache can no longer serve a write: its watch
// ended or its guard keys are not known.
func (c *writerCache) stale() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed || c.meta == nil
}

// newWriterCache starts a cache from st, a full read at st.revision, and
// the watch that keeps it current from the revision after it.
func newWriterCache(cli *clientv3.Client, dataPrefix string, st *state, hash *contentHasher) *writerCache {
	ctx, cancel := context.WithCancel(context.Background())
	c := &writerCache{
		stop:    cancel,
		done:    make(chan struct{}),
		content: maps.Clone(st.content),
		modRevs: maps.Clone(st.modRevs),
		dirs:    map[string]int{},
		docs:    map[string]int{},
		hasher:  hash,
		rev:     st.revision,
		logFrom: st.revision,
		moved:   make(chan struct{}),
		meta: &cacheMeta{version: st.version, versionRev: st.versionRev, schema: st.schema, schemaRev: st.schemaRev,
			rollout: st.rollout, rolloutRev: st.rolloutRev},
	}
	for k := range c.content {
		c.countDirs(k, 1)
	}
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), dataPrefix, clientv3.WithPrefix(), clientv3.WithRev(st.revision+1))
	go c.follow(wch, dataPrefix)
	return c
}

// close stops the watch and waits for follow to return.
func (c *writerCache) close() {
	c.stop()
	<-c.done
}

// follow applies the watch's events until the watch ends.
func (c *writerCache) follow(wch clientv3.WatchChan, dataPrefix string) {
	defer close(c.done)
	for resp := range wch {
		if resp.Err() != nil || resp.Canceled {
			break
		}
		c.mu.Lock()
		rev := c.rev
		for _, ev := range resp.Events {
			k, ok := strings.CutPrefix(string(ev.Kv.Key), dataPrefix)
			if !ok || ev.Kv.ModRevision <= c.rev {
				continue
			}
			rev = ev.Kv.ModRevision
			old, had := c.content[k]
			if ev.Type == clientv3.EventTypeDelete {
				if had {
					delete(c.content, k)
					delete(c.modRevs, k)
					c.countDirs(k, -1)
					c.hasher.remove(c.content, k)
					c.remember(rev, KeyChange{Key: k, Kind: Deleted, Old: old})
				}
				continue
			}
			c.content[k] = string(ev.Kv.Value)
			c.modRevs[k] = ev.Kv.ModRevision
			if had {
				c.remember(rev, KeyChange{Key: k, Kind: Changed, Old: old, New: c.content[k]})
			} else {
				c.countDirs(k, 1)
				c.remember(rev, KeyChange{Key: k, Kind: Added, New: c.content[k]})
			}
			c.hasher.set(c.content, k)
		}
		if resp.IsProgressNotify() {
			rev = max(rev, resp.Header.Revision)
		}
		if rev > c.rev {
			c.rev = rev
			close(c.moved)
			c.moved = make(chan struct{})
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.failed = true
	close(c.moved)
	c.moved = make(chan struct{})
	c.mu.Unlock()
}

// remember logs a change applied at revision rev. The caller holds mu.
func (c *writerCache) remember(rev int64, ch KeyChange) {
	c.log = append(c.log, loggedChange{rev: rev, KeyChange: ch})
	c.logBytes += len(ch.Old) + len(ch.New)
	if len(c.log) <= maxLog && c.logBytes <= maxLogBytes {
		return
	}
	// Keep the newer half (by count, or by the bytes of old values kept
	// alive): a write that looks further back reads instead (settled).
	drop := len(c.log) / 2
	for n := 0; n < drop; n++ {
		c.logBytes -= len(c.log[n].Old) + len(c.log[n].New)
	}
	for drop < len(c.log)-1 && c.logBytes > maxLogBytes/2 {
		c.logBytes -= len(c.log[drop].Old) + len(c.log[drop].New)
		drop++
	}
	if drop == 0 {
		return // one change alone, the newest: kept whatever its size
	}
	c.logFrom = c.log[drop-1].rev
	c.log = append(c.log[:0], c.log[drop:]...)
}

// settlement is what etcd held around a commit of the writer (see
// settled).
type settlement struct {
	window []KeyChange // changes made by others between the write's view and its commit, net per key
	base   string      // the tree hash of the content just before the commit; only when window is not empty
	hash   string      // the tree hash of the content just after the commit; only with content
	at     Content     // that content, when asked for or when window is not empty
	ours   []KeyChange // the commit's changes
}

// content returns the content just after the commit.
func (s *settlement) content() Content { return s.at }

// before returns the content the write saw: the content just after the
// commit without the commit's changes and those made by others before it.
func (s *settlement) before() Content {
	c := maps.Clone(s.at)
	applyChanges(c, undoList(s.ours))
	applyChanges(c, undoList(s.window))
	return c
}

// settled waits until the cache holds the writer's commit at revision at,
// of a write that saw the data keys as of revision since and computed the
// hash known for its content, and says what etcd held around it. ok is
// false when the cache cannot tell: its watch ended, the wait ended with
// ctx, or the changes are no longer logged.
func (c *writerCache) settled(ctx context.Context, since, at int64, withContent bool, known string) (s settlement, ok bool) {
	if c.lockAt(ctx, func() int64 { return at }) != nil {
		return s, false
	}
	defer c.mu.Unlock()
	if c.failed || c.logFrom > since {
		return s, false
	}
	var after []KeyChange // changes after the commit, to undo
	first := sort.Search(len(c.log), func(i int) bool { return c.log[i].rev > since })
	for _, l := range c.log[first:] {
		switch {
		case l.rev > at:
			after = append(after, l.KeyChange)
		case l.rev == at:
			s.ours = append(s.ours, l.KeyChange)
		default:
			s.window = append(s.window, l.KeyChange)
		}
	}
	s.window = netChanges(s.window)
	undo := undoList(after)
	if withContent || len(s.window) > 0 {
		s.hash = c.hasher.with(c.content, undo)
	} else if len(after) == 0 && known != "" {
		c.hasher.root = known // the content is the commit's, whose hash the write knows: spare the next write summing it
	}
	if len(s.window) > 0 {
		s.base = c.hasher.with(c.content, append(undo, undoList(s.ours)...))
	}
	if withContent || len(s.window) > 0 {
		s.at = maps.Clone(c.content)
		applyChanges(s.at, undo)
	}
	return s, true
}

// netChanges returns changes, made one after the other, as one change per
// key, sorted by key; keys that end as they began are left out.
func netChanges(changes []KeyChange) []KeyChange {
	var out []KeyChange
	at := map[string]int{} // key → index in out
	for _, ch := range changes {
		i, seen := at[ch.Key]
		switch {
		case !seen:
			at[ch.Key] = len(out)
			out = append(out, ch)
		case out[i].Kind == "": // added, deleted, and now again
			out[i] = ch
		default:
			out[i].New = ch.New
			out[i].Kind = netKind(out[i].Kind, ch.Kind)
		}
	}
	out = slices.DeleteFunc(out, func(ch KeyChange) bool {
		return ch.Kind == "" || (ch.Kind == Changed && ch.Old == ch.New)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// netKind returns the kind of two changes of one key, one after the
// other; "" when the second undoes the first.
func netKind(first, second ChangeKind) ChangeKind {
	switch {
	case first == Added && second == Deleted:
		return ""
	case first == Added:
		return Added
	case second == Deleted:
		return Deleted
	}
	return Changed // changed, or deleted and added again
}

// undoList returns the changes that undo changes, applied in order.
func undoList(changes []KeyChange) []KeyChange {
	out := make([]KeyChange, 0, len(changes))
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		switch ch.Kind {
		case Added:
			out = append(out, KeyChange{Key: ch.Key, Kind: Deleted, Old: ch.New})
		case Deleted:
			out = append(out, KeyChange{Key: ch.Key, Kind: Added, New: ch.Old})
		default:
			out = append(out, KeyChange{Key: ch.Key, Kind: Changed, Old: ch.New, New: ch.Old})
		}
	}
	return out
}

// countDirs adds n to the count of every directory above data key k, and
// to the documents mounted at k's path when k is a document.
func (c *writerCache) countDirs(k string, n int) {
	if ext := path.Ext(k); ext != "" {
		d := strings.TrimSuffix(k, ext)
		c.docs[d] += n
		if c.docs[d] == 0 {
			delete(c.docs, d)
		}
	}
	for i := strings.IndexByte(k, '/'); i >= 0; i = nextSlash(k, i) {
		c.dirs[k[:i]] += n
		if c.dirs[k[:i]] == 0 {
			delete(c.dirs, k[:i])
		}
	}
}

// nextSlash returns the index of the slash after the one at i in k, or -1.
func nextSlash(k string, i int) int {
	j := strings.IndexByte(k[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// errCacheStale says the cache cannot serve a write now; the write reads.
var errCacheStale = errors.New("writer cache is not current")

// lock waits until the cache holds the writer's newest commit that changed
// data keys, then locks it and returns it as a state that aliases the
// cache's maps: valid only until unlock. It fails with errCacheStale when
// the watch ended or the guard keys are not known.
func (c *writerCache) lock(ctx context.Context) (*state, error) {
	if err := c.lockAt(ctx, func() int64 { return c.want }); err != nil {
		return nil, err
	}
	if c.failed || c.meta == nil {
		c.mu.Unlock()
		return nil, errCacheStale
	}
	m := c.meta
	return &state{revision: max(c.rev, m.versionRev), dataRev: c.rev, version: m.version, versionRev: m.versionRev,
		content: c.content, plain: c.content, modRevs: c.modRevs, schema: m.schema, schemaRev: m.schemaRev,
		rollout: m.rollout, rolloutRev: m.rolloutRev, cache: c}, nil
}

// lockAt waits until the cache holds revision rev() (read under mu) or
// its watch ended, and returns with mu held; or returns ctx's error, with
// mu not held, when ctx ends first.
func (c *writerCache) lockAt(ctx context.Context, rev func() int64) error {
	for {
		c.mu.Lock()
		if c.failed || c.rev >= rev() {
			return nil
		}
		moved := c.moved
		c.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// unlock releases the cache after lock.
func (c *writerCache) unlock() { c.mu.Unlock() }

// committed records a commit of this writer at revision rev, to release
// version, read from st. When the commit also changed the schema or the
// rollout record, the guard keys are forgotten and the next write reads.
func (c *writerCache) committed(st *state, version, rev int64, dataChanged, metaChanged bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dataChanged {
		c.want = max(c.want, rev)
	}
	if metaChanged {
		c.meta = nil
		return
	}
	c.meta = &cacheMeta{version: version, versionRev: rev, schema: st.schema, schemaRev: st.schemaRev,
		rollout: st.rollout, rolloutRev: st.rolloutRev}
}

// forget drops the guard keys after a commit lost to a writer the cache
// does not know of: the next write reads.
func (c *writerCache) forget(versionRev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.meta != nil && c.meta.versionRev == versionRev {
		c.meta = nil
	}
}

// shadowed lists the keys that a leaf at key would hide or be hidden by
// (see Content.Shadowing), from the cache's counts: without a scan unless
// there are some. The caller holds mu.
func (c *writerCache) shadowed(key string) []string {
	found := c.dirs[key] > 0 || c.docs[key] > 0
	for i := strings.IndexByte(key, '/'); i >= 0 && !found; i = nextSlash(key, i) {
		if _, ok := c.content[key[:i]]; ok {
			found = true
		}
	}
	if !found {
		return nil
	}
	return c.content.Shadowing(key)
}

// beneath lists key and the data keys beneath it that the cache holds,
// without a scan unless there are some beneath. The caller holds mu.
func (c *writerCache) beneath(key string) []string {
	if c.dirs[key] > 0 {
		return c.content.beneath(key)
	}
	if _, ok := c.content[key]; ok {
		return []string{key}
	}
	return nil
}
