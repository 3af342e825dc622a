package config

import (
	"errors"
	"fmt"
)

// Sentinel errors, checkable with errors.Is.
var (
	// ErrInvalid marks a candidate configuration that cannot be bound to
	// the type (a value of the wrong type) or fails its validate tags (or,
	// for writes, the published JSON Schema). Such an error is an
	// *InvalidError (errors.As finds it) whose Problems name every failing
	// path and where its value came from; beneath it errors.As also finds
	// the *codec.BindError or *schema.ValidationError.
	ErrInvalid = errors.New("invalid configuration")
	// ErrUnknownKeys marks keys that match no field of the type, when
	// WithUnknownKeys(UnknownFail) is in force.
	ErrUnknownKeys = errors.New("unknown configuration keys")
	// ErrSource marks a layer that could not be read: a missing or
	// malformed file, an unreachable etcd, an etcd key outside the layout.
	ErrSource = errors.New("configuration source failed")
	// ErrConflict marks a write that lost a race: the version or the data
	// changed since it was read. errors.As finds a *ConflictError with the
	// current version.
	ErrConflict = errors.New("version conflict")
	// ErrNotFound marks a release or key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnknownOutcome marks a write whose commit was sent to etcd but
	// whose answer was lost (a timeout or a broken connection), and that the
	// writer could not resolve before the context ended: the write may or
	// may not have been committed. It was committed at most once. To find
	// out, call the same write again with the same WriteID (while its
	// release, if any, is among the retained ones): it either commits once
	// or returns the earlier commit's release. Without a WriteID, read
	// History and look for the release.
	ErrUnknownOutcome = errors.New("outcome of the commit is unknown")
	// ErrPanic is wrapped by the error reported when a subscriber panics.
	ErrPanic = errors.New("subscriber panicked")
	// ErrRolloutActive marks a write refused because a rollout holds the
	// prefix (see RolloutActiveError).
	ErrRolloutActive = errors.New("a rollout is in progress")
)

// ConflictError is a write that lost a race or expected another version.
type ConflictError struct {
	// Expected is the version the write was based on or told to expect.
	Expected int64
	// Current is the newest version when the write failed.
	Current int64
	// Reason says what changed when the versions alone do not show it
	// (a write around the writer); empty otherwise.
	Reason string
}

// Error says which version was expected and which is current.
func (e *ConflictError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%v: %s (version %d)", ErrConflict, e.Reason, e.Current)
	}
	return fmt.Sprintf("%v: expected version %d, current version is %d", ErrConflict, e.Expected, e.Current)
}

// Is reports whether target is ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RolloutActiveError is the error of a write refused while a rollout runs
// or is paused on the prefix: promote or abort it first, or write with
// Force, which aborts it in the same transaction.
type RolloutActiveError struct {
	ID    string // the rollout's id
	State string // running or paused
}

// Error names the rollout.
func (e *RolloutActiveError) Error() string {
	return fmt.Sprintf("%v: rollout %s is %s on this prefix; promote or abort it first (rollout.Promote, rollout.Abort; strata rollout promote|abort), or write with config.Force() (strata --force), which aborts it", ErrRolloutActive, e.ID, e.State)
}

// Is reports whether target is ErrRolloutActive.
func (e *RolloutActiveError) Is(target error) bool { return target == ErrRolloutActive }
