package schema_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestUserSignup_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    schema.Enrichment
	}{
		{
			name:    "minimal",
			payload: `{"user_id":"u-1","email":"ada@example.com"}`,
			want:    schema.Enrichment{"email_normalized": "ada@example.com", "email_domain": "example.com"},
		},
		{
			name:    "upper case and spaces are normalized, plan and unknown fields allowed",
			payload: `{"user_id":"u-1","email":"  Ada.Lovelace@Example.CO.uk ","plan":"pro","utm":"x"}`,
			want:    schema.Enrichment{"email_normalized": "ada.lovelace@example.co.uk", "email_domain": "example.co.uk"},
		},
		{
			name:    "plan null or empty",
			payload: `{"user_id":"u-1","email":"a+tag@b.io","plan":null}`,
			want:    schema.Enrichment{"email_normalized": "a+tag@b.io", "email_domain": "b.io"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := checkBuiltin(t, "user.signup", tt.payload)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("enrichment = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUserSignup_Invalid(t *testing.T) {
	t.Parallel()
	const badEmail = "must be an email address such as ada@example.com"
	tests := []struct {
		name    string
		payload string
		want    []schema.FieldError
	}{
		{
			name:    "empty payload",
			payload: `{}`,
			want: []schema.FieldError{
				{Field: "payload.user_id", Message: "is required"},
				{Field: "payload.email", Message: "is required"},
			},
		},
		{
			name:    "wrong types",
			payload: `{"user_id":7,"email":["ada@example.com"],"plan":1}`,
			want: []schema.FieldError{
				{Field: "payload.user_id", Message: "must be a string, got number"},
				{Field: "payload.email", Message: "must be a string, got array"},
				{Field: "payload.plan", Message: "must be a string, got number"},
			},
		},
		{
			name:    "empty and blank strings",
			payload: `{"user_id":"","email":" "}`,
			want: []schema.FieldError{
				{Field: "payload.user_id", Message: "must not be empty"},
				{Field: "payload.email", Message: "must not be blank"},
			},
		},
		{"no at sign", `{"user_id":"u","email":"ada.example.com"}`, []schema.FieldError{{Field: "payload.email", Message: badEmail}}},
		{"display name", `{"user_id":"u","email":"Ada <ada@example.com>"}`, []schema.FieldError{{Field: "payload.email", Message: badEmail}}},
		{"angle brackets", `{"user_id":"u","email":"<ada@example.com>"}`, []schema.FieldError{{Field: "payload.email", Message: badEmail}}},
		{"comment", `{"user_id":"u","email":"ada@example.com (Ada)"}`, []schema.FieldError{{Field: "payload.email", Message: badEmail}}},
		{"two addresses", `{"user_id":"u","email":"a@b.c, d@e.f"}`, []schema.FieldError{{Field: "payload.email", Message: badEmail}}},
		{"not an object", `["u"]`, []schema.FieldError{{Field: "payload", Message: "must be a JSON object, got array"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enrichment, err := checkBuiltin(t, "user.signup", tt.payload)
			if enrichment != nil {
				t.Errorf("enrichment = %v, want none", enrichment)
			}
			if got := fieldErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", got, tt.want)
			}
		})
	}
}
