package config

import (
	"time"

	"github.com/strataconf/strata/config/secret"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// The options of the two writers are typed apart, so that an option given
// to the writer it does not configure fails to compile instead of being
// ignored:
//
//   - a CommitOption (WithRetention, WithMaxAttempts, WithWriteTimeout)
//     configures how either writer commits, and is both a WriterOption and
//     a RawWriterOption;
//   - WithWriterDefaults is a WriterOption only;
//   - WithSchema, WithoutSchemaCheck and WithSecretPaths are
//     RawWriterOptions only: a Writer[T] checks T and publishes T's schema.

// WriterOption configures a Writer[T]: WithWriterDefaults, or a
// CommitOption.
type WriterOption interface {
	applyWriter(*writerOptions)
}

// RawWriterOption configures a RawWriter: WithSchema, WithoutSchemaCheck,
// WithSecretPaths, or a CommitOption.
type RawWriterOption interface {
	applyRaw(*rawWriterOptions)
}

// CommitOption configures how a writer commits (WithRetention,
// WithMaxAttempts, WithWriteTimeout). It is both a WriterOption and a
// RawWriterOption.
type CommitOption func(*commitOptions)

func (o CommitOption) applyWriter(w *writerOptions) { o(&w.commit) }
func (o CommitOption) applyRaw(r *rawWriterOptions) { o(&r.commitOptions) }

// writerOption is a WriterOption that only a Writer[T] takes.
type writerOption func(*writerOptions)

func (o writerOption) applyWriter(w *writerOptions) { o(w) }

// rawWriterOption is a RawWriterOption that only a RawWriter takes.
type rawWriterOption func(*rawWriterOptions)

func (o rawWriterOption) applyRaw(r *rawWriterOptions) { o(r) }

// commitOptions are the options both writers share.
type commitOptions struct {
	retention   int
	maxAttempts int
	timeout     time.Duration
	keyring     secret.Keyring // seals secret values; nil: they are stored as given
}

// writerOptions are the options of a Writer[T]; its RawWriter gets commit.
type writerOptions struct {
	commit   commitOptions
	defaults any // T or *T under the etcd content when validating
}

// rawWriterOptions are the options of a RawWriter.
type rawWriterOptions struct {
	commitOptions
	schema   []byte   // JSON Schema to check against instead of the published one
	noSchema bool     // check nothing
	secrets  []string // extra secret paths to mask
}

// Defaults of the writer options.
const (
	DefaultRetention   = 100
	DefaultMaxAttempts = 64
)

// defaultCommitOptions are the commit options before any is given.
func defaultCommitOptions() commitOptions {
	return commitOptions{retention: DefaultRetention, maxAttempts: DefaultMaxAttempts, timeout: etcdprov.DefaultRequestTimeout}
}

// WithRetention keeps the newest n release records and deletes older ones
// in the same transaction as each write (default DefaultRetention).
func WithRetention(n int) CommitOption {
	return func(o *commitOptions) {
		if n > 0 {
			o.retention = n
		}
	}
}

// WithMaxAttempts bounds how often a write is re-run after losing a race
// to a concurrent write (default DefaultMaxAttempts). Writes with
// ExpectVersion are never re-run.
func WithMaxAttempts(n int) CommitOption {
	return func(o *commitOptions) {
		if n > 0 {
			o.maxAttempts = n
		}
	}
}

// WithWriteTimeout bounds each etcd request of a write when the caller's
// context has no earlier deadline (default 5s).
func WithWriteTimeout(d time.Duration) CommitOption {
	return func(o *commitOptions) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithWriterDefaults gives a Writer[T] the values (a T or *T) that lie
// under the etcd layer in the applications, typically the same value they
// pass to WithDefaults, so that validating the whole configuration does not
// fail for fields etcd does not hold. They are never written.
func WithWriterDefaults(v any) WriterOption {
	return writerOption(func(o *writerOptions) { o.defaults = v })
}

// WithSchema makes a RawWriter check content against this JSON Schema
// instead of the one published at P/meta/schema.
func WithSchema(doc []byte) RawWriterOption {
	return rawWriterOption(func(o *rawWriterOptions) { o.schema = doc })
}

// WithoutSchemaCheck makes a RawWriter write content without checking it
// against any schema. Use with care: readers reject invalid content, so an
// unchecked write can leave every application on its previous snapshot.
func WithoutSchemaCheck() RawWriterOption {
	return rawWriterOption(func(o *rawWriterOptions) { o.noSchema = true })
}

// WithSecretPaths adds config paths whose values a RawWriter masks in the
// changes it returns, beyond those the schema marks secret.
func WithSecretPaths(paths ...string) RawWriterOption {
	return rawWriterOption(func(o *rawWriterOptions) { o.secrets = append(o.secrets, paths...) })
}

// WriteOption configures one write.
type WriteOption func(*writeOptions)

type writeOptions struct {
	author, message string
	expect          int64
	expectSet       bool
	expectRev       int64 // 0: not set
	dryRun          bool
	id              string
	schema          []byte // PublishSchema: the schema this write publishes
	force           bool   // abort an active rollout in the same transaction
	reseal          bool   // seal every secret value again under the current key (Rotate)
	completes       string // the id of the rollout this write promotes
}

// Author records who made the write.
func Author(name string) WriteOption { return func(o *writeOptions) { o.author = name } }

// Message records why the write was made.
func Message(msg string) WriteOption { return func(o *writeOptions) { o.message = msg } }

// ExpectVersion makes the write fail with ErrConflict unless the newest
// release is version n (0: no release yet). Such a write is never re-run.
func ExpectVersion(n int64) WriteOption {
	return func(o *writeOptions) { o.expect, o.expectSet = n, true }
}

// ExpectRevision makes the write fail with ErrConflict if any data key was
// created or modified after etcd revision rev: the revision a caller read
// the configuration at (for example the one `strata get` prints). Unlike
// ExpectVersion it also catches writes made around the writer. Such a write
// is never re-run.
func ExpectRevision(rev int64) WriteOption {
	return func(o *writeOptions) { o.expectRev = rev }
}

// DryRun validates the write and returns the changes it would make, in a
// Release with DryRun set, without writing anything.
func DryRun() WriteOption { return func(o *writeOptions) { o.dryRun = true } }

// WithWriterKeyring makes the writer seal the value of every secret path it
// writes (package secret: AES-256-GCM under the ring's current key, bound to
// the prefix and the path), in data keys, release records and checkpoints,
// and open the sealed values it reads, so that mutations, validation and
// Get see plain values. Secret paths are Writer[T]'s `secret` tags, or the
// published schema's x-secret/writeOnly (and WithSecretPaths) for a
// RawWriter. Only leaf keys are sealed; a value inside a document key is
// stored as given.
func WithWriterKeyring(ring secret.Keyring) CommitOption {
	return func(o *commitOptions) { o.keyring = ring }
}

// Force lets a write proceed while a rollout holds the prefix: the rollout
// is recorded as aborted, naming the write, in the same transaction.
// Without it such a write fails with a *RolloutActiveError.
func Force() WriteOption { return func(o *writeOptions) { o.force = true } }

// CompletesRollout makes the write the promotion of rollout id: it is
// allowed while that rollout holds the prefix, and records the rollout as
// promoted by this release in the same transaction. Package config/rollout
// uses it; a write that is not the rollout's candidate must not.
func CompletesRollout(id string) WriteOption { return func(o *writeOptions) { o.completes = id } }

// WriteID names one write so that sending it again is safe: the release
// record its commit writes holds the id, and a write with WriteID first
// looks for it among the retained records (the newest WithRetention): if
// one holds it, the write returns that release instead of writing again.
// Every write has an id (a random one by default), which is how a commit
// whose answer was lost is resolved inside the writer: it reads the record
// that commit would have written. Give your own id to retry a write after
// ErrUnknownOutcome. id must not contain '/'.
func WriteID(id string) WriteOption { return func(o *writeOptions) { o.id = id } }
