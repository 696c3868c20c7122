package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		fields     int
		retryAfter bool
	}{
		{"syntax", &schema.SyntaxError{Detail: "invalid JSON"}, http.StatusBadRequest, 0, false},
		{"syntax with fields", &schema.SyntaxError{Errors: []schema.FieldError{{Field: "source", Message: "must be a string"}}}, 400, 1, false},
		{"validation", &schema.ValidationError{Errors: []schema.FieldError{{Field: "a", Message: "x"}, {Field: "b", Message: "y"}}}, 422, 2, false},
		{"max bytes", &http.MaxBytesError{Limit: 10}, 413, 0, false},
		{"batch too large", &tooLargeError{"too many"}, 413, 0, false},
		{"media type", errUnsupportedMediaType, 415, 0, false},
		{"conflict", errConflict, 409, 0, false},
		{"not found", fmt.Errorf("status: %w", store.ErrNotFound), 404, 0, false},
		{"unavailable", &unavailableError{errors.New("dial tcp: refused")}, 503, 0, true},
		{"closing", ErrClosed, 503, 0, true},
		{"timeout", fmt.Errorf("insert: %w", context.DeadlineExceeded), 503, 0, true},
		{"unknown", errors.New("surprise"), 500, 0, false},
	}
	for _, tc := range tests {
		p := problemFor(tc.err)
		if p.Status != tc.status || len(p.Errors) != tc.fields || (p.RetryAfter > 0) != tc.retryAfter {
			t.Errorf("%s: %+v, want status %d, %d field errors, Retry-After %v", tc.name, p, tc.status, tc.fields, tc.retryAfter)
		}
		if p.Type == "" || p.Title == "" {
			t.Errorf("%s: problem without type or title: %+v", tc.name, p)
		}
	}
}
