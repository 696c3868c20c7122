package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

// FuzzDecodeEvent checks that DecodeEvent never panics and returns exactly
// one of: a valid Event, a *SyntaxError, or a *ValidationError with at
// least one field.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		``,
		`null`,
		`[]`,
		`{}`,
		`{"event_type":"user.signup","source":"s","payload":{"user_id":"u","email":"a@b.c"}}`,
		`{"event_id":"0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10","event_type":"order.placed","source":"shop",` +
			`"timestamp":"2026-11-27T10:00:00Z","payload":{"order_id":"A","user_id":"u","currency":"EUR",` +
			`"items":[{"sku":"a","quantity":2,"unit_price":19.99}]},"metadata":{"region":"eu"}}`,
		`{"event_type":"page.view","source":"s","payload":{"url":"https://example.com/a%00"}}`,
		`{"event_type":"user.login","source":"s","payload":{"user_id":"u","ip":"::1"},"metadata":{"a":1}}`,
		`{"event_type":"x","source":"","payload":"\u0000","timestamp":"yesterday","event_id":"nope"}`,
		`{"event_type":"user.signup","source":"s","payload":{"a":"\\u0000\ud800"}}`,
		`{"event_type":"order.placed","source":"s","payload":{"items":[{"quantity":1e999999999,"unit_price":-0}]}}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		ev, err := schema.DecodeEvent(data, schema.DecodeOptions{Strict: strict, Now: testNow})
		se, isSyntax := errors.AsType[*schema.SyntaxError](err)
		ve, isValidation := errors.AsType[*schema.ValidationError](err)
		switch {
		case err == nil:
			if _, ok := schema.DefaultRegistry().Lookup(ev.Type); !ok {
				t.Errorf("accepted unknown event_type %q", ev.Type)
			}
			if ev.ID == uuid.Nil {
				t.Error("accepted an event without an ID")
			}
			if n := utf8.RuneCountInString(ev.Source); n < 1 || n > schema.MaxSourceLength {
				t.Errorf("accepted a source of %d characters", n)
			}
			dec := json.NewDecoder(bytes.NewReader(ev.Payload))
			dec.UseNumber()
			var payload map[string]any
			if dec.Decode(&payload) != nil || payload == nil {
				t.Errorf("accepted a payload that is not a JSON object: %s", ev.Payload)
			}
		case isSyntax:
			if se.Error() == "" {
				t.Error("SyntaxError with an empty message")
			}
		case isValidation:
			if len(ve.Errors) == 0 {
				t.Error("ValidationError without fields")
			}
		default:
			t.Errorf("error %v is of type %T, want *SyntaxError or *ValidationError", err, err)
		}
		if err != nil && (ev.ID != uuid.Nil || ev.Payload != nil) {
			t.Errorf("error %v came with a non-zero Event %+v", err, ev)
		}
	})
}
