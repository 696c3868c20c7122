package schema_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/eventflow/eventflow/schema"
)

func TestPageView_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		want    schema.Enrichment
	}{
		{
			name:    "https with path and query",
			payload: `{"url":"https://Example.com/pricing?plan=pro#faq","user_id":"u-1","referrer":"https://search.example/"}`,
			want:    schema.Enrichment{"url_host": "example.com", "url_path": "/pricing"},
		},
		{
			name:    "http without path, with port",
			payload: `{"url":"HTTP://example.com:8080"}`,
			want:    schema.Enrichment{"url_host": "example.com:8080", "url_path": "/"},
		},
		{
			name:    "escaped path stays escaped",
			payload: `{"url":"https://example.com/caf%C3%A9/a%00b","referrer":""}`,
			want:    schema.Enrichment{"url_host": "example.com", "url_path": "/caf%C3%A9/a%00b"},
		},
		{
			name:    "IPv6 host",
			payload: `{"url":"http://[2001:db8::1]/x"}`,
			want:    schema.Enrichment{"url_host": "[2001:db8::1]", "url_path": "/x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := checkBuiltin(t, "page.view", tt.payload)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("enrichment = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPageView_Invalid(t *testing.T) {
	t.Parallel()
	const badURL = "must be an absolute http or https URL such as https://example.com/pricing"
	tests := []struct {
		name    string
		payload string
		want    []schema.FieldError
	}{
		{"url missing", `{"user_id":"u"}`, []schema.FieldError{{Field: "payload.url", Message: "is required"}}},
		{"relative", `{"url":"/pricing"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"no scheme", `{"url":"example.com/pricing"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"other scheme", `{"url":"ftp://example.com/file"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"no host", `{"url":"https:///pricing"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"port only", `{"url":"https://:443/"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"opaque", `{"url":"https:example.com"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"unparsable", `{"url":"https://exa mple.com/"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{"host escapes not UTF-8", `{"url":"https://%ff.example/"}`, []schema.FieldError{{Field: "payload.url", Message: badURL}}},
		{
			name:    "optional fields of the wrong type",
			payload: `{"url":"https://example.com","user_id":1,"referrer":{}}`,
			want: []schema.FieldError{
				{Field: "payload.user_id", Message: "must be a string, got number"},
				{Field: "payload.referrer", Message: "must be a string, got object"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			enrichment, err := checkBuiltin(t, "page.view", tt.payload)
			if enrichment != nil {
				t.Errorf("enrichment = %v, want none", enrichment)
			}
			if got := fieldErrors(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", got, tt.want)
			}
		})
	}
}
