package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/strataconf/strata/config"
)

// Exit codes.
const (
	exitOK       = 0 // success
	exitError    = 1 // any other error
	exitUsage    = 2 // unknown command or flag, missing or extra arguments
	exitConflict = 3 // version conflict: someone else wrote first
	exitInvalid  = 4 // the configuration failed validation
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error (etcd unreachable, permission denied, not found, ...)
  2  usage error (unknown command or flag, missing or extra arguments, a bad
     PATH or flag value, conflicting flags)
  3  version conflict: the config changed since it was read (--expect-version, edit)
  4  validation failed: the config does not satisfy the schema`

// usageError is a command line the program cannot run.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode maps an error to the program's exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, config.ErrConflict):
		return exitConflict
	case errors.Is(err, config.ErrInvalid):
		return exitInvalid
	}
	return exitError
}

// printError writes err as one line: "strata: ...". Line breaks become
// "; " and other control characters are escaped (\x1b), so that nothing
// in an error (a key, a value) can act on the terminal.
func printError(w io.Writer, err error) {
	msg := strings.TrimSpace(err.Error())
	msg = strings.Join(strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	fmt.Fprintf(w, "strata: %s\n", escapeControl(msg))
}

// escapeControl writes each control character of s as \xNN (\u00NN
// above 0x7f).
func escapeControl(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// savedError is an error after which the user's work was kept in a file.
type savedError struct {
	err  error
	path string
}

func (e *savedError) Error() string {
	return fmt.Sprintf("%v (your edit is saved in %s)", e.err, e.path)
}
func (e *savedError) Unwrap() error { return e.err }
