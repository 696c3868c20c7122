package schema_test

import (
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	two := []schema.FieldError{
		{Field: "source", Message: "is required"},
		{Field: "payload.items[0].quantity", Message: "must be an integer ≥ 1"},
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"validation", &schema.ValidationError{Errors: two}, "source: is required; payload.items[0].quantity: must be an integer ≥ 1"},
		{"validation without fields", &schema.ValidationError{}, "invalid event"},
		{"syntax detail", &schema.SyntaxError{Detail: "invalid JSON at offset 17: unexpected end of JSON input"}, "invalid JSON at offset 17: unexpected end of JSON input"},
		{"syntax fields", &schema.SyntaxError{Errors: two[:1]}, "source: is required"},
		{"syntax detail and fields", &schema.SyntaxError{Detail: "bad", Errors: two[:1]}, "bad; source: is required"},
		{"syntax empty", &schema.SyntaxError{}, "malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
