package schema_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

var (
	testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	testID  = uuid.MustParse("11111111-2222-4333-8444-555555555555")
)

// testOptions returns options with a fixed clock and a fixed new ID.
func testOptions() schema.DecodeOptions {
	return schema.DecodeOptions{Now: testNow, NewID: func() uuid.UUID { return testID }}
}

const validSignup = `{"user_id":"u-1","email":"ada@example.com"}`

func TestDecodeEvent_Valid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want schema.Event
	}{
		{
			name: "every field",
			body: `{"event_id":"0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10","event_type":"user.signup","source":"auth-service",
				"timestamp":"2026-11-27T10:00:00Z","payload":` + validSignup + `,"metadata":{"region":"eu","tier":""}}`,
			want: schema.Event{
				ID:           uuid.MustParse("0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"),
				Type:         "user.signup",
				Source:       "auth-service",
				OccurredAt:   time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
				Payload:      json.RawMessage(validSignup),
				Metadata:     map[string]string{"region": "eu", "tier": ""},
				ReceivedAt:   testNow,
				HasTimestamp: true,
			},
		},
		{
			name: "only required fields: ID assigned, OccurredAt is now",
			body: `{"event_type":"user.signup","source":"s","payload":{}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "upper-case event_id",
			body: `{"event_id":"0B6F3C1E-3F2A-4C1E-9A51-6F1F2B7C9D10","event_type":"user.signup","source":"s","payload":{}}`,
			want: schema.Event{ID: uuid.MustParse("0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"), Type: "user.signup", Source: "s",
				OccurredAt: testNow, Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "timestamp with offset and fraction is kept in UTC",
			body: `{"event_type":"user.signup","source":"s","timestamp":"2026-11-27T11:30:00.25+01:00","payload":{}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s",
				OccurredAt: time.Date(2026, 11, 27, 10, 30, 0, 250e6, time.UTC), HasTimestamp: true,
				Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "payload kept byte for byte",
			body: `{"event_type":"user.signup","source":"s","payload":{ "b" : 1.50,
 "a":"caf\u00e9" }}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{ "b" : 1.50,
 "a":"caf\u00e9" }`), ReceivedAt: testNow},
		},
		{
			name: "null optional fields count as absent, unknown fields are ignored",
			body: `{"event_id":null,"event_type":"user.signup","source":"s","timestamp":null,"payload":{},"metadata":null,"extra":[1]}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "empty metadata is nil",
			body: `{"event_type":"user.signup","source":"s","payload":{},"metadata":{}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "source of 128 multi-byte characters",
			body: `{"event_type":"user.signup","source":"` + strings.Repeat("é", 128) + `","payload":{}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: strings.Repeat("é", 128), OccurredAt: testNow,
				Payload: json.RawMessage(`{}`), ReceivedAt: testNow},
		},
		{
			name: "an escaped backslash before u0000 is not a NUL",
			body: `{"event_type":"user.signup","source":"s","payload":{"path":"C:\\u0000"},"metadata":{"m":"\\u0000"}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{"path":"C:\\u0000"}`), Metadata: map[string]string{"m": `\u0000`}, ReceivedAt: testNow},
		},
		{
			name: "a surrogate pair is fine",
			body: `{"event_type":"user.signup","source":"s","payload":{"emoji":"\ud83d\ude00"}}`,
			want: schema.Event{ID: testID, Type: "user.signup", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{"emoji":"\ud83d\ude00"}`), ReceivedAt: testNow},
		},
		{
			name: "invalid payload is accepted when not strict",
			body: `{"event_type":"order.placed","source":"s","payload":{"items":"none"}}`,
			want: schema.Event{ID: testID, Type: "order.placed", Source: "s", OccurredAt: testNow,
				Payload: json.RawMessage(`{"items":"none"}`), ReceivedAt: testNow},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := schema.DecodeEvent([]byte(tt.body), testOptions())
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

func assertEvent(t *testing.T, got, want schema.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Source != want.Source ||
		!got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != time.UTC ||
		!got.ReceivedAt.Equal(want.ReceivedAt) || got.HasTimestamp != want.HasTimestamp ||
		got.CorrelationID != "" {
		t.Errorf("event = %+v\nwant    %+v", got, want)
	}
	if string(got.Payload) != string(want.Payload) {
		t.Errorf("payload = %s, want %s", got.Payload, want.Payload)
	}
	if !mapsEqual(got.Metadata, want.Metadata) {
		t.Errorf("metadata = %v, want %v", got.Metadata, want.Metadata)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDecodeEvent_Defaults(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event_type":"user.signup","source":"s","payload":{}}`)
	before := time.Now()
	ev, err := schema.DecodeEvent(body, schema.DecodeOptions{})
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	if ev.ID == uuid.Nil || ev.ID.Version() != 4 {
		t.Errorf("ID = %v, want a random UUID", ev.ID)
	}
	if ev.ReceivedAt.Before(before.Add(-time.Second)) || ev.ReceivedAt.After(time.Now()) || !ev.OccurredAt.Equal(ev.ReceivedAt) {
		t.Errorf("ReceivedAt = %v, OccurredAt = %v, want both now", ev.ReceivedAt, ev.OccurredAt)
	}
	other, err := schema.DecodeEvent(body, schema.DecodeOptions{})
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	if other.ID == ev.ID {
		t.Errorf("two events without event_id got the same ID %v", ev.ID)
	}
}

func TestDecodeEvent_SyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantDetail string // a substring of Detail, or "" for none
		wantErrors []schema.FieldError
	}{
		{name: "empty body", body: "", wantDetail: "body is empty"},
		{name: "blank body", body: " \n", wantDetail: "body is empty"},
		{name: "malformed JSON", body: `{"event_type": }`, wantDetail: "invalid JSON at offset 16"},
		{name: "truncated JSON", body: `{"event_type": "user.signup"`, wantDetail: "invalid JSON at offset"},
		{name: "two objects", body: `{} {}`, wantDetail: "invalid JSON at offset"},
		{name: "invalid UTF-8", body: "{\"event_type\":\"user.signup\",\"source\":\"\xff\",\"payload\":{}}", wantDetail: "not valid UTF-8"},
		{name: "array", body: `[{"event_type":"user.signup"}]`, wantDetail: "an event must be a JSON object, got array"},
		{name: "string", body: `"hello"`, wantDetail: "an event must be a JSON object, got string"},
		{name: "null", body: `null`, wantDetail: "an event must be a JSON object, got null"},
		{
			name:       "event_id not a string",
			body:       `{"event_id":42,"event_type":"user.signup","source":"s","payload":{}}`,
			wantErrors: []schema.FieldError{{Field: "event_id", Message: "must be a string, got number"}},
		},
		{
			name:       "event_type not a string",
			body:       `{"event_type":["user.signup"],"source":"s","payload":{}}`,
			wantErrors: []schema.FieldError{{Field: "event_type", Message: "must be a string, got array"}},
		},
		{
			name:       "source not a string",
			body:       `{"event_type":"user.signup","source":true,"payload":{}}`,
			wantErrors: []schema.FieldError{{Field: "source", Message: "must be a string, got boolean"}},
		},
		{
			name:       "timestamp not a string",
			body:       `{"event_type":"user.signup","source":"s","timestamp":1764237600,"payload":{}}`,
			wantErrors: []schema.FieldError{{Field: "timestamp", Message: "must be a string, got number"}},
		},
		{
			name:       "metadata not an object",
			body:       `{"event_type":"user.signup","source":"s","payload":{},"metadata":["eu"]}`,
			wantErrors: []schema.FieldError{{Field: "metadata", Message: "must be an object of string values, got array"}},
		},
		{
			name: "metadata values not strings",
			body: `{"event_type":"user.signup","source":"s","payload":{},"metadata":{"region":"eu","retries":3,"debug":false}}`,
			wantErrors: []schema.FieldError{
				{Field: "metadata.debug", Message: "must be a string, got boolean"},
				{Field: "metadata.retries", Message: "must be a string, got number"},
			},
		},
		{
			name: "every wrong type is reported, before any rule is checked",
			body: `{"event_id":1,"event_type":2,"source":{},"timestamp":false,"payload":[],"metadata":"x"}`,
			wantErrors: []schema.FieldError{
				{Field: "event_id", Message: "must be a string, got number"},
				{Field: "event_type", Message: "must be a string, got number"},
				{Field: "source", Message: "must be a string, got object"},
				{Field: "timestamp", Message: "must be a string, got boolean"},
				{Field: "metadata", Message: "must be an object of string values, got string"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := schema.DecodeEvent([]byte(tt.body), testOptions())
			se, ok := errors.AsType[*schema.SyntaxError](err)
			if !ok {
				t.Fatalf("DecodeEvent error = %v (%T), want *SyntaxError", err, err)
			}
			if !strings.Contains(se.Detail, tt.wantDetail) || (tt.wantDetail == "") != (se.Detail == "") {
				t.Errorf("Detail = %q, want it to contain %q", se.Detail, tt.wantDetail)
			}
			if !slices.Equal(se.Errors, tt.wantErrors) {
				t.Errorf("Errors = %v\nwant     %v", se.Errors, tt.wantErrors)
			}
			if se.Error() == "" {
				t.Error("Error() is empty")
			}
		})
	}
}

func TestDecodeEvent_ValidationErrors(t *testing.T) {
	t.Parallel()
	const registered = "registered: order.placed, page.view, user.login, user.signup"
	tests := []struct {
		name   string
		body   string
		strict bool
		want   []schema.FieldError
	}{
		{
			name: "event_type missing",
			body: `{"source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_type", Message: "is required"}},
		},
		{
			name: "event_type null",
			body: `{"event_type":null,"source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_type", Message: "is required"}},
		},
		{
			name: "event_type empty",
			body: `{"event_type":"","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_type", Message: "must not be empty"}},
		},
		{
			name: "event_type unknown",
			body: `{"event_type":"user.sigup","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_type", Message: `unknown event_type "user.sigup"; ` + registered}},
		},
		{
			name: "a long unknown event_type is cut in the message",
			body: `{"event_type":"` + strings.Repeat("x", 100) + `","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_type", Message: `unknown event_type "` + strings.Repeat("x", 64) + `"…; ` + registered}},
		},
		{
			name: "event_id not a UUID",
			body: `{"event_id":"order-1001","event_type":"user.signup","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_id", Message: "must be a UUID such as 0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"}},
		},
		{
			name: "event_id empty",
			body: `{"event_id":"","event_type":"user.signup","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_id", Message: "must be a UUID such as 0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"}},
		},
		{
			name: "event_id in a non-canonical form",
			body: `{"event_id":"{0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10}","event_type":"user.signup","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_id", Message: "must be a UUID such as 0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"}},
		},
		{
			name: "event_id the nil UUID",
			body: `{"event_id":"00000000-0000-0000-0000-000000000000","event_type":"user.signup","source":"s","payload":{}}`,
			want: []schema.FieldError{{Field: "event_id", Message: "must not be the nil UUID; leave event_id out to have one assigned"}},
		},
		{
			name: "source missing",
			body: `{"event_type":"user.signup","payload":{}}`,
			want: []schema.FieldError{{Field: "source", Message: "is required"}},
		},
		{
			name: "source empty",
			body: `{"event_type":"user.signup","source":"","payload":{}}`,
			want: []schema.FieldError{{Field: "source", Message: "must not be empty"}},
		},
		{
			name: "source blank",
			body: `{"event_type":"user.signup","source":"  ","payload":{}}`,
			want: []schema.FieldError{{Field: "source", Message: "must not be blank"}},
		},
		{
			name: "source of 129 characters",
			body: `{"event_type":"user.signup","source":"` + strings.Repeat("é", 129) + `","payload":{}}`,
			want: []schema.FieldError{{Field: "source", Message: "must be at most 128 characters, got 129"}},
		},
		{
			name: "source with a control character",
			body: `{"event_type":"user.signup","source":"a\u0000b","payload":{}}`,
			want: []schema.FieldError{{Field: "source", Message: "must not contain control characters"}},
		},
		{
			name: "timestamp not RFC 3339",
			body: `{"event_type":"user.signup","source":"s","timestamp":"27/11/2026 10:00","payload":{}}`,
			want: []schema.FieldError{{Field: "timestamp", Message: "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"}},
		},
		{
			name: "timestamp without a zone",
			body: `{"event_type":"user.signup","source":"s","timestamp":"2026-11-27T10:00:00","payload":{}}`,
			want: []schema.FieldError{{Field: "timestamp", Message: "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"}},
		},
		{
			name: "payload missing",
			body: `{"event_type":"user.signup","source":"s"}`,
			want: []schema.FieldError{{Field: "payload", Message: "is required"}},
		},
		{
			name: "payload null",
			body: `{"event_type":"user.signup","source":"s","payload":null}`,
			want: []schema.FieldError{{Field: "payload", Message: "must be a JSON object, got null"}},
		},
		{
			name: "payload an array",
			body: `{"event_type":"user.signup","source":"s","payload":[{"user_id":"u"}]}`,
			want: []schema.FieldError{{Field: "payload", Message: "must be a JSON object, got array"}},
		},
		{
			name: "payload a string",
			body: `{"event_type":"user.signup","source":"s","payload":"{\"user_id\":\"u\"}"}`,
			want: []schema.FieldError{{Field: "payload", Message: "must be a JSON object, got string"}},
		},
		{
			name: "NUL in a payload value",
			body: `{"event_type":"user.signup","source":"s","payload":{"user_id":"u\u0000"}}`,
			want: []schema.FieldError{{Field: "payload", Message: `must not contain the NUL character (\u0000)`}},
		},
		{
			name: "NUL in a nested payload key",
			body: `{"event_type":"user.signup","source":"s","payload":{"a":{"b\u0000":1}}}`,
			want: []schema.FieldError{{Field: "payload", Message: `must not contain the NUL character (\u0000)`}},
		},
		{
			name: "NUL after an escaped backslash",
			body: `{"event_type":"user.signup","source":"s","payload":{"a":"\\\u0000"}}`,
			want: []schema.FieldError{{Field: "payload", Message: `must not contain the NUL character (\u0000)`}},
		},
		{
			name: "lone surrogate in the payload",
			body: `{"event_type":"user.signup","source":"s","payload":{"a":"\ud83d!"}}`,
			want: []schema.FieldError{{Field: "payload", Message: `must not contain an unpaired UTF-16 surrogate escape such as \ud800`}},
		},
		{
			name: "number beyond Postgres numeric in the payload",
			body: `{"event_type":"user.signup","source":"s","payload":{"n":[1e999999]}}`,
			want: []schema.FieldError{{Field: "payload", Message: "must not contain a number with an exponent beyond ±1000, more than 1001 digits before the decimal point or more than 16383 decimal places"}},
		},
		{
			name: "NUL in metadata values and keys",
			body: `{"event_type":"user.signup","source":"s","payload":{},"metadata":{"region":"eu\u0000","k\u0000":"v","ok":"fine"}}`,
			want: []schema.FieldError{
				{Field: "metadata", Message: `keys must not contain the NUL character (\u0000)`},
				{Field: "metadata.region", Message: `must not contain the NUL character (\u0000)`},
			},
		},
		{
			name: "all errors are collected",
			body: `{"event_id":"nope","timestamp":"yesterday","metadata":{"a":"\u0000"}}`,
			want: []schema.FieldError{
				{Field: "event_id", Message: "must be a UUID such as 0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"},
				{Field: "event_type", Message: "is required"},
				{Field: "source", Message: "is required"},
				{Field: "timestamp", Message: "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"},
				{Field: "payload", Message: "is required"},
				{Field: "metadata.a", Message: `must not contain the NUL character (\u0000)`},
			},
		},
		{
			name:   "strict: payload rules join the envelope's errors",
			body:   `{"event_type":"user.signup","source":"","payload":{"email":"Ada <ada@example.com>"}}`,
			strict: true,
			want: []schema.FieldError{
				{Field: "source", Message: "must not be empty"},
				{Field: "payload.user_id", Message: "is required"},
				{Field: "payload.email", Message: "must be an email address such as ada@example.com"},
			},
		},
		{
			name:   "strict: a payload that is not an object is reported once",
			body:   `{"event_type":"user.signup","source":"s","payload":[]}`,
			strict: true,
			want:   []schema.FieldError{{Field: "payload", Message: "must be a JSON object, got array"}},
		},
		{
			name:   "strict: unknown type has no payload rules to run",
			body:   `{"event_type":"x","source":"s","payload":{}}`,
			strict: true,
			want:   []schema.FieldError{{Field: "event_type", Message: `unknown event_type "x"; ` + registered}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions()
			opts.Strict = tt.strict
			_, err := schema.DecodeEvent([]byte(tt.body), opts)
			ve, ok := errors.AsType[*schema.ValidationError](err)
			if !ok {
				t.Fatalf("DecodeEvent error = %v (%T), want *ValidationError", err, err)
			}
			if !slices.Equal(ve.Errors, tt.want) {
				t.Errorf("Errors = %v\nwant     %v", ve.Errors, tt.want)
			}
		})
	}
}

func TestDecodeEvent_StrictValid(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.Strict = true
	body := `{"event_type":"user.signup","source":"s","payload":` + validSignup + `}`
	ev, err := schema.DecodeEvent([]byte(body), opts)
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	if string(ev.Payload) != validSignup {
		t.Errorf("payload = %s, want %s", ev.Payload, validSignup)
	}
}

func TestDecodeEvent_StrictCheckWithPlainError(t *testing.T) {
	t.Parallel()
	broken := schema.EventType{Name: "broken", Check: func(json.RawMessage) (schema.Enrichment, error) {
		return nil, errors.New("cannot check today")
	}}
	reg, err := schema.NewRegistry(broken)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Registry, opts.Strict = reg, true
	_, err = schema.DecodeEvent([]byte(`{"event_type":"broken","source":"s","payload":{}}`), opts)
	ve, ok := errors.AsType[*schema.ValidationError](err)
	want := []schema.FieldError{{Field: "payload", Message: "cannot check today"}}
	if !ok || !slices.Equal(ve.Errors, want) {
		t.Errorf("DecodeEvent error = %#v, want ValidationError %v", err, want)
	}
}
