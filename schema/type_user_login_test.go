package schema_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestUserLogin_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    schema.Enrichment
	}{
		{"without ip", `{"user_id":"u-1"}`, schema.Enrichment{}},
		{"ip null", `{"user_id":"u-1","ip":null}`, schema.Enrichment{}},
		{"IPv4", `{"user_id":"u-1","ip":"203.0.113.7"}`, schema.Enrichment{"ip_version": 4}},
		{"IPv6", `{"user_id":"u-1","ip":"2001:db8::1"}`, schema.Enrichment{"ip_version": 6}},
		{"IPv4-mapped IPv6", `{"user_id":"u-1","ip":"::ffff:203.0.113.7"}`, schema.Enrichment{"ip_version": 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := checkBuiltin(t, "user.login", tt.payload)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got == nil || !maps.Equal(got, tt.want) {
				t.Errorf("enrichment = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestUserLogin_Invalid(t *testing.T) {
	t.Parallel()
	const badIP = "must be an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::1"
	tests := []struct {
		name    string
		payload string
		want    []schema.FieldError
	}{
		{"user_id missing", `{"ip":"203.0.113.7"}`, []schema.FieldError{{Field: "payload.user_id", Message: "is required"}}},
		{"user_id null", `{"user_id":null}`, []schema.FieldError{{Field: "payload.user_id", Message: "is required"}}},
		{"ip a host name", `{"user_id":"u","ip":"example.com"}`, []schema.FieldError{{Field: "payload.ip", Message: badIP}}},
		{"ip out of range", `{"user_id":"u","ip":"256.1.1.1"}`, []schema.FieldError{{Field: "payload.ip", Message: badIP}}},
		{"ip with a port", `{"user_id":"u","ip":"203.0.113.7:443"}`, []schema.FieldError{{Field: "payload.ip", Message: badIP}}},
		{"ip empty", `{"user_id":"u","ip":""}`, []schema.FieldError{{Field: "payload.ip", Message: badIP}}},
		{"ip a number", `{"user_id":"u","ip":3405803783}`, []schema.FieldError{{Field: "payload.ip", Message: "must be a string, got number"}}},
		{
			name:    "both bad",
			payload: `{"user_id":"","ip":"1.2.3"}`,
			want: []schema.FieldError{
				{Field: "payload.user_id", Message: "must not be empty"},
				{Field: "payload.ip", Message: badIP},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enrichment, err := checkBuiltin(t, "user.login", tt.payload)
			if enrichment != nil {
				t.Errorf("enrichment = %v, want none", enrichment)
			}
			if got := fieldErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", got, tt.want)
			}
		})
	}
}
