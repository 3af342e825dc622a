package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Content is the data of one prefix as the writer sees it: each data key,
// relative to P/data/ ("db/port", "labels.yaml"), mapped to its value text.
type Content map[string]string

// Hash returns the content hash recorded in releases: "sha256:" and the hex
// digest of the sorted key/value pairs.
func (c Content) Hash() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(c[k]))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

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
	// Old and New are the value texts before and after; set in the
	// result of a write or a dry run, empty in History. Values of secret
	// fields are Mask.
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
	// DryRun is true for the result of a write with DryRun: nothing was
	// written, Version is the version the write would have made.
	DryRun bool
	// Unrecorded is true for an entry History adds when the data under the
	// prefix differs from the newest release: someone wrote around the
	// writer (a plain etcdctl put or delete). Changes lists the keys that
	// differ; Revision is the newest revision among them.
	Unrecorded bool
}

// record is a release as stored at P/meta/releases/<n>: everything needed
// to list it and to restore its content after etcd compacted its history.
type record struct {
	Version    int64       `json:"version"`
	Author     string      `json:"author,omitempty"`
	Message    string      `json:"message,omitempty"`
	Time       time.Time   `json:"time"`
	Hash       string      `json:"hash"`
	RollbackOf int64       `json:"rollback_of,omitempty"`
	Changes    []KeyChange `json:"changes"`
	Content    Content     `json:"content"`
}

func (r *record) release(revision int64) *Release {
	return &Release{Version: r.Version, Revision: revision, Author: r.Author, Message: r.Message,
		Time: r.Time, Hash: r.Hash, RollbackOf: r.RollbackOf, Changes: r.Changes}
}

func decodeRecord(key string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("release record %s: %w", key, err)
	}
	if r.Content == nil {
		r.Content = Content{}
	}
	return &r, nil
}

// releaseKeyWidth zero-pads release numbers so that keys sort by number.
const releaseKeyWidth = 20

func releaseKey(prefix string, n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < releaseKeyWidth {
		s = "0" + s
	}
	return prefix + s
}
