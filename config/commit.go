package config

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// errRetry marks a commit that lost a race and may be re-run.
var errRetry = errors.New("retry")

// maxOutside bounds the changes made around the writer that a release
// record lists with their values; beyond it the record lists the keys only
// (so it cannot be undone), the release writes a checkpoint, and the
// previous release's content is stored as its checkpoint.
const maxOutside = 256

// write is the one path every write takes: read at revision R (or take
// the writer's cache), compute the next content, validate it, and commit
// it with a release record in one transaction guarded by the version key,
// by the data keys (see prepare), and by the release record not existing
// yet. A lost race re-runs next (up to maxAttempts) unless ExpectVersion or
// ExpectRevision was given. A commit whose answer is lost is resolved by
// reading the release record it would have written, which names the
// write's id: the write commits at most once, and is reported once.
func (w *RawWriter) write(ctx context.Context, next func(*state) (Content, error), rollbackOf int64, opts []WriteOption) (*Release, error) {
	return w.propose(ctx, proposal{next: next}, rollbackOf, opts)
}

// writeEdit is write for a change given as key changes to the content
// read (see proposal.edit).
func (w *RawWriter) writeEdit(ctx context.Context, edit func(*state) ([]KeyChange, error), opts []WriteOption) (*Release, error) {
	return w.propose(ctx, proposal{edit: edit}, 0, opts)
}

// proposal is what a write makes of the state it read: the whole next
// content (next), or the changes to the content (edit: sorted by key,
// relative to the state's plain content). A write served by the writer's
// cache applies an edit without copying the content.
type proposal struct {
	next func(*state) (Content, error)
	edit func(*state) ([]KeyChange, error)
}

// content returns the whole next content of st.
func (p proposal) content(st *state) (Content, error) {
	if p.next != nil {
		return p.next(st)
	}
	changes, err := p.edit(st)
	if err != nil {
		return nil, err
	}
	c := maps.Clone(st.plain)
	applyChanges(c, changes)
	return c, nil
}

// propose runs write's loop for proposal p.
func (w *RawWriter) propose(ctx context.Context, p proposal, rollbackOf int64, opts []WriteOption) (*Release, error) {
	var wo writeOptions
	for _, o := range opts {
		o(&wo)
	}
	id := wo.id
	if id == "" && !wo.dryRun {
		var b [16]byte
		_, _ = crand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(id, "/\x00") {
		return nil, fmt.Errorf("config: write id %q must not contain '/'", id)
	}
	if wo.dryRun {
		id = ""
	}
	backoff := etcdprov.NewBackoff(time.Millisecond, 100*time.Millisecond)
	var unknown error // the last commit whose outcome is not known yet
	var pending pendingCommit
	for attempt := 1; ; attempt++ {
		rel, err := w.attempt(ctx, p, rollbackOf, wo, id, &pending)
		if unknown != nil && pending.settled {
			unknown = nil // it can no longer commit: what follows is this write's answer
		}
		switch {
		case err == nil:
			return rel, nil
		case errors.Is(err, errRetry):
			var ce *ConflictError
			errors.As(err, &ce)
			if unknown == nil && (wo.expectSet || wo.expectRev > 0 || attempt >= w.opts.maxAttempts) {
				return nil, ce
			}
			if unknown != nil && attempt >= w.opts.maxAttempts+10 {
				return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, unknown)
			}
		case errors.Is(err, errUnknown):
			unknown = err
		case unknown != nil && isTransient(err):
			// etcd is unreachable while an earlier commit is unresolved:
			// keep trying until the context ends.
		default:
			if unknown != nil {
				// A re-run failed for its own reason (next, validation)
				// while the lost commit may still land: its outcome stays
				// unknown, and the caller sees both.
				return nil, fmt.Errorf("%w: %w (then: %w)", ErrUnknownOutcome, unknown, err)
			}
			return nil, err
		}
		if !backoff.Sleep(ctx) {
			if unknown != nil {
				return nil, fmt.Errorf("%w: write %s: %w (%w)", ErrUnknownOutcome, id, ctx.Err(), unknown)
			}
			return nil, fmt.Errorf("config: write gave up after %d attempts: %w (%w)", attempt, ctx.Err(), err)
		}
	}
}

// pendingCommit is a commit whose answer was lost: of release version,
// guarded by the version key's mod revision versionRev. Once a read finds
// neither its record nor that mod revision, it can never commit: it is
// settled.
type pendingCommit struct {
	version    int64
	versionRev int64
	set        bool
	settled    bool
}

// schemaHash names a schema document in release records.
func schemaHash(doc []byte) string {
	sum := sha256.Sum256(doc)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// errUnknown marks a commit that was sent but whose answer was lost.
var errUnknown = errors.New("the answer to the commit was lost")

// isTransient reports whether err may have left a request unanswered
// rather than refused: a timeout, a broken connection, a canceled call.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	if s, ok := grpcstatus.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Aborted, codes.Internal:
			return true
		}
		return false
	}
	var ev rpctypes.EtcdError
	if errors.As(err, &ev) {
		switch ev.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Aborted:
			return true
		}
	}
	return false
}

// attempt is one try of a write: begin (from the cache or a read), the
// next content and its checks, then prepare and send the commit.
func (w *RawWriter) attempt(ctx context.Context, p proposal, rollbackOf int64, wo writeOptions, id string, pending *pendingCommit) (*Release, error) {
	st, err := w.begin(ctx, p, wo, id, pending)
	if err != nil {
		return nil, err
	}
	defer st.unlock()
	if st.done != nil {
		st.done.Changes = mask(w.secretsOf(st), st.done.Changes)
		st.done.Outside = mask(w.secretsOf(st), st.done.Outside)
		return st.done, nil
	}
	if pending.set && st.versionRev != pending.versionRev {
		pending.settled = true
	}
	rolloutOp, err := rolloutGate(st, wo)
	if err != nil {
		return nil, err
	}
	if wo.expectSet && st.version != wo.expect {
		return nil, &ConflictError{Expected: wo.expect, Current: st.version}
	}
	if wo.expectRev > 0 {
		if err := w.checkExpectRevision(ctx, st, wo.expectRev); err != nil {
			return nil, err
		}
	}
	newSchema := wo.schema != nil && !bytes.Equal(wo.schema, st.schema)
	var c Content // the next content, as stored; nil for an edit applied to the cache
	var changes []KeyChange
	var hash string
	if st.locked {
		if changes, err = p.edit(st); err != nil {
			return nil, err
		}
		hash = st.cache.hasher.with(st.content, changes)
	} else {
		if c, err = p.content(st); err != nil {
			return nil, err
		}
		if c, err = w.openGiven(ctx, st, c); err != nil {
			return nil, err
		}
		if wo.schema != nil {
			st.schema = wo.schema // what the content must satisfy from this write on
		}
		// A schema published over no content has nothing to check (the first
		// write is checked against it), nor has the schema already in force.
		if wo.schema == nil || (newSchema && len(c) > 0) {
			if err := w.validate(st, c); err != nil {
				return nil, err
			}
		}
		if c, err = w.sealContent(ctx, st, c, wo.reseal); err != nil { // as stored from here on
			return nil, err
		}
		changes = diffContent(st.content, c)
		hash = c.Hash()
	}
	secrets := w.secretsOf(st)
	rel := &Release{Version: st.version + 1, Author: wo.author, Message: wo.message, Time: time.Now().UTC(),
		Hash: hash, RollbackOf: rollbackOf, Changes: mask(secrets, changes), DryRun: wo.dryRun}
	if newSchema {
		rel.Schema = schemaHash(wo.schema)
	}
	if wo.dryRun {
		return rel, nil
	}
	if len(changes) == 0 && !newSchema && rolloutOp == nil {
		return &Release{Version: st.version, Revision: st.revision, Hash: rel.Hash}, nil
	}
	full := func() Content {
		if c == nil {
			c = maps.Clone(st.content)
			applyChanges(c, changes)
		}
		return c
	}
	tx, err := w.prepare(ctx, st, wo, id, rel, changes, rolloutOp, newSchema, full)
	if err != nil {
		return nil, err
	}
	st.unlock()
	sent, err := w.send(ctx, st, tx, rel, changes)
	if errors.Is(err, errUnknown) {
		*pending = pendingCommit{version: rel.Version, versionRev: st.versionRev, set: true}
	}
	return sent, err
}

// begin returns the state a write starts from: the writer's cache when it
// can serve the write, else a read of etcd (which starts or renews the
// cache). A state from the cache aliases its maps and holds its lock
// (locked) when the write is an edit that nothing validates, and the
// newest release record is known and matches the content; otherwise it is
// a copy.
func (w *RawWriter) begin(ctx context.Context, p proposal, wo writeOptions, id string, pending *pendingCommit) (*state, error) {
	if c := w.caches.current(); c != nil && !pending.set && wo.id == "" && wo.expectRev == 0 && wo.schema == nil && !wo.reseal {
		st, err := c.lock(ctx)
		switch {
		case err == nil:
			if wo.expectSet && st.version != wo.expect {
				c.unlock() // the cache may be behind: a read decides
				break
			}
			st.hash = c.hasher.sum(nil)
			w.mu.Lock()
			newest := w.newest
			w.mu.Unlock()
			if newest != nil && newest.Version == st.version {
				st.prev = newest
			}
			if p.edit != nil && !w.validates(st) && (st.version == 0 || (st.prev != nil && st.prev.Hash == st.baseHash(st.prev.Hash))) {
				st.locked = true
				return st, nil
			}
			st.content = maps.Clone(st.content)
			st.plain, st.modRevs = st.content, maps.Clone(st.modRevs)
			c.unlock()
			if st.prev == nil && st.version > 0 {
				if err := w.readNewest(ctx, st); err != nil {
					return nil, err
				}
			}
			return st, nil
		case !errors.Is(err, errCacheStale):
			return nil, err
		}
	}
	find := writeFind{id: id}
	switch {
	case pending.set:
		find.version = pending.version
	case wo.id != "":
		find.scan = true // a write sent again: it may have committed before
	}
	st, err := w.read(ctx, find)
	if err != nil || st.done != nil {
		return st, err
	}
	hasher := newContentHasher(st.content)
	st.hash = hasher.sum(nil)
	w.keepCache(st, hasher)
	return st, nil
}

// validates reports whether a write to st is checked: by Writer[T], or
// against a schema.
func (w *RawWriter) validates(st *state) bool {
	return w.check != nil || (!w.opts.noSchema && (w.opts.schema != nil || st.schema != nil))
}

// commitTxn is a commit ready to send, with what follows it.
type commitTxn struct {
	guards      []clientv3.Cmp
	ops         []clientv3.Op
	rec         *record
	late        []clientv3.Op // a checkpoint too large to join the commit
	checkpoint  bool          // the release stores a checkpoint
	prevContent Content       // to store as the previous release's checkpoint, if any
	metaChanged bool          // the commit also changes the schema or the rollout record
	keyGuarded  bool          // guarded by the keys it changes, not the data prefix: see settle
}

// maxKeyGuards bounds the key changes a write from the cache guards one by
// one; more are guarded by the data prefix as a whole, which etcd checks
// by reading every data key.
const maxKeyGuards = 64

// prepare builds the commit of a write: the release record, the key
// changes, the version key, retention, a checkpoint when
// one is due, and the guards.
func (w *RawWriter) prepare(ctx context.Context, st *state, wo writeOptions, id string, rel *Release, changes []KeyChange,
	rolloutOp func(etcdprov.Layout, *Release) clientv3.Op, newSchema bool, full func() Content) (*commitTxn, error) {
	rec, checkpoint, prevCheckpoint := w.newRecord(ctx, st, rel, changes, id)
	rel.Outside, rel.OutsideMore = mask(w.secretsOf(st), loadChanges(rec.Outside)), rec.OutsideMore
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("config: encode release record: %w", err)
	}
	tx := &commitTxn{rec: rec, checkpoint: checkpoint, prevContent: prevCheckpoint,
		keyGuarded: st.cache != nil && len(changes) > 0 && len(changes) <= maxKeyGuards && wo.expectRev == 0 && !w.validates(st)}
	for _, ch := range changes {
		if ch.Kind == Deleted {
			tx.ops = append(tx.ops, clientv3.OpDelete(w.layout.DataKey(ch.Key)))
		} else {
			tx.ops = append(tx.ops, clientv3.OpPut(w.layout.DataKey(ch.Key), ch.New))
		}
	}
	recKey := w.layout.Release(rel.Version)
	tx.ops = append(tx.ops,
		clientv3.OpPut(w.layout.Version(), strconv.FormatInt(rel.Version, 10)),
		clientv3.OpPut(recKey, string(recJSON)))
	if keep := int64(w.opts.retention); rel.Version > keep {
		// The record that falls out of retention; once every keep releases
		// also any older ones (a lowered retention, a record written by
		// hand). A range from 0 on every write would walk every deleted
		// record etcd has not compacted yet.
		drop := clientv3.OpDelete(w.layout.Release(rel.Version - keep))
		if rel.Version%keep == 0 {
			drop = clientv3.OpDelete(w.layout.Release(0),
				clientv3.WithRange(w.layout.Release(rel.Version-keep+1)))
		}
		tx.ops = append(tx.ops, drop)
	}
	if newSchema {
		tx.ops = append(tx.ops, clientv3.OpPut(w.layout.Schema(), string(wo.schema)))
		tx.metaChanged = true
	} else if w.extraOps != nil {
		extra := w.extraOps(st)
		tx.ops = append(tx.ops, extra...)
		tx.metaChanged = len(extra) > 0
	}
	if rolloutOp != nil {
		tx.ops = append(tx.ops, rolloutOp(w.layout, rel))
		tx.metaChanged = true
	}
	if checkpoint && !tx.keyGuarded { // a key-guarded write stores it once it knows what it committed (settle)
		cp, err := w.checkpointOps(rel.Version, full(), rel.Hash)
		if err != nil {
			return nil, err
		}
		if len(cp) == 2 && len(tx.ops)+2 <= maxTxnOps { // one part that fits: it joins the commit
			tx.ops = append(tx.ops, cp...)
		} else {
			tx.late = cp
		}
	}
	tx.guards = []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(w.layout.Version()), "=", st.versionRev),
		clientv3.Compare(clientv3.CreateRevision(recKey), "=", 0),
		clientv3.Compare(clientv3.ModRevision(w.layout.Rollout()), "=", st.rolloutRev),
	}
	switch {
	case tx.keyGuarded:
		// Nothing judges the content as a whole: the keys this write
		// changes must be as the cache saw them, and the schema too. A key
		// changed around the writer in the instant before the commit that
		// this write does not touch keeps its value, as if it had changed
		// just after; the next release lists it as changed outside.
		tx.guards = append(tx.guards, clientv3.Compare(clientv3.ModRevision(w.layout.Schema()), "=", st.schemaRev))
		for _, ch := range changes {
			tx.guards = append(tx.guards, clientv3.Compare(clientv3.ModRevision(w.layout.DataKey(ch.Key)), "=", st.modRevs[ch.Key]))
		}
	default:
		since := st.dataRevision() // no data key modified after it
		if wo.expectRev > 0 {
			since = min(since, wo.expectRev)
		}
		tx.guards = append(tx.guards, clientv3.Compare(clientv3.ModRevision(w.layout.Data()), "<", since+1).WithPrefix())
		if st.cache != nil {
			tx.guards = append(tx.guards, clientv3.Compare(clientv3.ModRevision(w.layout.Schema()), "=", st.schemaRev))
		}
	}
	return tx, nil
}

// maxTxnOps is etcd's default --max-txn-ops: the most operations, and the
// most guards, one transaction may hold.
const maxTxnOps = 128

// send commits tx, then stores what follows it: checkpoints, and the
// cache's note of the commit.
func (w *RawWriter) send(ctx context.Context, st *state, tx *commitTxn, rel *Release, changes []KeyChange) (*Release, error) {
	tctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	recKey := w.layout.Release(rel.Version)
	resp, err := w.cli.Txn(tctx).If(tx.guards...).Then(tx.ops...).
		Else(clientv3.OpGet(w.layout.Version()), clientv3.OpGet(recKey, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		switch {
		case errors.Is(err, rpctypes.ErrTooManyOps):
			return nil, w.wrap(fmt.Sprintf("commit of %d key changes", len(changes)),
				fmt.Errorf("%w (the commit held %d operations and %d guards; etcd's --max-txn-ops, %d by default, bounds both: raise it or split the change)",
					err, len(tx.ops), len(tx.guards), maxTxnOps))
		case isTransient(err):
			return nil, fmt.Errorf("%w: commit of release %d: %w", errUnknown, rel.Version, w.wrap("commit", err))
		}
		return nil, w.wrap("commit", err)
	}
	if !resp.Succeeded {
		if st.cache != nil {
			st.cache.forget(st.versionRev)
		}
		cur := st.version
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cur, _ = strconv.ParseInt(string(kvs[0].Value), 10, 64)
		}
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 && cur == st.version {
			// Not a race: the version key is behind the records (set back
			// around the writer). Retrying cannot help, and no record is
			// ever overwritten.
			return nil, &ConflictError{Expected: st.version, Current: cur, Reason: fmt.Sprintf(
				"release record %s already exists while the version key %s holds %d: the key was set back around the writer; put the newest release number back into it",
				recKey, w.layout.Version(), cur)}
		}
		return nil, fmt.Errorf("%w: %w", errRetry, &ConflictError{Expected: st.version, Current: cur})
	}
	rel.Revision = resp.Header.Revision
	w.remember(tx.rec)
	if c := w.caches.current(); c != nil {
		c.committed(st, rel.Version, rel.Revision, len(changes) > 0, tx.metaChanged)
	}
	if tx.keyGuarded {
		w.settle(ctx, st, tx, rel)
	}
	if tx.prevContent != nil {
		// The previous release's content, before the changes made around
		// the writer that this record lists without values. Failing to
		// store it leaves the releases before it to forward replay only.
		if cp, err := w.checkpointOps(rel.Version-1, tx.prevContent, ""); err == nil {
			_ = w.writeCheckpoint(ctx, cp)
		}
	}
	if tx.checkpoint {
		// A checkpoint that fails to be written costs rebuild time: releases
		// are rebuilt from another checkpoint, if one is kept. The next
		// write of this writer tries again.
		err := w.writeCheckpoint(ctx, tx.late)
		w.mu.Lock()
		w.checkpointDue = err != nil
		w.mu.Unlock()
		if err == nil && rel.Version > int64(w.opts.retention) {
			_ = w.pruneCheckpoints(ctx, rel.Version)
		}
	}
	return rel, nil
}

// settle makes the record of a key-guarded commit say what etcd held: a
// key changed around the writer between the cache's view and the commit
// (which the commit's guards let pass, since the write does not touch it)
// is listed under Outside, and the record's base and hash are those of the
// content etcd held, as a write that read first would have recorded them:
// with values up to maxOutside changes, else keys only, with a checkpoint
// of this release and of the one before. The record is rewritten only
// then, guarded by its own mod revision. A due checkpoint is built from
// the content etcd held too.
func (w *RawWriter) settle(ctx context.Context, st *state, tx *commitTxn, rel *Release) {
	sctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	s, ok := st.cache.settled(sctx, st.dataRevision(), rel.Revision, tx.checkpoint, rel.Hash)
	if !ok {
		// The cache cannot tell: the record stays as written (a change
		// around the writer in that instant is listed by the next
		// release), and the checkpoint waits for the next write.
		w.checkpointLater(tx)
		return
	}
	if len(s.window) > 0 {
		rec := *tx.rec
		rec.Base, rec.Hash = s.base, s.hash
		if known := loadChanges(tx.rec.Outside); tx.rec.OutsideValues || len(known) == 0 {
			rec.setOutside(netChanges(append(known, s.window...)), 0)
		} else {
			rec.setOutside(unionKeys(known, s.window), tx.rec.OutsideMore) // keys only already
		}
		prevContent := tx.prevContent
		if !rec.OutsideValues {
			// The record cannot be undone: like newRecord, store this
			// release's content and, unless it has one, the previous one's
			// (what the write saw, without the changes its record had found
			// around the writer).
			tx.checkpoint, rec.Anchor = true, rel.Version
			if prevContent == nil && st.prev != nil && st.prev.Content == nil && st.prev.Anchor != st.prev.Version {
				prevContent = s.before()
				applyChanges(prevContent, undoList(loadChanges(tx.rec.Outside)))
			}
		}
		recJSON, err := json.Marshal(rec)
		if err == nil {
			key := w.layout.Release(rel.Version)
			resp, err := w.cli.Txn(sctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rel.Revision)).
				Then(clientv3.OpPut(key, string(recJSON))).Commit()
			if err == nil && resp.Succeeded {
				rel.Hash = s.hash
				rel.Outside, rel.OutsideMore = mask(w.secretsOf(st), loadChanges(rec.Outside)), rec.OutsideMore
				w.remember(&rec)
				tx.rec, tx.prevContent = &rec, prevContent
			}
		}
	}
	if tx.checkpoint {
		if s.hash == tx.rec.Hash { // else the record could not be made to say what etcd held
			tx.late, _ = w.checkpointOps(rel.Version, s.content(), s.hash)
		}
		if tx.late == nil {
			w.checkpointLater(tx)
		}
	}
}

// unionKeys lists the keys of a and b once each, sorted, without values.
func unionKeys(a, b []KeyChange) []KeyChange {
	kinds := map[string]ChangeKind{}
	for _, ch := range append(a, b...) {
		kinds[ch.Key] = ch.Kind
	}
	out := make([]KeyChange, 0, len(kinds))
	for _, k := range sortedKeys(kinds) {
		out = append(out, KeyChange{Key: k, Kind: kinds[k]})
	}
	return out
}

// checkpointLater leaves a due checkpoint to the writer's next write.
func (w *RawWriter) checkpointLater(tx *commitTxn) {
	if tx.checkpoint {
		tx.checkpoint = false
		w.mu.Lock()
		w.checkpointDue = true
		w.mu.Unlock()
	}
}

// newRecord builds the release record of a write and says whether the
// write must also store a checkpoint of its content. When the changes made
// around the writer before it are too many to keep with their values, the
// record cannot be undone; it also returns the content of the previous
// release, to be stored as that release's checkpoint (unless it has one), so
// that the releases before it can still be rebuilt backward.
func (w *RawWriter) newRecord(ctx context.Context, st *state, rel *Release, changes []KeyChange, id string) (*record, bool, Content) {
	rec := &record{Version: rel.Version, Author: rel.Author, Message: rel.Message, Time: rel.Time, Hash: rel.Hash,
		RollbackOf: rel.RollbackOf, WriteID: id, Schema: rel.Schema, Changes: storeChanges(changes, true)}
	var base string
	if st.prev != nil {
		base = st.baseHash(st.prev.Hash)
	} else {
		base = st.baseHash("")
	}
	rec.Base = base
	var anchor int64
	var prevCheckpoint Content
	broken := false // the chain of records does not lead to this release's base
	switch {
	case st.prev == nil:
		broken = true
	case st.prev.Content != nil: // a format-1 record holds its content
		anchor = st.prev.Version
	default:
		anchor = st.prev.Anchor
	}
	if st.prev != nil && st.prev.Hash != base {
		prevContent, err := w.contentOf(ctx, st.prev.Version, st.revision)
		if err != nil {
			broken = true
		} else {
			outside := diffContent(prevContent, st.content)
			rec.setOutside(outside, 0)
			broken = !rec.OutsideValues
			if broken && st.prev.Content == nil && st.prev.Anchor != st.prev.Version {
				prevCheckpoint = prevContent
			}
		}
	}
	w.mu.Lock()
	due := w.checkpointDue
	w.mu.Unlock()
	checkpoint := due || broken || anchor == 0 || rel.Version-anchor >= checkpointInterval(w.opts.retention, len(st.content))
	if checkpoint {
		anchor = rel.Version
	}
	rec.Anchor = anchor
	return rec, checkpoint, prevCheckpoint
}

// checkpointInterval is how many releases may follow a checkpoint before
// the next release stores one, for a content of keys keys: checkpointEvery,
// or one release per checkpointKeys keys when that is more (a checkpoint
// costs the whole content, a record only its change), but never more than
// the retention, so that the newest retention releases always include one
// (see chain in history.go).
func checkpointInterval(retention, keys int) int64 {
	return int64(max(1, min(max(checkpointEvery, keys/checkpointKeys), retention)))
}

// checkpointKeys is the content size, in keys, that adds one release to
// the checkpoint interval beyond checkpointEvery.
const checkpointKeys = 16

// checkExpectRevision fails with a *ConflictError when anything under the
// prefix changed after revision rev: a release, a data key written, or a
// data key deleted around the writer.
func (w *RawWriter) checkExpectRevision(ctx context.Context, st *state, rev int64) error {
	if st.versionRev > rev {
		return &ConflictError{Expected: st.version, Current: st.version,
			Reason: fmt.Sprintf("release %d was written at revision %d, after revision %d", st.version, st.versionRev, rev)}
	}
	for _, k := range sortedKeys(st.modRevs) {
		if r := st.modRevs[k]; r > rev {
			return &ConflictError{Expected: st.version, Current: st.version,
				Reason: fmt.Sprintf("data key %s changed at revision %d, after revision %d", k, r, rev)}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Get(ctx, w.layout.Data(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
	if errors.Is(err, rpctypes.ErrCompacted) {
		return &ConflictError{Expected: st.version, Current: st.version,
			Reason: fmt.Sprintf("revision %d is compacted, so deletes since cannot be ruled out; read again", rev)}
	}
	if err != nil {
		return w.wrap("read at revision "+strconv.FormatInt(rev, 10), err)
	}
	for _, kv := range resp.Kvs {
		k, _ := w.layout.RelKey(string(kv.Key))
		if _, ok := st.content[k]; !ok {
			return &ConflictError{Expected: st.version, Current: st.version,
				Reason: fmt.Sprintf("data key %s was deleted after revision %d", k, rev)}
		}
	}
	return nil
}
