package middleware

import "errors"

// PermanentError marks a failure that retrying cannot fix, such as a payload
// that breaks its event type's rules. Find it with errors.As or IsPermanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a permanent failure: the retry middleware gives up
// on it at once and the dead-letter middleware records it as "permanent".
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
