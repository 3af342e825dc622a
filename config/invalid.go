package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/schema"
)

// Problem is one reason a candidate configuration was rejected.
type Problem struct {
	// Path is the config path of the offending field ("db.port").
	Path string
	// Origin is where the offending value came from; zero when the value
	// is missing (a required field) or its origin is unknown.
	Origin Origin
	// Reason says what is wrong: `cannot parse "abc" as int`,
	// "failed max=65535 (value 70000)". Values of secret fields are masked,
	// and so are values that hold one (a list of structs with a secret
	// field).
	Reason string
}

// String renders the problem on one line:
// "port (etcd key /app/data/port): cannot parse \"abc\" as int".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Origin.Layer != "" {
		b.WriteString(" (")
		b.WriteString(p.Origin.String())
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(p.Reason)
	return b.String()
}

// InvalidError is a candidate configuration that could not be bound to the
// type or failed validation. errors.Is(err, ErrInvalid) holds for it, and
// errors.As finds the underlying *codec.BindError or
// *schema.ValidationError.
type InvalidError struct {
	// Problems lists every failing field, sorted by path.
	Problems []Problem
	// Revision is the etcd revision of the candidate; 0 without etcd.
	Revision int64
	err      error
}

// Error lists every problem on one line.
func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the *codec.BindError or *schema.ValidationError, with the
// values the problems hide hidden in it too.
func (e *InvalidError) Unwrap() error { return e.err }

// invalidError turns a bind or validation error into an *InvalidError whose
// problems name the origin of each value and never show a secret: not the
// value of a secret path, nor a value that holds one beneath it (a list
// of structs with a secret field, a struct given as one leaf of JSON
// text), whose whole text a failure would otherwise quote. The error it
// wraps is a copy with those values hidden too.
func invalidError(err error, origins map[string]Origin, rev int64, secrets []string) error {
	ie := &InvalidError{Revision: rev, err: err}
	var be *codec.BindError
	var ve *schema.ValidationError
	switch {
	case errors.As(err, &be):
		shown := &codec.BindError{Fields: make([]*codec.FieldError, len(be.Fields))}
		for i, fe := range be.Fields {
			reason := fe.Err.Error()
			switch {
			case schema.IsSecret(secrets, fe.Path):
				reason = "cannot be bound (value hidden: the field is secret)"
			case schema.HoldsSecret(secrets, fe.Path):
				reason = "cannot be bound (value hidden: it holds a secret field)"
			}
			if reason != fe.Err.Error() {
				fe = &codec.FieldError{Path: fe.Path, Err: errors.New(reason)}
			}
			shown.Fields[i] = fe
			o, _ := originOf(origins, dotted(fe.Path))
			ie.Problems = append(ie.Problems, Problem{Path: fe.Path, Origin: o, Reason: reason})
		}
		ie.err = shown
	case errors.As(err, &ve):
		shown := &schema.ValidationError{Fields: make([]schema.FieldError, len(ve.Fields))}
		for i, fe := range ve.Fields {
			if !fe.Secret && schema.HoldsSecret(secrets, fe.Path) {
				fe.Value, fe.Secret = Mask, true
			}
			shown.Fields[i] = fe
			reason := "failed " + fe.Rule
			if fe.Param != "" {
				reason += "=" + fe.Param
			}
			o, found := originOf(origins, dotted(fe.Path))
			if found && fe.Rule != "required" {
				value := fe.Value
				if fe.Secret {
					value = Mask
				}
				reason += " (value " + value + ")"
			}
			ie.Problems = append(ie.Problems, Problem{Path: fe.Path, Origin: o, Reason: reason})
		}
		ie.err = shown
	default:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sort.SliceStable(ie.Problems, func(i, j int) bool { return ie.Problems[i].Path < ie.Problems[j].Path })
	return ie
}

// dotted turns a validation path ("limits[acme].rate", "servers[0]") into
// the config path its origin is kept under ("limits.acme.rate",
// "servers.0").
func dotted(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	return strings.NewReplacer("[", ".", "]", "").Replace(path)
}
