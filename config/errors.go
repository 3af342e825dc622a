package config

import "errors"

// Sentinel errors, checkable with errors.Is.
var (
	// ErrInvalid marks a candidate configuration that cannot be bound to
	// the type (a value of the wrong type) or fails its validate tags. The
	// wrapped error is a *codec.BindError or a *schema.ValidationError
	// (errors.As finds either) naming every failing path.
	ErrInvalid = errors.New("invalid configuration")
	// ErrUnknownKeys marks keys that match no field of the type, when
	// WithUnknownKeys(UnknownFail) is in force.
	ErrUnknownKeys = errors.New("unknown configuration keys")
	// ErrSource marks a layer that could not be read: a missing or
	// malformed file, an unreachable etcd, an etcd key outside the layout.
	ErrSource = errors.New("configuration source failed")
	// ErrPanic is wrapped by the error reported when a subscriber panics.
	ErrPanic = errors.New("subscriber panicked")
)
