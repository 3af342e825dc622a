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

// writeMarkerTTL is how long the marker P/meta/writes/<id> of a commit
// lives at least twice: a write re-sent within half of it finds its
// earlier commit.
const writeMarkerTTL = 20 * time.Minute

// maxOutside bounds the changes made around the writer that a release
// record lists with their values; beyond it the record lists the keys only
// (so it cannot be undone), the release writes a checkpoint, and the
// previous release's content is stored as its checkpoint.
const maxOutside = 256

// write is the one path every write takes: read at revision R, compute the
// next content, validate it, and commit it with a release record in one
// transaction guarded by the version key, by no data key having changed
// since R, and by the write's marker not existing yet. A lost race re-runs
// next (up to maxAttempts) unless ExpectVersion or ExpectRevision was
// given. A commit whose answer is lost is resolved by reading the marker:
// the write commits at most once, and is reported once.
func (w *RawWriter) write(ctx context.Context, next func(*state) (Content, error), rollbackOf int64, opts []WriteOption) (*Release, error) {
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
		rel, err := w.attempt(ctx, next, rollbackOf, wo, id, &pending)
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

// pendingCommit is a commit whose answer was lost: it was guarded by the
// version key's mod revision versionRev. Once a read finds neither its
// marker nor that mod revision, it can never commit: it is settled.
type pendingCommit struct {
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

func (w *RawWriter) attempt(ctx context.Context, next func(*state) (Content, error), rollbackOf int64, wo writeOptions, id string, pending *pendingCommit) (*Release, error) {
	st, err := w.read(ctx, id)
	if err != nil {
		return nil, err
	}
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
	since := st.revision // the guard: no data key modified after this revision
	if wo.expectRev > 0 {
		if err := w.checkExpectRevision(ctx, st, wo.expectRev); err != nil {
			return nil, err
		}
		since = min(since, wo.expectRev)
	}
	c, err := next(st)
	if err != nil {
		return nil, err
	}
	if c, err = w.openGiven(ctx, st, c); err != nil {
		return nil, err
	}
	newSchema := wo.schema != nil && !bytes.Equal(wo.schema, st.schema)
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
	c, err = w.sealContent(ctx, st, c, wo.reseal) // as stored from here on
	if err != nil {
		return nil, err
	}
	changes := diffContent(st.content, c)
	secrets := w.secretsOf(st)
	rel := &Release{Version: st.version + 1, Author: wo.author, Message: wo.message, Time: time.Now().UTC(),
		Hash: c.Hash(), RollbackOf: rollbackOf, Changes: mask(secrets, changes), DryRun: wo.dryRun}
	if newSchema {
		rel.Schema = schemaHash(wo.schema)
	}
	if wo.dryRun {
		return rel, nil
	}
	if len(changes) == 0 && !newSchema && rolloutOp == nil {
		return &Release{Version: st.version, Revision: st.revision, Hash: rel.Hash}, nil
	}

	rec, checkpoint, prevCheckpoint := w.newRecord(ctx, st, rel, changes, id)
	rel.Outside = mask(secrets, loadChanges(rec.Outside))
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("config: encode release record: %w", err)
	}
	var ops []clientv3.Op
	for _, ch := range changes {
		if ch.Kind == Deleted {
			ops = append(ops, clientv3.OpDelete(w.layout.DataKey(ch.Key)))
		} else {
			ops = append(ops, clientv3.OpPut(w.layout.DataKey(ch.Key), c[ch.Key]))
		}
	}
	recKey := w.layout.Release(rel.Version)
	ops = append(ops,
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
		ops = append(ops, drop)
	}
	marker := w.layout.Write(id)
	lease, err := w.writeLease(ctx)
	if err != nil {
		return nil, err
	}
	ops = append(ops, clientv3.OpPut(marker, strconv.FormatInt(rel.Version, 10), clientv3.WithLease(lease)))
	if newSchema {
		ops = append(ops, clientv3.OpPut(w.layout.Schema(), string(wo.schema)))
	} else if w.extraOps != nil {
		ops = append(ops, w.extraOps(st)...)
	}
	if rolloutOp != nil {
		ops = append(ops, rolloutOp(w.layout, rel))
	}
	var late []clientv3.Op // a checkpoint too large to join the commit
	if checkpoint {
		cp, err := w.checkpointOps(rel.Version, c)
		if err != nil {
			return nil, err
		}
		if len(cp) == 2 { // one part: it joins the commit
			ops = append(ops, cp...)
		} else {
			late = cp
		}
	}
	guards := []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(w.layout.Version()), "=", st.versionRev),
		clientv3.Compare(clientv3.ModRevision(w.layout.Data()), "<", since+1).WithPrefix(),
		clientv3.Compare(clientv3.CreateRevision(recKey), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(marker), "=", 0),
		clientv3.Compare(clientv3.ModRevision(w.layout.Rollout()), "=", st.rolloutRev),
	}

	tctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Txn(tctx).If(guards...).Then(ops...).Else(clientv3.OpGet(w.layout.Version())).Commit()
	if err != nil {
		switch {
		case errors.Is(err, rpctypes.ErrTooManyOps):
			return nil, w.wrap(fmt.Sprintf("commit of %d key changes", len(changes)),
				fmt.Errorf("%w (etcd's --max-txn-ops, 128 by default, bounds one write to %d key changes; raise it or split the change)", err, 128-4))
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			w.dropLease(lease)
			return nil, fmt.Errorf("%w: %w", errRetry, &ConflictError{Expected: st.version, Current: st.version, Reason: "the write marker's lease expired"})
		case isTransient(err):
			*pending = pendingCommit{versionRev: st.versionRev, set: true}
			return nil, fmt.Errorf("%w: commit of release %d: %w", errUnknown, rel.Version, w.wrap("commit", err))
		}
		return nil, w.wrap("commit", err)
	}
	if !resp.Succeeded {
		cur := st.version
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cur, _ = strconv.ParseInt(string(kvs[0].Value), 10, 64)
		}
		return nil, fmt.Errorf("%w: %w", errRetry, &ConflictError{Expected: st.version, Current: cur})
	}
	rel.Revision = resp.Header.Revision
	w.remember(rec)
	if prevCheckpoint != nil {
		// The previous release's content, before the changes made around
		// the writer that this record lists without values. Failing to
		// store it leaves the releases before it to forward replay only.
		if cp, err := w.checkpointOps(rel.Version-1, prevCheckpoint); err == nil {
			_ = w.writeCheckpoint(ctx, cp)
		}
	}
	if checkpoint {
		// A checkpoint that fails to be written costs rebuild time: releases
		// are rebuilt from another checkpoint, if one is kept. The next
		// write of this writer tries again.
		err := w.writeCheckpoint(ctx, late)
		w.mu.Lock()
		w.checkpointDue = err != nil
		w.mu.Unlock()
		if err == nil && rel.Version > int64(w.opts.retention) {
			_ = w.pruneCheckpoints(ctx, rel.Version)
		}
	}
	return rel, nil
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
	base := st.content.Hash()
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
			rec.Outside = storeChanges(outside, len(outside) <= maxOutside)
			rec.OutsideValues = len(outside) <= maxOutside
			broken = !rec.OutsideValues
			if broken && st.prev.Content == nil && st.prev.Anchor != st.prev.Version {
				prevCheckpoint = prevContent
			}
		}
	}
	w.mu.Lock()
	due := w.checkpointDue
	w.mu.Unlock()
	checkpoint := due || broken || anchor == 0 || rel.Version-anchor >= checkpointInterval(w.opts.retention)
	if checkpoint {
		anchor = rel.Version
	}
	rec.Anchor = anchor
	return rec, checkpoint, prevCheckpoint
}

// checkpointInterval is how many releases may follow a checkpoint before
// the next release stores one: checkpointEvery, or the retention when it is
// smaller, so that the newest retention releases always include one (see
// chain in history.go).
func checkpointInterval(retention int) int64 {
	return int64(max(1, min(checkpointEvery, retention)))
}

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

// writeLease returns the lease for write markers, granting a new one when
// there is none or the current one is past half its time.
func (w *RawWriter) writeLease(ctx context.Context) (clientv3.LeaseID, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lease.id != 0 && time.Since(w.lease.granted) < writeMarkerTTL/2 {
		return w.lease.id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	granted := time.Now()
	resp, err := w.cli.Grant(ctx, int64(writeMarkerTTL/time.Second))
	if err != nil {
		return 0, w.wrap("grant the write marker lease", err)
	}
	w.lease = writeLease{id: resp.ID, granted: granted}
	return resp.ID, nil
}

// dropLease forgets lease id so that the next write grants a new one.
func (w *RawWriter) dropLease(id clientv3.LeaseID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lease.id == id {
		w.lease = writeLease{}
	}
}
