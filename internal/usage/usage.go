// Package usage marks the errors that are a caller's bad setting rather than a failure: for the
// command line, a usage error (reel exits with status 2). Packages return them from the
// configurations the CLI fills from flags (bench, evaluate).
package usage

import (
	"errors"
	"fmt"
)

// Error is a bad setting; its message is Err's.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf is an Error of fmt.Errorf(format, a...).
func Errorf(format string, a ...any) error { return &Error{fmt.Errorf(format, a...)} }

// Is says whether err or an error it wraps is an Error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
