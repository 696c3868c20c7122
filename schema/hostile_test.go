package schema_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestDecodeEventHostileInput(t *testing.T) {
	t.Parallel()
	nested := func(depth int) string {
		return `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","x":` +
			strings.Repeat(`[`, depth) + strings.Repeat(`]`, depth) + `}}`
	}
	tests := []struct {
		name   string
		body   string
		syntax bool   // *SyntaxError (400); else *ValidationError (422)
		field  string // the field named, if any
	}{
		{"repeated envelope field", `{"event_type":"page.view","event_type":"user.login","source":"s","payload":{}}`, true, "event_type"},
		{"nesting beyond the limit", nested(schema.MaxNesting), false, "payload"},
		{"trailing value", `{"event_type":"page.view","source":"s","payload":{}} {}`, true, ""},
		{"huge number", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","n":1e999999}}`, false, "payload"},
	}
	for _, tc := range tests {
		_, err := schema.DecodeEvent([]byte(tc.body), schema.DecodeOptions{})
		var se *schema.SyntaxError
		var ve *schema.ValidationError
		switch {
		case tc.syntax && !errors.As(err, &se):
			t.Errorf("%s: %v, want a SyntaxError", tc.name, err)
		case !tc.syntax && !errors.As(err, &ve):
			t.Errorf("%s: %v, want a ValidationError", tc.name, err)
		case tc.field != "" && !strings.Contains(err.Error(), tc.field):
			t.Errorf("%s: %v does not name %s", tc.name, err, tc.field)
		}
	}
	// Nesting up to the limit is fine: the payload object itself is one level.
	if _, err := schema.DecodeEvent([]byte(nested(schema.MaxNesting-2)), schema.DecodeOptions{}); err != nil {
		t.Errorf("nesting within the limit: %v", err)
	}
}
