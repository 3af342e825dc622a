package config

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkpointEvery is how many releases may follow a checkpoint before the
// next release stores one: rebuilding a release applies at most this many
// records.
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
	st, err := w.read(ctx, "")
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
			out = append(out, Release{Version: n, Revision: kv.ModRevision, Err: err})
			if i == 0 {
				newestHash = st.content.Hash() // nothing to compare with
			}
			continue
		}
		if i == 0 {
			newestHash = r.Hash
		}
		rel := r.release(kv.ModRevision)
		rel.Changes = mask(secrets, rel.Changes)
		rel.Outside = mask(secrets, rel.Outside)
		out = append(out, *rel)
	}
	if (len(resp.Kvs) > 0 || len(st.content) > 0) && newestHash != st.content.Hash() {
		var changes []KeyChange
		if len(resp.Kvs) > 0 && st.prev != nil {
			if prev, err := w.contentOf(ctx, st.prev.Version, st.revision); err == nil {
				changes = mask(secrets, diffContent(prev, st.content))
			}
		}
		if changes == nil { // the newest release cannot be rebuilt: name the keys newer than it
			for _, k := range sortedKeys(st.content) {
				if len(resp.Kvs) == 0 || st.modRevs[k] > resp.Kvs[0].ModRevision {
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
	opts = append([]WriteOption{Message(fmt.Sprintf("rollback to release %d", n))}, opts...)
	return w.write(ctx, func(*state) (Content, error) { return maps.Clone(content), nil }, n, opts)
}

// contentOf rebuilds the content of release n as of revision rev.
func (w *RawWriter) contentOf(ctx context.Context, n, rev int64) (Content, error) {
	c, _, _, err := w.rebuild(ctx, n, rev)
	return c, err
}

// rebuild returns the content of release n, its record and the record's
// mod revision, read at revision rev (0: the newest): the newest checkpoint
// at or before n (or a format-1 record, which holds its content), then the
// records after it applied in order: first the changes made around the
// writer that each record found, then its own. The result must hash to the
// record's hash.
func (w *RawWriter) rebuild(ctx context.Context, n, rev int64) (Content, *record, int64, error) {
	readOpts := []clientv3.OpOption{clientv3.WithRange(w.layout.Release(n + 1))}
	if rev > 0 {
		readOpts = append(readOpts, clientv3.WithRev(rev))
	}
	resp, err := w.cli.Get(ctx, w.layout.Release(0), readOpts...)
	if err != nil {
		return nil, nil, 0, w.wrap("read releases", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[len(resp.Kvs)-1].Key == nil ||
		string(resp.Kvs[len(resp.Kvs)-1].Key) != w.layout.Release(n) {
		return nil, nil, 0, fmt.Errorf("config: release %d of %s: %w", n, w.layout.Prefix(), ErrNotFound)
	}
	recs := make([]*record, len(resp.Kvs))
	bad := make([]error, len(resp.Kvs)) // records that do not decode: fatal only where replayed
	for i, kv := range resp.Kvs {
		if recs[i], bad[i] = decodeRecord(string(kv.Key), kv.Value); bad[i] != nil {
			recs[i] = &record{Version: -1}
		}
	}
	if err := bad[len(bad)-1]; err != nil {
		return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: %w", n, w.layout.Prefix(), err)
	}
	target, targetRev := recs[len(recs)-1], resp.Kvs[len(resp.Kvs)-1].ModRevision
	checkpoints, err := w.checkpoints(ctx, rev)
	if err != nil {
		return nil, nil, 0, err
	}
	// The start: the newest release at or before n whose content is stored.
	var cur Content
	start := -1
	for i := len(recs) - 1; i >= 0 && cur == nil; i-- {
		if bad[i] != nil {
			return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: %w", n, w.layout.Prefix(), bad[i])
		}
		switch {
		case recs[i].Content != nil:
			cur = maps.Clone(recs[i].Content)
		case checkpoints[recs[i].Version]:
			if c, err := w.readCheckpoint(ctx, recs[i].Version, rev); err == nil && c.Hash() == recs[i].Hash {
				cur = c
			}
		}
		start = i
	}
	if cur == nil {
		return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: no checkpoint at or before it is kept", n, w.layout.Prefix())
	}
	for i := start + 1; i < len(recs); i++ {
		r := recs[i]
		if r.Version != recs[i-1].Version+1 {
			return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: release %d is missing", n, w.layout.Prefix(), recs[i-1].Version+1)
		}
		if r.Base != "" && r.Base != recs[i-1].Hash {
			if !r.OutsideValues {
				return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: the changes made around the writer before release %d were not recorded", n, w.layout.Prefix(), r.Version)
			}
			applyChanges(cur, loadChanges(r.Outside))
		}
		applyChanges(cur, loadChanges(r.Changes))
	}
	if h := cur.Hash(); h != target.Hash {
		return nil, nil, 0, fmt.Errorf("config: release %d of %s cannot be rebuilt: its records give content %s, the release says %s", n, w.layout.Prefix(), h, target.Hash)
	}
	return cur, target, targetRev, nil
}

// checkpointIndex is what P/meta/checkpoints/<n> holds; the compressed
// content is in Parts keys P/meta/checkpoints/<n>/<i>.
type checkpointIndex struct {
	Hash  string `json:"hash"`
	Parts int    `json:"parts"`
	Keys  int    `json:"keys"`
}

// checkpoints lists the versions that have a complete checkpoint.
func (w *RawWriter) checkpoints(ctx context.Context, rev int64) (map[int64]bool, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := w.cli.Get(ctx, w.layout.Checkpoints(), opts...)
	if err != nil {
		return nil, w.wrap("list checkpoints", err)
	}
	out := make(map[int64]bool)
	for _, kv := range resp.Kvs {
		if n, ok := w.layout.ParseCheckpoint(string(kv.Key)); ok { // not a part
			out[n] = true
		}
	}
	return out, nil
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
	if c.Hash() != idx.Hash {
		return nil, fmt.Errorf("config: checkpoint %s does not match its hash", key)
	}
	return c, nil
}

// checkpointOps returns the puts that store the content of release n,
// compressed, in parts followed by the index key that makes it visible.
func (w *RawWriter) checkpointOps(n int64, c Content) ([]clientv3.Op, error) {
	stored := make(map[string]text, len(c))
	for k, v := range c {
		stored[k] = text(v)
	}
	raw, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("config: encode checkpoint: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
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
	idx, _ := json.Marshal(checkpointIndex{Hash: c.Hash(), Parts: len(ops), Keys: len(c)})
	return append(ops, clientv3.OpPut(key, string(idx))), nil
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

// pruneCheckpoints deletes the checkpoints that no retained release needs:
// it keeps the newest checkpoint at or before the oldest retained release,
// and every newer one.
func (w *RawWriter) pruneCheckpoints(ctx context.Context, newest int64) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	have, err := w.checkpoints(ctx, 0)
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
