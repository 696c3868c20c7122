package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The decoder's fast paths (plainString, plainMetadata, eachElement in
// DecodeBatch) must give exactly what encoding/json gave before them, for
// every valid JSON input; these tests hold them against encoding/json.

// stringValues are raw JSON values for a top-level string field: plain
// ones, which the fast path takes, and all that it must leave to
// encoding/json.
var stringValues = []string{
	`""`,
	`"checkout-service"`,
	`"2026-11-27T10:00:00Z"`,
	`"café"`,
	`"日本語"`,
	`"😀"`,
	"\"\u2028\u2029\"",
	"\"\x7f\"",
	`"a\nb"`,
	`"\u00e9"`,
	`"\ud83d\ude00"`,
	`"\ud800"`,
	`"\u0000"`,
	`"a\"b"`,
	`"\\"`,
	`"\/"`,
	"\"\xff\"",         // invalid UTF-8
	"\"ab\xc3\"",       // cut in the middle of a character
	"\"\xed\xa0\x80\"", // a surrogate encoded in UTF-8
	"\"\xc0\xaf\"",     // an overlong encoding
	"\"\xff\\n\"",      // invalid UTF-8 and an escape
	`"" `, "\"x\"\n\t", // white space after the string
	`1`, `-0.5e3`, `true`, `false`, `{}`, `{"a":"b"}`, `[]`, `["a"]`,
}

// metadataValues are raw JSON values for the metadata field.
var metadataValues = []string{
	`{}`,
	`{ }`,
	"{\n\t}",
	`{"region":"eu-west-1","client":"web"}`,
	"{ \"region\" :\t\"eu\" ,\n  \"client\":\"web\"\r\n}",
	`{"":""}`,
	`{"région":"Île-de-France","名前":"😀"}`,
	`{"\u0061":"x"}`,
	`{"a\nb":"x"}`,
	`{"a":"1","a":"2"}`,
	`{"a":"1","b":"2","a":"3"}`,
	`{"a":"1","\u0061":"2"}`,
	`{"a":1}`,
	`{"a":"x","b":null}`,
	`{"a":true}`,
	`{"a":{}}`,
	`{"a":["x"]}`,
	`{"a":{"b":"c"}}`,
	`{"a":"x\ny"}`,
	`{"a":"\u00e9"}`,
	`{"a":"\ud83d\ude00"}`,
	`{"a":"\ud800"}`,
	`{"a":"\u0000"}`,
	`{"\u0000":"x"}`,
	"{\"a\":\"\xff\"}",
	"{\"\xff\":\"x\"}",
	"{\"\xff\\n\":\"x\"}",
	"{\"\xff\":\"1\",\"\xfe\":\"2\"}", // both keys are U+FFFD to encoding/json
	`{"a":"1","b":1,"a":"2"}`,
	manyKeys(20, false),
	manyKeys(20, true),
	`"x"`, `[]`, `[{"a":"b"}]`, `1`, `true`, `null`,
}

// manyKeys is a metadata object of n keys, the first repeated at the end
// when repeat is set.
func manyKeys(n int, repeat bool) string {
	members := make([]string, n)
	for i := range members {
		members[i] = `"k` + strings.Repeat("x", i) + `":"v"`
	}
	if repeat {
		members = append(members, members[0])
	}
	return "{" + strings.Join(members, ",") + "}"
}

// batchBodies are batch bodies, good and bad.
var batchBodies = []string{
	`{"events":[{"event_type":"user.login"}]}`,
	`{"events":[1,"x",null,true,false,-0.5e-3,[],{}]}`,
	"{ \"events\" : [ \n {\"a\":[1,[2,{\"b\":\"]\"}]]} ,\t\"x\\\"]\" , [ ] , [[]] ,-1.5e3, true,false,null\r\n] }",
	`{"events":["]","[","}","{",",","\"","\\",":"]}`,
	`{"events":[{"a":"}"},{"b":["{"]}],"extra":[1,2]}`,
	`{"extra":{"events":[]},"events":[{}]}`,
	`{"events":[` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `]}`,
	`{"events":[` + strings.Repeat(`{"a":1},`, 150) + `{"a":1}]}`,
	"{\"events\":[\"\xff\"]}",
	`{"events":[]}`,
	`{"events":[ ]}`,
	"{\"events\":[\n\t]}",
	`{"events":{}}`,
	`{"events":{"0":{}}}`,
	`{"events":null}`,
	`{"events":"[]"}`,
	`{"events":1}`,
	`{"events":true}`,
	`{"event":[{}]}`,
	`{"events":[{}],"events":[{}]}`,
	`{"events":[{}],"\u0065vents":[{}]}`,
	`{"events":[`,
	`{"events":[{},]}`,
	`[{"events":[{}]}]`,
	``,
	`   `,
}

func TestPlainString(t *testing.T) {
	t.Parallel()
	for _, raw := range stringValues {
		if !json.Valid([]byte(raw)) {
			t.Fatalf("%q is not valid JSON", raw)
		}
		fast := envelopeDecoder{fields: map[string]json.RawMessage{"f": json.RawMessage(raw)}}
		got, present := fast.string("f")

		// The field read before the fast path: json.Unmarshal.
		var want string
		var wantSyntax []FieldError
		wantPresent := true
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			wantPresent = false
			wantSyntax = []FieldError{{Field: "f", Message: "must be a string, got " + jsonKind([]byte(raw))}}
		}
		if got != want || present != wantPresent || !reflect.DeepEqual(fast.syntax, wantSyntax) {
			t.Errorf("string(%q) = %q, %v, syntax %v; encoding/json gives %q, %v, %v",
				raw, got, present, fast.syntax, want, wantPresent, wantSyntax)
		}
	}
}

func TestPlainStringTakesPlainStrings(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`""`, `"checkout-service"`, `"café"`, `"😀"`} {
		if s, ok := plainString([]byte(raw)); !ok || `"`+s+`"` != raw {
			t.Errorf("plainString(%s) = %q, %v; want it taken", raw, s, ok)
		}
	}
}

func TestPlainMetadata(t *testing.T) {
	t.Parallel()
	for _, raw := range metadataValues {
		if !json.Valid([]byte(raw)) {
			t.Fatalf("%q is not valid JSON", raw)
		}
		fast := envelopeDecoder{fields: map[string]json.RawMessage{"metadata": json.RawMessage(raw)}}
		got := fast.metadata()
		var slow envelopeDecoder
		want := slow.decodeMetadata(json.RawMessage(raw))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fast.syntax, slow.syntax) || !reflect.DeepEqual(fast.invalid, slow.invalid) {
			t.Errorf("metadata(%q) = %q, syntax %v, invalid %v;\nencoding/json gives %q, %v, %v",
				raw, got, fast.syntax, fast.invalid, want, slow.syntax, slow.invalid)
		}
	}
}

func TestPlainMetadataTakesPlainObjects(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]map[string]string{
		`{}`:                                    nil,
		" { \n} ":                               nil,
		`{"region":"eu-west-1","client":"web"}`: {"region": "eu-west-1", "client": "web"},
		`{"\u0061":"x","b":"日本"}`:               {"a": "x", "b": "日本"},
	} {
		got, ok := plainMetadata([]byte(strings.TrimSpace(raw)))
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("plainMetadata(%s) = %q, %v; want %q taken", raw, got, ok, want)
		}
	}
}

func TestDecodeBatchSplit(t *testing.T) {
	t.Parallel()
	for _, body := range batchBodies {
		items, err := DecodeBatch([]byte(body))
		wantItems, wantErr := decodeBatchByJSON([]byte(body))
		if !reflect.DeepEqual(items, wantItems) || !reflect.DeepEqual(err, wantErr) {
			t.Errorf("DecodeBatch(%q) = %q, %v;\nencoding/json gives %q, %v", body, items, err, wantItems, wantErr)
		}
	}
}

// decodeBatchByJSON is DecodeBatch as it was before it scanned the array:
// split with json.Unmarshal.
func decodeBatchByJSON(data []byte) ([]json.RawMessage, error) {
	fields, err := parseObject(data, "a batch")
	if err != nil {
		return nil, err
	}
	raw, present := fields["events"]
	if !present {
		return nil, &SyntaxError{Errors: []FieldError{{Field: "events", Message: "is required: a batch is {\"events\": [ ... ]}"}}}
	}
	var items []json.RawMessage
	if jsonKind(raw) != "array" || json.Unmarshal(raw, &items) != nil {
		return nil, &SyntaxError{Errors: []FieldError{{Field: "events", Message: "must be an array, got " + jsonKind(raw)}}}
	}
	if len(items) == 0 {
		return nil, &ValidationError{Errors: []FieldError{{Field: "events", Message: "must contain at least one event"}}}
	}
	return items, nil
}

// FuzzFastPaths holds the fast paths against encoding/json on any valid
// JSON value: as a string field, as metadata, and as a batch's events.
//
//	go test ./schema -run '^$' -fuzz '^FuzzFastPaths$' -fuzztime 1m
func FuzzFastPaths(f *testing.F) {
	for _, seeds := range [][]string{stringValues, metadataValues} {
		for _, seed := range seeds {
			f.Add([]byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var want string
		errWant := json.Unmarshal(raw, &want)
		got, ok := plainString(raw)
		if ok && (errWant != nil || got != want) {
			t.Errorf("plainString(%q) = %q; encoding/json gives %q, %v", raw, got, want, errWant)
		}

		if metadata, ok := plainMetadata(raw); ok {
			var slow envelopeDecoder
			want := slow.decodeMetadata(raw)
			if !reflect.DeepEqual(metadata, want) || slow.syntax != nil || slow.invalid != nil {
				t.Errorf("plainMetadata(%q) = %q; encoding/json gives %q, syntax %v, invalid %v", raw, metadata, want, slow.syntax, slow.invalid)
			}
		}

		body := []byte(`{"events":` + string(raw) + `}`)
		items, err := DecodeBatch(body)
		wantItems, wantErr := decodeBatchByJSON(body)
		if !reflect.DeepEqual(items, wantItems) || !reflect.DeepEqual(err, wantErr) {
			t.Errorf("DecodeBatch(%q) = %q, %v; encoding/json gives %q, %v", body, items, err, wantItems, wantErr)
		}
	})
}
