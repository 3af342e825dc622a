package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"
)

// Content is the data of one prefix as the writer sees it: each data key,
// relative to P/data/ ("db/port", "labels.yaml"), mapped to its value text.
type Content map[string]string

// ChangeKind says what a write did to one key.
type ChangeKind string

// The kinds of key change.
const (
	Added   ChangeKind = "added"
	Changed ChangeKind = "changed"
	Deleted ChangeKind = "deleted"
)

// KeyChange is what a write does to one data key.
type KeyChange struct {
	// Key is relative to P/data/ ("db/port").
	Key  string     `json:"key"`
	Kind ChangeKind `json:"kind"`
	// Old and New are the value texts before and after, in the result of
	// a write or a dry run and in History. Values at secret paths are
	// Mask.
	Old string `json:"-"`
	New string `json:"-"`
}

// diffContent lists the key changes from old to new, sorted by key.
func diffContent(old, new Content) []KeyChange {
	var out []KeyChange
	for k, v := range new {
		ov, ok := old[k]
		switch {
		case !ok:
			out = append(out, KeyChange{Key: k, Kind: Added, New: v})
		case ov != v:
			out = append(out, KeyChange{Key: k, Kind: Changed, Old: ov, New: v})
		}
	}
	for k, v := range old {
		if _, ok := new[k]; !ok {
			out = append(out, KeyChange{Key: k, Kind: Deleted, Old: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// applyChanges applies changes to c in place.
func applyChanges(c Content, changes []KeyChange) {
	for _, ch := range changes {
		if ch.Kind == Deleted {
			delete(c, ch.Key)
		} else {
			c[ch.Key] = ch.New
		}
	}
}

// Release is one committed write, as listed by History.
type Release struct {
	// Version numbers the releases of a prefix: 1, 2, 3 ... It is what
	// ExpectVersion compares.
	Version int64
	// Revision is the etcd revision of the commit.
	Revision int64
	Author   string
	Message  string
	Time     time.Time
	// Hash is the content hash (Content.Hash) after the write.
	Hash string
	// RollbackOf is the version this release restored, 0 if it is not a
	// rollback.
	RollbackOf int64
	// Changes lists the keys the write changed. Empty in the result of a
	// write means nothing needed changing and nothing was written.
	Changes []KeyChange
	// Outside lists the keys changed around the writer (a plain etcdctl put
	// or delete) between the previous release and this one, as this
	// release found them. Old and New are set when the record kept them.
	Outside []KeyChange
	// OutsideMore counts the keys changed around the writer beyond those
	// Outside lists: a release that found more than 256 lists the first
	// 256, by key, without values.
	OutsideMore int
	// DryRun is true for the result of a write with DryRun: nothing was
	// written, Version is the version the write would have made.
	DryRun bool
	// Schema is the hash ("sha256:...") of the JSON Schema this release
	// published at P/meta/schema (PublishSchema); empty when it published
	// none.
	Schema string
	// Err is set for a release whose record cannot be decoded: History
	// lists it (with Version and Revision) instead of failing, and its
	// content cannot be rebuilt.
	Err error
	// Unrecorded is true for an entry History adds when the data under the
	// prefix differs from the newest release: someone wrote around the
	// writer (a plain etcdctl put or delete). Changes lists the keys that
	// differ; Revision is the newest revision among them.
	Unrecorded bool
}

// record is a release as stored at P/meta/releases/<n>. It grows with the
// change, not with the configuration: the keys the write changed with their
// old and new values, the keys changed around the writer since the previous
// release, and the content hashes before and after. The content of any
// kept release is rebuilt from a checkpoint (P/meta/checkpoints/<n>) at or
// before it and the records since, replayed forward, or from one after it,
// undoing the records back to it with their old values (see chain in
// history.go).
type record struct {
	Version    int64          `json:"version"`
	Author     string         `json:"author,omitempty"`
	Message    string         `json:"message,omitempty"`
	Time       time.Time      `json:"time"`
	Hash       string         `json:"hash"`
	Base       string         `json:"base,omitempty"` // hash of the content the write read
	RollbackOf int64          `json:"rollback_of,omitempty"`
	WriteID    string         `json:"write_id,omitempty"`
	Schema     string         `json:"schema,omitempty"` // hash of the schema this release published
	Changes    []recordChange `json:"changes"`
	// Outside holds the changes made around the writer between the
	// previous release and Base. Their values are kept when the outside
	// change was small (OutsideValues).
	Outside       []recordChange `json:"outside,omitempty"`
	OutsideValues bool           `json:"outside_values,omitempty"`
	OutsideMore   int            `json:"outside_more,omitempty"` // keys changed around the writer beyond those listed

	// Anchor is the version of the newest checkpoint when this release was
	// written (its own version when it wrote one).
	Anchor int64 `json:"anchor,omitempty"`
	// Content is the whole content; only records of format 1 (before
	// per-key changes) have it.
	Content Content `json:"content,omitempty"`
}

// recordChange is a KeyChange as stored, values included.
type recordChange struct {
	Key  string     `json:"key"`
	Kind ChangeKind `json:"kind"`
	Old  *text      `json:"old,omitempty"`
	New  *text      `json:"new,omitempty"`
}

// text stores a value byte for byte: as a JSON string when it is valid
// UTF-8, else as {"base64": "..."}.
type text string

// MarshalJSON implements json.Marshaler.
func (t text) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(t)) {
		return json.Marshal(string(t))
	}
	return json.Marshal(map[string]string{"base64": base64.StdEncoding.EncodeToString([]byte(t))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = text(s)
		return nil
	}
	var m struct {
		Base64 string `json:"base64"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(m.Base64)
	if err != nil {
		return err
	}
	*t = text(raw)
	return nil
}

// storeChanges turns changes into their stored form; values are kept when
// withValues.
func storeChanges(changes []KeyChange, withValues bool) []recordChange {
	out := make([]recordChange, len(changes))
	for i, ch := range changes {
		out[i] = recordChange{Key: ch.Key, Kind: ch.Kind}
		if !withValues {
			continue
		}
		if ch.Kind != Added {
			v := text(ch.Old)
			out[i].Old = &v
		}
		if ch.Kind != Deleted {
			v := text(ch.New)
			out[i].New = &v
		}
	}
	return out
}

// loadChanges turns stored changes back into KeyChanges.
func loadChanges(rcs []recordChange) []KeyChange {
	if len(rcs) == 0 {
		return nil
	}
	out := make([]KeyChange, len(rcs))
	for i, rc := range rcs {
		out[i] = KeyChange{Key: rc.Key, Kind: rc.Kind}
		if rc.Old != nil {
			out[i].Old = string(*rc.Old)
		}
		if rc.New != nil {
			out[i].New = string(*rc.New)
		}
	}
	return out
}

func (r *record) release(revision int64) *Release {
	return &Release{Version: r.Version, Revision: revision, Author: r.Author, Message: r.Message,
		Time: r.Time, Hash: r.Hash, RollbackOf: r.RollbackOf, Schema: r.Schema, Changes: loadChanges(r.Changes), Outside: loadChanges(r.Outside),
		OutsideMore: r.OutsideMore}
}

// setOutside stores the changes made around the writer that a record
// found: with their values when there are at most maxOutside, else the
// first maxOutside keys and the count of the others (more of them, beyond
// outside, are already counted), so that a record never grows with the
// configuration.
func (r *record) setOutside(outside []KeyChange, more int) {
	r.OutsideValues = len(outside) <= maxOutside && more == 0
	r.OutsideMore = 0
	if len(outside) > maxOutside {
		more += len(outside) - maxOutside
		outside = outside[:maxOutside]
	}
	r.Outside, r.OutsideMore = storeChanges(outside, r.OutsideValues), more
}

func decodeRecord(key string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("config: release record %s: %w: %w", key, errCorruptRecord, err)
	}
	return &r, nil
}

// errCorruptRecord marks a release record that does not decode.
var errCorruptRecord = errors.New("does not decode")
