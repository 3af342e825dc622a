package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// StartupPolicy says what Load does when etcd cannot be read.
type StartupPolicy struct {
	kind startupKind
	wait time.Duration
}

type startupKind int

const (
	startFailFast startupKind = iota
	startWait
	startSnapshot
)

// FailFast makes Load fail at once when etcd cannot be read. The default.
func FailFast() StartupPolicy { return StartupPolicy{kind: startFailFast} }

// WaitFor makes Load retry reading etcd, with backoff, for up to d (or
// until its context is done) before failing.
func WaitFor(d time.Duration) StartupPolicy { return StartupPolicy{kind: startWait, wait: d} }

// FromSnapshot makes Load start from the snapshot file (WithSnapshotFile)
// and the lower layers when etcd cannot be read. The Config then reports
// degraded health and keeps trying etcd in the background; when it answers,
// one change brings the process up to date and health turns ok. A snapshot
// that is missing, truncated or fails its hash is never used: Load fails.
func FromSnapshot() StartupPolicy { return StartupPolicy{kind: startSnapshot} }

// WithStartup sets the start-up policy for an unreachable etcd.
func WithStartup(p StartupPolicy) Option {
	return func(o *options) { o.startup = p }
}

// WithSnapshotFile keeps the last applied etcd content, with its revision,
// release version and a hash, in the file at path: written atomically
// (temporary file and rename) after Load and after every applied change.
// With FromSnapshot it is what Load falls back to.
func WithSnapshotFile(path string) Option {
	return func(o *options) { o.snapshotFile = path }
}

// snapshotFile is the on-disk form of the last applied etcd content.
type snapshotFile struct {
	Format   string    `json:"format"`
	Prefix   string    `json:"prefix"`
	Revision int64     `json:"revision"`
	Version  int64     `json:"version"`
	Written  time.Time `json:"written"`
	Content  Content   `json:"content"`
	Hash     string    `json:"hash"`
}

const snapshotFormat = "strata-snapshot/1"

func (s *snapshotFile) hash() string {
	h := sha256.New()
	for _, part := range []string{s.Format, s.Prefix, strconv.FormatInt(s.Revision, 10), strconv.FormatInt(s.Version, 10), flatHash(s.Content)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// writeSnapshotFile stores d atomically at path.
func writeSnapshotFile(path string, l etcdprov.Layout, d *etcdprov.Data, version int64) error {
	s := snapshotFile{Format: snapshotFormat, Prefix: l.Prefix(), Revision: d.Revision, Version: version,
		Written: time.Now().UTC(), Content: make(Content, len(d.KVs))}
	for k, v := range d.KVs {
		rel, _ := l.RelKey(k)
		s.Content[rel] = string(v)
	}
	s.Hash = s.hash()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("config: snapshot file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("config: snapshot file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("config: snapshot file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: snapshot file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config: snapshot file: %w", err)
	}
	return nil
}

// readSnapshotFile reads and verifies a snapshot of the prefix of l.
func readSnapshotFile(path string, l etcdprov.Layout) (*etcdprov.Data, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot file: %w", err)
	}
	var s snapshotFile
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("snapshot file %s is corrupt or truncated: %w", path, err)
	}
	switch {
	case s.Format != snapshotFormat:
		return nil, fmt.Errorf("snapshot file %s: unknown format %q", path, s.Format)
	case s.Prefix != l.Prefix():
		return nil, fmt.Errorf("snapshot file %s holds prefix %s, not %s", path, s.Prefix, l.Prefix())
	case s.Hash != s.hash():
		return nil, fmt.Errorf("snapshot file %s is corrupt: hash mismatch", path)
	}
	d := &etcdprov.Data{Revision: s.Revision, Version: s.Version, KVs: make(map[string][]byte, len(s.Content))}
	for k, v := range s.Content {
		d.KVs[l.DataKey(k)] = []byte(v)
	}
	return d, nil
}
