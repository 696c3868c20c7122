package schema

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
)

// testType reads a payload with every helper, so that their shared
// behaviour is tested once here and not in each event type.
var testType = checkPayload(func(p object) Enrichment {
	s := p.requiredString("s")
	o, hasO := p.optionalString("o")
	n, _ := p.requiredInteger("n", 0)
	d, _ := p.requiredDecimal("d", -5)
	if p.failed() {
		return nil
	}
	e := Enrichment{"s": s, "n": n, "d": d.FloatString(1)}
	if hasO {
		e["o"] = o
	}
	return e
})

func TestCheckPayload_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    Enrichment
	}{
		{"all given", `{"s":"x","o":"","n":0,"d":-5}`, Enrichment{"s": "x", "o": "", "n": int64(0), "d": "-5.0"}},
		{"optional null", `{"s":"x","o":null,"n":7,"d":2.25}`, Enrichment{"s": "x", "n": int64(7), "d": "2.3"}},
		{"surrounding whitespace", " \n{\"s\":\"x\",\"n\":1,\"d\":0} \n", Enrichment{"s": "x", "n": int64(1), "d": "0.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := testType(json.RawMessage(tt.payload))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("enrichment = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCheckPayload_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    []FieldError
	}{
		{"nothing", ``, []FieldError{{Field: "payload", Message: "is required"}}},
		{"malformed", `{"s":`, []FieldError{{Field: "payload", Message: "must be valid JSON"}}},
		{"two objects", `{} {}`, []FieldError{{Field: "payload", Message: "must be a single JSON object"}}},
		{"trailing garbage", `{}x`, []FieldError{{Field: "payload", Message: "must be a single JSON object"}}},
		{"null", `null`, []FieldError{{Field: "payload", Message: "must be a JSON object, got null"}}},
		{"number", `12`, []FieldError{{Field: "payload", Message: "must be a JSON object, got number"}}},
		{
			name:    "every field bad",
			payload: `{"s":"\t","o":false,"n":-1,"d":-5.5}`,
			want: []FieldError{
				{Field: "payload.s", Message: "must not be blank"},
				{Field: "payload.o", Message: "must be a string, got boolean"},
				{Field: "payload.n", Message: "must be an integer ≥ 0"},
				{Field: "payload.d", Message: "must be a number ≥ -5"},
			},
		},
		{
			name:    "exponents out of range",
			payload: `{"s":"x","n":1e-1001,"d":1e1001}`,
			want: []FieldError{
				{Field: "payload.n", Message: "is out of range"},
				{Field: "payload.d", Message: "is out of range"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enrichment, err := testType(json.RawMessage(tt.payload))
			if enrichment != nil {
				t.Errorf("enrichment = %v, want none", enrichment)
			}
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok {
				t.Fatalf("error = %v (%T), want *ValidationError", err, err)
			}
			if !slices.Equal(ve.Errors, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", ve.Errors, tt.want)
			}
		})
	}
}
