package schema_test

import (
	"errors"
	"fmt"
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
		{"10,000-digit integer", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","n":` + strings.Repeat("9", 10000) + `}}`, false, "payload"},
		{"repeated payload key", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","url":"https://f.com"}}`, false, "payload.url"},
		{"repeated key deep in the payload, once escaped", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","x":[{},{"a":1,"\u0061":2}]}}`, false, "payload.x[1].a"},
		{"repeated key among many", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com",` + manyKeys(40) + `,"k33":1}}`, false, "payload.k33"},
		{"repeated metadata key", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com"},"metadata":{"k":"a","k":"b"}}`, false, "metadata.k"},
		{"timestamp before year 0 in UTC", `{"event_type":"page.view","source":"s","timestamp":"0000-01-01T00:00:00+01:00","payload":{"url":"https://e.com"}}`, false, "timestamp"},
		{"timestamp after year 9999 in UTC", `{"event_type":"page.view","source":"s","timestamp":"9999-12-31T23:59:59-01:00","payload":{"url":"https://e.com"}}`, false, "timestamp"},
		{"NUL in the source", `{"event_type":"page.view","source":"a\u0000b","payload":{"url":"https://e.com"}}`, false, "source"},
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
	// A key may repeat in other objects, and a number be long up to 1e1001.
	ok := `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","a":{"url":1},"b":[{"a":1},{"a":2}],"n":` +
		strings.Repeat("9", 1001) + `}}`
	if _, err := schema.DecodeEvent([]byte(ok), schema.DecodeOptions{}); err != nil {
		t.Errorf("keys repeated across objects: %v", err)
	}
}

// manyKeys returns n members "k0":0,"k1":1,... for a JSON object.
func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return strings.Join(keys, ",")
}
