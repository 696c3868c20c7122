package schema_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestDecodeBatch(t *testing.T) {
	t.Parallel()
	body := `{"events": [ {"event_type":"user.login"} , 42, "x", {} ], "note": "ignored"}`
	items, err := schema.DecodeBatch([]byte(body))
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	want := []string{`{"event_type":"user.login"}`, `42`, `"x"`, `{}`}
	got := make([]string, len(items))
	for i, item := range items {
		got[i] = string(item)
	}
	if !slices.Equal(got, want) {
		t.Errorf("items = %q, want %q", got, want)
	}
}

func TestDecodeBatch_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantSyntax bool
		wantErrors []schema.FieldError
	}{
		{name: "malformed JSON", body: `{"events": [`, wantSyntax: true},
		{name: "empty body", body: ``, wantSyntax: true},
		{name: "an array, not an object", body: `[{}]`, wantSyntax: true},
		{
			name: "events missing", body: `{"event_type":"user.login"}`, wantSyntax: true,
			wantErrors: []schema.FieldError{{Field: "events", Message: `is required: a batch is {"events": [ ... ]}`}},
		},
		{
			name: "events null", body: `{"events":null}`, wantSyntax: true,
			wantErrors: []schema.FieldError{{Field: "events", Message: "must be an array, got null"}},
		},
		{
			name: "events an object", body: `{"events":{"0":{}}}`, wantSyntax: true,
			wantErrors: []schema.FieldError{{Field: "events", Message: "must be an array, got object"}},
		},
		{
			name:       "events empty",
			body:       `{"events":[]}`,
			wantErrors: []schema.FieldError{{Field: "events", Message: "must contain at least one event"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items, err := schema.DecodeBatch([]byte(tt.body))
			if items != nil {
				t.Errorf("items = %q, want none", items)
			}
			var fields []schema.FieldError
			if se, ok := errors.AsType[*schema.SyntaxError](err); ok && tt.wantSyntax {
				fields = se.Errors
			} else if ve, ok := errors.AsType[*schema.ValidationError](err); ok && !tt.wantSyntax {
				fields = ve.Errors
			} else {
				t.Fatalf("DecodeBatch error = %v (%T), want syntax error: %v", err, err, tt.wantSyntax)
			}
			if tt.wantErrors != nil && !slices.Equal(fields, tt.wantErrors) {
				t.Errorf("Errors = %v, want %v", fields, tt.wantErrors)
			}
		})
	}
}
