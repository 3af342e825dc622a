package config

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkpointEvery is how many releases may follow a checkpoint before the
// next release stores one, unless the retention is smaller
// (checkpointInterval): rebuilding a release replays or undoes fewer
// records than this.
const checkpointEvery = 32

// checkpointPart bounds one stored part of a checkpoint, well under etcd's
// default request limit of 1.5 MiB.
const checkpointPart = 512 << 10

// History lists the newest limit entries, newest first (limit <= 0: all
// that retention kept), with each release's key changes and their old and
// new values (secret values masked). When the data differs from the newest
// release, the list starts with an Unrecorded entry naming the keys changed
// around the writer; it counts towards limit.
func (w *RawWriter) History(ctx context.Context, limit int) ([]Release, error) {
	st, err := w.read(ctx, writeFind{})
	if err != nil {
		return nil, err
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithRev(st.revision)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	rctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Get(rctx, w.layout.Releases(), opts...)
	if err != nil {
		return nil, w.wrap("read releases", err)
	}
	secrets := w.secretsOf(st)
	out := make([]Release, 0, len(resp.Kvs)+1)
	newestHash := Content{}.Hash()
	for i, kv := range resp.Kvs {
		r, err := decodeRecord(string(kv.Key), kv.Value)
		if err != nil {
			n, _ := w.layout.ParseRelease(string(kv.Key))
			out = append(out, Release{Version: n, Revision: kv.CreateRevision, Err: err})
			if i == 0 {
				newestHash = st.content.Hash() // nothing to compare with
			}
			continue
		}
		if i == 0 {
			newestHash = r.Hash
		}
		rel := r.release(kv.CreateRevision)
		rel.Changes = mask(secrets, rel.Changes)
		rel.Outside = mask(secrets, rel.Outside)
		out = append(out, *rel)
	}
	if (len(resp.Kvs) > 0 || len(st.content) > 0) && !hashMatches(st.content, newestHash) {
		var changes []KeyChange
		if len(resp.Kvs) > 0 && st.prev != nil {
			if prev, err := w.contentOf(ctx, st.prev.Version, st.revision); err == nil {
				changes = mask(secrets, diffContent(prev, st.content))
			}
		}
		if changes == nil { // the newest release cannot be rebuilt: name the keys newer than it
			for _, k := range sortedKeys(st.content) {
				if len(resp.Kvs) == 0 || st.modRevs[k] > resp.Kvs[0].CreateRevision {
					changes = append(changes, KeyChange{Key: k, Kind: Changed})
				}
			}
		}
		var rev int64
		for _, ch := range changes {
			rev = max(rev, st.modRevs[ch.Key])
		}
		if rev == 0 {
			rev = st.revision // only deletes: their revision is not kept
		}
		u := Release{Version: st.version, Revision: rev, Hash: st.content.Hash(), Changes: changes, Unrecorded: true,
			Message: fmt.Sprintf("%d key(s) changed outside the writer", len(changes))}
		out = append([]Release{u}, out...)
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
	}
	return out, nil
}

// Release returns release n and its full content, or ErrNotFound when it
// never existed or retention removed it. The content is rebuilt from the
// release records and checkpoints alone, so it does not need etcd's
// history of that revision (which compaction may have removed).
func (w *RawWriter) Release(ctx context.Context, n int64) (*Release, Content, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	c, rec, rev, err := w.rebuild(ctx, n, 0)
	if err != nil {
		return nil, nil, err
	}
	rel := rec.release(rev)
	st := &state{}
	if w.opts.schema == nil {
		st.schema, _ = w.Schema(ctx) // nil when none is published
	}
	secrets := w.secretsOf(st)
	rel.Changes = mask(secrets, rel.Changes)
	rel.Outside = mask(secrets, rel.Outside)
	return rel, c, nil
}

// Rollback writes a new release whose content equals release n's. It
// works from the release records alone, so it does not need etcd's history
// of that revision (which compaction may have removed).
func (w *RawWriter) Rollback(ctx context.Context, n int64, opts ...WriteOption) (*Release, error) {
	_, content, err := w.Release(ctx, n)
	if err != nil {
		return nil, err
	}
	plain, unopened := w.open(ctx, content)
	if err := unopenedError(unopened); err != nil {
		return nil, fmt.Errorf("config: cannot roll back to release %d, nothing written: %w", n, err)
	}
	opts = append([]WriteOption{Message(fmt.Sprintf("rollback to release %d", n))}, opts...)
	return w.write(ctx, func(*state) (Content, error) { return maps.Clone(plain), nil }, n, opts)
}

// contentOf rebuilds the content of release n as of revision rev.
func (w *RawWriter) contentOf(ctx context.Context, n, rev int64) (Content, error) {
	c, _, _, err := w.rebuild(ctx, n, rev)
	return c, err
}

// rebuild returns the content of release n, its record and the record's
// mod revision, from the release records and checkpoints alone, all read at
// one revision: rev, or the newest when rev is 0. It replays forward where
// it can, else it undoes records backward from a later checkpoint (see
// chain); either way the result must hash to the record's hash.
func (w *RawWriter) rebuild(ctx context.Context, n, rev int64) (Content, *record, int64, error) {
	checkpoints, rev, err := w.checkpoints(ctx, rev)
	if err != nil {
		return nil, nil, 0, err
	}
	hi := n // the records up to the newest checkpoint: a backward start may be any
	for v := range checkpoints {
		hi = max(hi, v)
	}
	resp, err := w.cli.Get(ctx, w.layout.Release(0), clientv3.WithRange(w.layout.Release(hi+1)), clientv3.WithRev(rev))
	if err != nil {
		return nil, nil, 0, w.wrap("read releases", err)
	}
	ch := &chain{w: w, rev: rev, checkpoints: checkpoints, target: -1}
	for _, kv := range resp.Kvs {
		v, ok := w.layout.ParseRelease(string(kv.Key))
		if !ok {
			continue
		}
		rec, err := decodeRecord(string(kv.Key), kv.Value)
		if err != nil {
			rec = &record{Version: v}
		}
		if v == n {
			ch.target = len(ch.recs)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: %w", n, w.layout.Prefix(), err)
			}
		}
		ch.vers = append(ch.vers, v)
		ch.recs = append(ch.recs, rec)
		ch.bad = append(ch.bad, err)
		ch.revs = append(ch.revs, kv.CreateRevision)
	}
	if ch.target < 0 {
		return nil, nil, 0, fmt.Errorf("config: release %d of %s: %w", n, w.layout.Prefix(), ErrNotFound)
	}
	target, targetRev := ch.recs[ch.target], ch.revs[ch.target]
	c, ferr := ch.forward(ctx)
	if ferr == nil {
		if !hashMatches(c, target.Hash) {
			ferr = fmt.Errorf("its records give content %s, the release says %s", hashLike(c, target.Hash), target.Hash)
		} else {
			return c, target, targetRev, nil
		}
	}
	c, berr := ch.backward(ctx)
	if berr == nil {
		if !hashMatches(c, target.Hash) {
			berr = fmt.Errorf("its records give content %s, the release says %s", hashLike(c, target.Hash), target.Hash)
		} else {
			return c, target, targetRev, nil
		}
	}
	return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: from a checkpoint at or before it: %w; back from a later one: %w",
		n, w.layout.Prefix(), ferr, berr)
}

// chain is the release records of a prefix, oldest first, as one rebuild
// read them, and the versions that have a checkpoint.
//
// Record k leads from the content of release k-1 to that of release k:
// first the changes made around the writer that it found (Outside, when
// its Base differs from the hash of release k-1), then its own Changes.
// Both hold old and new values, so the records can be replayed forward
// from a checkpoint at or before the release, or undone backward from a
// checkpoint after it. Retention deletes the records older than the newest
// n, so the checkpoint before a kept release may have lost the records
// that lead from it; the writer therefore stores a checkpoint at least
// every n releases (checkpointInterval), and every kept release has a
// kept checkpoint at or before it with all records since, or one after it.
type chain struct {
	w           *RawWriter
	rev         int64
	checkpoints map[int64]bool
	vers        []int64   // the version of each record, from its key
	recs        []*record // a record that does not decode has only its Version
	bad         []error   // why a record does not decode: fatal only where it is needed
	revs        []int64   // mod revisions
	target      int       // the index of the release to rebuild
}

// stored returns the content of record i's release when it is stored: in
// the record itself (format 1) or in a checkpoint that matches its hash.
func (ch *chain) stored(ctx context.Context, i int) Content {
	if r := ch.recs[i]; r.Content != nil {
		return maps.Clone(r.Content)
	}
	if !ch.checkpoints[ch.vers[i]] {
		return nil
	}
	c, err := ch.w.readCheckpoint(ctx, ch.vers[i], ch.rev)
	if err != nil || !hashMatches(c, ch.recs[i].Hash) {
		return nil
	}
	return c
}

// forward starts from the newest stored content at or before the target
// and replays the records after it in order. The start may also be the
// checkpoint of the release just before the oldest record kept (retention
// deleted its record): its content stands in for that release's.
func (ch *chain) forward(ctx context.Context) (Content, error) {
	var cur Content
	var prevHash string // the hash of the release before the first record replayed
	from := -1          // the index of the first record replayed
	for i := ch.target; cur == nil; i-- {
		if i < 0 || (i < ch.target && ch.vers[i] != ch.vers[i+1]-1) {
			// Release ch.vers[i+1]-1 has no record (any more).
			v := ch.vers[i+1] - 1
			if !ch.checkpoints[v] {
				if i < 0 {
					return nil, errors.New("no checkpoint at or before it is kept")
				}
				return nil, fmt.Errorf("release %d is missing", v)
			}
			c, err := ch.w.readCheckpoint(ctx, v, ch.rev)
			if err != nil {
				return nil, err
			}
			cur, prevHash, from = c, c.Hash(), i+1
			break
		}
		if ch.bad[i] != nil {
			return nil, ch.bad[i] // it would have to be replayed
		}
		if c := ch.stored(ctx, i); c != nil {
			cur, prevHash, from = c, ch.recs[i].Hash, i+1
		}
	}
	for j := from; j <= ch.target; j++ {
		r := ch.recs[j]
		// A checkpoint read for a release without a record gives a hash
		// of the tree format; the record after it may hold the flat one.
		if r.Base != "" && r.Base != prevHash && !hashMatches(cur, r.Base) {
			if !r.OutsideValues {
				return nil, fmt.Errorf("the changes made around the writer before release %d were not recorded", r.Version)
			}
			applyChanges(cur, loadChanges(r.Outside))
		}
		applyChanges(cur, loadChanges(r.Changes))
		prevHash = r.Hash
	}
	return cur, nil
}

// backward starts from the oldest checkpoint after the target that its
// records lead back from, and undoes the records from that checkpoint's
// down to the one after the target, newest first: each record's own
// changes, then the changes made around the writer that it found.
func (ch *chain) backward(ctx context.Context) (Content, error) {
	for j := ch.target + 1; j < len(ch.recs); j++ {
		if ch.vers[j] != ch.vers[j-1]+1 {
			return nil, fmt.Errorf("release %d is missing", ch.vers[j-1]+1)
		}
		if ch.bad[j] != nil {
			return nil, ch.bad[j]
		}
		if err := undoable(ch.recs[j], ch.recs[j-1]); err != nil {
			return nil, err
		}
		c := ch.stored(ctx, j)
		if c == nil {
			continue
		}
		for k := j; k > ch.target; k-- {
			r := ch.recs[k]
			undoChanges(c, r.Changes)
			if r.Base != "" && r.Base != ch.recs[k-1].Hash {
				undoChanges(c, r.Outside)
			}
		}
		return c, nil
	}
	return nil, errors.New("no checkpoint after it is kept")
}

// undoable says why record r cannot be undone back to prev's content, if
// it cannot: a value it changed has no old value kept.
func undoable(r, prev *record) error {
	if r.Content != nil {
		return fmt.Errorf("release %d is of format 1, which keeps no old values", r.Version)
	}
	for _, c := range r.Changes {
		if c.Kind != Added && c.Old == nil {
			return fmt.Errorf("release %d keeps no old value of %s", r.Version, c.Key)
		}
	}
	if r.Base == "" || r.Base == prev.Hash {
		return nil
	}
	if !r.OutsideValues {
		return fmt.Errorf("the changes made around the writer before release %d were not recorded", r.Version)
	}
	for _, c := range r.Outside {
		if c.Kind != Added && c.Old == nil {
			return fmt.Errorf("release %d keeps no old value of %s, changed around the writer", r.Version, c.Key)
		}
	}
	return nil
}

// undoChanges undoes changes in c: an added key is deleted, a changed or
// deleted one gets its old value back (see undoable).
func undoChanges(c Content, changes []recordChange) {
	for _, ch := range changes {
		if ch.Kind == Added {
			delete(c, ch.Key)
		} else {
			c[ch.Key] = string(*ch.Old)
		}
	}
}

// checkpointIndex is what P/meta/checkpoints/<n> holds; the compressed
// content is in Parts keys P/meta/checkpoints/<n>/<i>.
type checkpointIndex struct {
	Hash  string `json:"hash"`
	Parts int    `json:"parts"`
	Keys  int    `json:"keys"`
}

// checkpoints lists the versions that have a complete checkpoint at
// revision rev (0: the newest), and returns the revision it read at.
func (w *RawWriter) checkpoints(ctx context.Context, rev int64) (map[int64]bool, int64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := w.cli.Get(ctx, w.layout.Checkpoints(), opts...)
	if err != nil {
		return nil, 0, w.wrap("list checkpoints", err)
	}
	out := make(map[int64]bool)
	for _, kv := range resp.Kvs {
		if n, ok := w.layout.ParseCheckpoint(string(kv.Key)); ok { // not a part
			out[n] = true
		}
	}
	if rev == 0 {
		rev = resp.Header.Revision
	}
	return out, rev, nil
}

// readCheckpoint loads the checkpoint of release n.
func (w *RawWriter) readCheckpoint(ctx context.Context, n, rev int64) (Content, error) {
	key := w.layout.Checkpoint(n)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := w.cli.Get(ctx, key, opts...)
	if err != nil {
		return nil, w.wrap("read checkpoint", err)
	}
	var idx checkpointIndex
	parts := map[string][]byte{}
	for _, kv := range resp.Kvs {
		if string(kv.Key) == key {
			if err := json.Unmarshal(kv.Value, &idx); err != nil {
				return nil, fmt.Errorf("config: checkpoint %s: %w", key, err)
			}
		} else {
			parts[string(kv.Key)] = kv.Value
		}
	}
	var buf bytes.Buffer
	for i := range idx.Parts {
		p, ok := parts[w.layout.CheckpointPart(n, i)]
		if !ok {
			return nil, fmt.Errorf("config: checkpoint %s: part %d is missing", key, i)
		}
		buf.Write(p)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		return nil, fmt.Errorf("config: checkpoint %s: %w", key, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("config: checkpoint %s: %w", key, err)
	}
	var stored map[string]text
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, fmt.Errorf("config: checkpoint %s: %w", key, err)
	}
	c := make(Content, len(stored))
	for k, v := range stored {
		c[k] = string(v)
	}
	if !hashMatches(c, idx.Hash) {
		return nil, fmt.Errorf("config: checkpoint %s does not match its hash", key)
	}
	return c, nil
}

// checkpointOps returns the puts that store the content of release n,
// compressed, in parts followed by the index key that makes it visible.
// hash is c's hash when the caller knows it, else "".
func (w *RawWriter) checkpointOps(n int64, c Content, hash string) ([]clientv3.Op, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	bw := bufio.NewWriterSize(zw, 64<<10)
	if err := encodeCheckpoint(bw, c); err != nil {
		return nil, fmt.Errorf("config: encode checkpoint: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("config: compress checkpoint: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("config: compress checkpoint: %w", err)
	}
	key := w.layout.Checkpoint(n)
	z := buf.Bytes()
	var ops []clientv3.Op
	for len(z) > 0 || len(ops) == 0 {
		part := z[:min(len(z), checkpointPart)]
		z = z[len(part):]
		ops = append(ops, clientv3.OpPut(w.layout.CheckpointPart(n, len(ops)), string(part)))
	}
	if hash == "" {
		hash = c.Hash()
	}
	idx, _ := json.Marshal(checkpointIndex{Hash: hash, Parts: len(ops), Keys: len(c)})
	return append(ops, clientv3.OpPut(key, string(idx))), nil
}

// encodeCheckpoint writes c as the JSON object readCheckpoint reads: each
// key to its value as text stores it (a JSON string, or {"base64": ...}
// for a value that is not UTF-8). Keys are in no particular order.
func encodeCheckpoint(bw *bufio.Writer, c Content) error {
	bw.WriteByte('{')
	first := true
	for k, v := range c {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		if !utf8.ValidString(k) {
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			bw.Write(b)
		} else {
			writeJSONString(bw, k)
		}
		bw.WriteByte(':')
		if utf8.ValidString(v) {
			writeJSONString(bw, v)
			continue
		}
		b, err := text(v).MarshalJSON()
		if err != nil {
			return err
		}
		bw.Write(b)
	}
	return bw.WriteByte('}')
}

// writeJSONString writes s, valid UTF-8, as a JSON string.
func writeJSONString(bw *bufio.Writer, s string) {
	const hex = "0123456789abcdef"
	bw.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		bw.WriteString(s[start:i])
		switch b {
		case '"', '\\':
			bw.WriteByte('\\')
			bw.WriteByte(b)
		case '\n':
			bw.WriteString(`\n`)
		case '\r':
			bw.WriteString(`\r`)
		case '\t':
			bw.WriteString(`\t`)
		default:
			bw.WriteString(`\u00`)
			bw.WriteByte(hex[b>>4])
			bw.WriteByte(hex[b&0xf])
		}
		start = i + 1
	}
	bw.WriteString(s[start:])
	bw.WriteByte('"')
}

// writeCheckpoint stores a checkpoint too large to join its commit, one
// part per request, the index last.
func (w *RawWriter) writeCheckpoint(ctx context.Context, ops []clientv3.Op) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	for _, op := range ops {
		if _, err := w.cli.Do(ctx, op); err != nil {
			return w.wrap("write checkpoint", err)
		}
	}
	return nil
}

// pruneCheckpoints deletes the checkpoints that no retained release needs.
// With newest the newest release, the retained ones are the window
// newest-retention+1 .. newest; it keeps every checkpoint inside the window
// (checkpointInterval puts at least one there: the releases before the
// first are rebuilt backward from it) and the newest one at or before its
// start (forward replay starts there when its record is still kept or is
// the one just deleted).
func (w *RawWriter) pruneCheckpoints(ctx context.Context, newest int64) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	have, _, err := w.checkpoints(ctx, 0)
	if err != nil {
		return err
	}
	oldest := newest - int64(w.opts.retention) + 1
	var keepFrom int64
	for v := range have {
		if v <= oldest && v > keepFrom {
			keepFrom = v
		}
	}
	for v := range have {
		if v < keepFrom {
			if _, err := w.cli.Delete(ctx, w.layout.Checkpoint(v), clientv3.WithPrefix()); err != nil {
				return w.wrap("delete old checkpoint", err)
			}
		}
	}
	return nil
}
