package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/eventflow/eventflow/handlers/problem"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// Errors the HTTP front raises itself; problemFor maps them.
var (
	errUnsupportedMediaType = errors.New("the body must be JSON, sent as Content-Type: application/json")
	errConflict             = errors.New("an earlier event with this event_id has other content; send a new event_id")
)

// tooLargeError is a body or batch over its limit.
type tooLargeError struct{ detail string }

func (e *tooLargeError) Error() string { return e.detail }

// bodyReadError is a request body that could not be read to its end: the
// client sent it slower than the server's read timeout allows (408), or the
// body broke off (400).
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// unavailableError wraps a store or transport failure: the client should
// retry the same request later.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// DefaultRetryAfter is what a 503 asks clients to wait.
const DefaultRetryAfter = 2 * time.Second

// problemFor maps an error to its problem body. It is the one place where
// errors become HTTP statuses.
func problemFor(err error) *problem.Problem {
	if p := deadLetterProblem(err); p != nil {
		return p
	}
	var (
		syntax     *schema.SyntaxError
		validation *schema.ValidationError
		maxBytes   *http.MaxBytesError
		tooLarge   *tooLargeError
		bodyRead   *bodyReadError
		unavail    *unavailableError
	)
	switch {
	case errors.As(err, &syntax):
		p := problem.New(http.StatusBadRequest, syntax.Error())
		p.Errors = fieldErrors(syntax.Errors)
		return p
	case errors.As(err, &validation):
		p := problem.New(http.StatusUnprocessableEntity, "the event is not valid; see errors")
		p.Errors = fieldErrors(validation.Errors)
		return p
	case errors.As(err, &maxBytes):
		return problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", maxBytes.Limit))
	case errors.As(err, &tooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, tooLarge.detail)
	case errors.As(err, &bodyRead) && errors.Is(err, os.ErrDeadlineExceeded):
		return problem.New(http.StatusRequestTimeout, "the body did not arrive within the server's read timeout; nothing was stored")
	case errors.As(err, &bodyRead):
		return problem.New(http.StatusBadRequest, "the body broke off before its end; nothing was stored")
	case errors.Is(err, errUnsupportedMediaType):
		return problem.New(http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, errConflict):
		return problem.New(http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return problem.New(http.StatusNotFound, "no event with this event_id")
	case errors.As(err, &unavail), errors.Is(err, ErrClosed), errors.Is(err, context.DeadlineExceeded):
		p := problem.New(http.StatusServiceUnavailable, "eventflow cannot store or publish events right now; nothing was acknowledged, retry the same request later")
		p.RetryAfter = DefaultRetryAfter
		return p
	}
	return problem.New(http.StatusInternalServerError, "internal error")
}

func fieldErrors(errs []schema.FieldError) []problem.FieldError {
	out := make([]problem.FieldError, len(errs))
	for i, e := range errs {
		out[i] = problem.FieldError{Field: e.Field, Message: e.Message}
	}
	return out
}
