package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

// The fuzzers' seed corpora are in testdata/fuzz/<FuzzName>/, one file per
// input, and hold every hostile input of the issue "hostile input": deep
// nesting, huge numbers, repeated keys, NUL, invalid UTF-8, trailing data.
// Run one with
//
//	go test ./schema -run '^$' -fuzz '^FuzzDecodeEvent$' -fuzztime 1m
//
// or all of them in turn with make fuzz.

// FuzzDecodeEvent checks DecodeEvent, strict or not, on any body:
//
//   - it never panics, and returns either a valid Event or a *SyntaxError
//     (400) or a *ValidationError (422) naming at least one field;
//   - it is deterministic, and blind to white space around the body;
//   - an accepted Event survives the transport: it encodes as JSON, decodes
//     back to the same Event (as the worker does), and that encoding
//     decodes again through DecodeEvent to the same Event;
//   - its payload is an object Postgres jsonb can store, with no key
//     repeated, and its metadata has no NUL;
//   - strict decoding accepts exactly what plain decoding accepts and the
//     event type's Check passes, and reports the Check's field errors;
//   - a body is judged the same alone and as the one item of a batch.
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
		ev, err := decodeChecked(t, data, strict)

		again, errAgain := schema.DecodeEvent(data, fuzzOptions(strict))
		if !reflect.DeepEqual(again, ev) || errorText(errAgain) != errorText(err) {
			t.Errorf("not deterministic: %+v, %v then %+v, %v", ev, err, again, errAgain)
		}
		padded := append(append([]byte(" \r\n\t"), data...), " \n"...)
		if spaced, errSpaced := schema.DecodeEvent(padded, fuzzOptions(strict)); !reflect.DeepEqual(spaced, ev) || errorKind(errSpaced) != errorKind(err) {
			t.Errorf("white space around the body changed the outcome: %+v, %v then %+v, %v", ev, err, spaced, errSpaced)
		}

		if strict {
			plain, errPlain := schema.DecodeEvent(data, fuzzOptions(false))
			compareStrict(t, plain, errPlain, ev, err)
		}

		// The same body as the one item of a batch.
		trimmed := bytes.Trim(data, " \t\r\n")
		wrapped := []byte(`{"events":[` + string(trimmed) + `]}`)
		// json.Valid(wrapped) fails only when the two more levels take the
		// body past encoding/json's depth limit.
		if utf8.Valid(data) && json.Valid(data) && json.Valid(wrapped) {
			items, errBatch := schema.DecodeBatch(wrapped)
			if errBatch != nil || len(items) != 1 || !bytes.Equal(items[0], trimmed) {
				t.Fatalf("batch of one: items %q, error %v, want [%s]", items, errBatch, trimmed)
			}
			item, errItem := schema.DecodeEvent(items[0], fuzzOptions(strict))
			if !reflect.DeepEqual(item, ev) || errorKind(errItem) != errorKind(err) {
				t.Errorf("judged otherwise in a batch: %+v, %v alone, %+v, %v in a batch", ev, err, item, errItem)
			}
		}
	})
}

// FuzzDecodeBatch checks DecodeBatch on any body:
//
//   - it never panics and is deterministic;
//   - it returns either items or a *SyntaxError, or a *ValidationError
//     naming "events" (an empty batch), never both items and an error;
//   - the items are the elements of the body's "events" array, byte for
//     byte, as encoding/json reads them, and each is valid JSON; a body made
//     of the items again splits into the same items;
//   - every item is judged by DecodeEvent as FuzzDecodeEvent requires: an
//     accepted one re-encodes and decodes to the same event, a rejected one
//     carries a *SyntaxError or a *ValidationError naming its fields.
func FuzzDecodeBatch(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`{"events":[]}`,
		`{"events":{}}`,
		`{"events":[1,"x",null,[],{}]}`,
		`{"events":[{"event_type":"page.view","source":"web","payload":{"url":"https://example.com/"}},` +
			`{"event_type":"no.such","source":"","payload":[]}],"extra":true}`,
		`{"events":[{"event_type":"page.view","source":"s","payload":{"url":"https://e.com"}}],"events":[]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := schema.DecodeBatch(data)
		again, errAgain := schema.DecodeBatch(data)
		if !reflect.DeepEqual(again, items) || errorText(errAgain) != errorText(err) {
			t.Fatalf("not deterministic: %q, %v then %q, %v", items, err, again, errAgain)
		}
		if err != nil {
			if items != nil {
				t.Errorf("error %v came with items %q", err, items)
			}
			se, isSyntax := errors.AsType[*schema.SyntaxError](err)
			ve, isValidation := errors.AsType[*schema.ValidationError](err)
			switch {
			case isSyntax:
				if se.Error() == "" {
					t.Error("SyntaxError with an empty message")
				}
			case isValidation:
				if len(ve.Errors) != 1 || ve.Errors[0].Field != "events" {
					t.Errorf("ValidationError %v, want one naming events", ve)
				}
			default:
				t.Errorf("error %v is of type %T, want *SyntaxError or *ValidationError", err, err)
			}
			return
		}
		if len(items) == 0 {
			t.Fatal("no error and no items")
		}
		// A map, not a struct: encoding/json matches struct fields without
		// regard to case ("evenTs" would count), the batch's field names
		// are exact.
		var oracle map[string]json.RawMessage
		var events []json.RawMessage
		err = json.Unmarshal(data, &oracle)
		if err == nil {
			err = json.Unmarshal(oracle["events"], &events)
		}
		if err != nil || !reflect.DeepEqual(events, items) {
			t.Errorf("items %q, but encoding/json reads the events %q (error %v)", items, events, err)
		}
		raws := make([]string, len(items))
		for i, item := range items {
			if !json.Valid(item) {
				t.Errorf("item %d is not valid JSON: %q", i, item)
			}
			raws[i] = string(item)
			decodeChecked(t, item, false)
		}
		rebuilt, err := schema.DecodeBatch([]byte(`{"events":[` + strings.Join(raws, ",") + `]}`))
		if err != nil || !reflect.DeepEqual(rebuilt, items) {
			t.Errorf("the items rebuilt into a batch split into %q, %v; want %q", rebuilt, err, items)
		}
	})
}

// fuzzOptions is a fixed clock and a fixed new ID, so that decoding is a
// function of the body.
func fuzzOptions(strict bool) schema.DecodeOptions {
	opts := testOptions()
	opts.Strict = strict
	return opts
}

// decodeChecked decodes data and checks what DecodeEvent promises about
// the outcome, accepted or not.
func decodeChecked(t *testing.T, data []byte, strict bool) (schema.Event, error) {
	t.Helper()
	ev, err := schema.DecodeEvent(data, fuzzOptions(strict))
	se, isSyntax := errors.AsType[*schema.SyntaxError](err)
	ve, isValidation := errors.AsType[*schema.ValidationError](err)
	switch {
	case err == nil:
		checkAccepted(t, ev, strict)
	case isSyntax:
		if se.Error() == "" {
			t.Error("SyntaxError with an empty message")
		}
	case isValidation:
		if len(ve.Errors) == 0 {
			t.Error("ValidationError without fields")
		}
		for _, fe := range ve.Errors {
			if !envelopeField(fe.Field) || fe.Message == "" {
				t.Errorf("field error %+v names no envelope field or has no message", fe)
			}
		}
	default:
		t.Errorf("error %v is of type %T, want *SyntaxError or *ValidationError", err, err)
	}
	if err != nil && !reflect.DeepEqual(ev, schema.Event{}) {
		t.Errorf("error %v came with a non-zero Event %+v", err, ev)
	}
	return ev, err
}

// checkAccepted checks an accepted event, and that it survives its trip
// through the transport.
func checkAccepted(t *testing.T, ev schema.Event, strict bool) {
	t.Helper()
	if _, ok := schema.DefaultRegistry().Lookup(ev.Type); !ok {
		t.Errorf("accepted unknown event_type %q", ev.Type)
	}
	if ev.ID == uuid.Nil {
		t.Error("accepted an event without an ID")
	}
	if n := utf8.RuneCountInString(ev.Source); n < 1 || n > schema.MaxSourceLength {
		t.Errorf("accepted a source of %d characters", n)
	}
	if !ev.ReceivedAt.Equal(testNow) || (!ev.HasTimestamp && !ev.OccurredAt.Equal(testNow)) {
		t.Errorf("received_at %v, timestamp %v (sent: %v), want the clock's %v", ev.ReceivedAt, ev.OccurredAt, ev.HasTimestamp, testNow)
	}
	if kind := jsonValueKind(ev.Payload); kind != "object" {
		t.Errorf("accepted a payload that is not a JSON object but %s: %s", kind, ev.Payload)
	}
	if problem := schema.ExportJSONBProblem(ev.Payload); problem != "" {
		t.Errorf("accepted a payload jsonb cannot store (%s): %s", problem, ev.Payload)
	}
	if path, dup := schema.ExportRepeatedKey(ev.Payload, "payload"); dup {
		t.Errorf("accepted a payload that repeats %s: %s", path, ev.Payload)
	}
	for k, v := range ev.Metadata {
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			t.Errorf("accepted metadata with a NUL: %q: %q", k, v)
		}
	}
	if strict {
		typ, _ := schema.DefaultRegistry().Lookup(ev.Type)
		if _, err := typ.Check(ev.Payload); err != nil {
			t.Errorf("strict decoding accepted a payload its Check refuses: %v", err)
		}
	}

	// The transport carries the Event as JSON; the worker decodes it with
	// encoding/json (handlers.DecodeEventMessage).
	encoded, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("an accepted event does not encode: %v\n%+v", err, ev)
	}
	var worker schema.Event
	if err := json.Unmarshal(encoded, &worker); err != nil {
		t.Fatalf("the worker cannot decode %s: %v", encoded, err)
	}
	sameEvent(t, "decoded by the worker", worker, ev)
	// The encoding is itself an envelope, which decodes to the same event.
	redecoded, err := schema.DecodeEvent(encoded, fuzzOptions(false))
	if err != nil {
		t.Fatalf("the event's own encoding is refused: %v\n%s", err, encoded)
	}
	sameEvent(t, "decoded again", redecoded, ev)
}

// sameEvent compares the fields an Event carries through the transport.
func sameEvent(t *testing.T, what string, got, want schema.Event) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Source != want.Source ||
		!got.OccurredAt.Equal(want.OccurredAt) || !got.ReceivedAt.Equal(want.ReceivedAt) ||
		len(got.Metadata) != len(want.Metadata) || !jsonEqual(got.Payload, want.Payload) {
		t.Errorf("%s: %+v\nwant %+v", what, got, want)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("%s: metadata %q = %q, want %q", what, k, got.Metadata[k], v)
		}
	}
}

// compareStrict checks strict decoding against plain decoding of the same
// body: the same syntax errors; when plain decoding accepts, strict
// decoding accepts the same event exactly when the type's Check passes,
// and otherwise reports the Check's errors.
func compareStrict(t *testing.T, plain schema.Event, errPlain error, strict schema.Event, errStrict error) {
	t.Helper()
	if _, ok := errors.AsType[*schema.SyntaxError](errPlain); ok || errorKind(errPlain) == "validation" {
		if errorKind(errStrict) != errorKind(errPlain) {
			t.Errorf("plain decoding: %v; strict: %v", errPlain, errStrict)
		}
		if errorKind(errPlain) == "syntax" && errorText(errStrict) != errorText(errPlain) {
			t.Errorf("syntax errors differ: plain %v, strict %v", errPlain, errStrict)
		}
		return
	}
	typ, _ := schema.DefaultRegistry().Lookup(plain.Type)
	_, errCheck := typ.Check(plain.Payload)
	switch {
	case errCheck == nil:
		if errStrict != nil || !reflect.DeepEqual(strict, plain) {
			t.Errorf("Check passes, but strict decoding gives %+v, %v; plain %+v", strict, errStrict, plain)
		}
	default:
		ve, _ := errors.AsType[*schema.ValidationError](errStrict)
		ce, _ := errors.AsType[*schema.ValidationError](errCheck)
		if ve == nil || ce == nil || !reflect.DeepEqual(ve.Errors, ce.Errors) {
			t.Errorf("Check refuses with %v, strict decoding with %v", errCheck, errStrict)
		}
	}
}

// envelopeField reports whether a field error's path starts at a field of
// the envelope.
func envelopeField(field string) bool {
	for _, name := range []string{"event_id", "event_type", "source", "timestamp", "payload", "metadata"} {
		if field == name || strings.HasPrefix(field, name+".") || strings.HasPrefix(field, name+"[") {
			return true
		}
	}
	return false
}

func errorKind(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.As(err, new(*schema.SyntaxError)):
		return "syntax"
	case errors.As(err, new(*schema.ValidationError)):
		return "validation"
	}
	return "other"
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// jsonValueKind decodes data as one JSON value and names its kind, or says
// it is not one.
func jsonValueKind(data []byte) string {
	v, err := decodeJSONValue(data)
	if err != nil {
		return "invalid JSON"
	}
	switch v.(type) {
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return "another value"
}

func jsonEqual(a, b []byte) bool {
	va, errA := decodeJSONValue(a)
	vb, errB := decodeJSONValue(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeJSONValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one value")
	}
	return v, nil
}
