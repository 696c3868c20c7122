package schema

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// unmarshalEventCases are encodings of events: json.Marshal's, and the
// inputs that must leave UnmarshalEvent's fast path.
func unmarshalEventCases(t testing.TB) [][]byte {
	full := Event{
		ID: uuid.MustParse("0b8e1f7a-3c1d-4f5e-9a2b-6c7d8e9f0a1b"), Type: "order.placed", Source: "shop",
		OccurredAt: time.Date(2026, 11, 27, 21, 0, 0, 123456789, time.UTC),
		ReceivedAt: time.Date(2026, 11, 27, 21, 0, 1, 0, time.FixedZone("", 3600)),
		Payload:    json.RawMessage(`{"order_id":"o-1","total":"12.50","items":[{"sku":"a","qty":1}]}`),
		Metadata:   map[string]string{"region": "eu", "trace": "t-é"}, CorrelationID: "req-1",
	}
	enc, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	bare := full
	bare.Metadata, bare.CorrelationID = nil, ""
	encBare, _ := json.Marshal(bare)
	cases := [][]byte{enc, encBare}
	for _, s := range []string{
		`{"event_id":"0b8e1f7a-3c1d-4f5e-9a2b-6c7d8e9f0a1b","event_type":"a","payload":{}}`,
		` { "event_type" : "a" , "payload" : { "x" : [1, 2] } , "metadata" : { } } `,
		`{"event_type":"a","metadata":null,"payload":{}}`,
		`{"event_type":"a\nb","payload":{}}`,                           // an escape
		`{"event_type":"\u00e9","source":"\ud83d\ude00","payload":{}}`, // escapes of non-ASCII
		"{\"event_type\":\"a\xffb\",\"payload\":{}}",                   // invalid UTF-8: replaced
		`{"EVENT_TYPE":"a","Payload":{}}`,                              // keys matched up to case
		`{"event_type":"a","event_type":"b","payload":{}}`,             // a repeated key: the last wins
		`{"metadata":{"k":"1"},"metadata":{"j":"2"},"payload":{}}`,     // repeated maps merge
		`{"metadata":{"k":"1","k":"2"},"payload":{}}`,
		`{"metadata":{"k\u00e9":"1"},"payload":{}}`,
		`{"metadata":{"k":1},"payload":{}}`,
		`{"metadata":[],"payload":{}}`,
		`{"unknown":1,"event_type":"a","payload":{}}`,
		`{"event_type":"a","payload":null}`,
		`{"event_type":"a","payload":[1]}`,
		`{"event_type":"a","payload":"s"}`,
		`{"event_id":"not-a-uuid","payload":{}}`,
		`{"event_id":"{0b8e1f7a-3c1d-4f5e-9a2b-6c7d8e9f0a1b}","payload":{}}`,
		`{"event_id":null,"timestamp":null,"payload":{}}`,
		`{"timestamp":"yesterday","payload":{}}`,
		`{"timestamp":12,"payload":{}}`,
		`{"received_at":"2026-11-27T21:00:00Z","payload":{}}`,
		`{"event_type":7,"payload":{}}`,
		`{"event_type":"a","payload":{}`,
		`[]`, `null`, `"event"`, ``, `{}`,
	} {
		cases = append(cases, []byte(s))
	}
	return cases
}

// TestUnmarshalEventMatchesJSON: UnmarshalEvent gives what json.Unmarshal
// gives, on and off its fast path.
func TestUnmarshalEventMatchesJSON(t *testing.T) {
	for _, data := range unmarshalEventCases(t) {
		checkUnmarshalEvent(t, data)
	}
}

// TestUnmarshalEventFastPath: json.Marshal's encoding of an event is
// decoded without json.Unmarshal.
func TestUnmarshalEventFastPath(t *testing.T) {
	for _, data := range unmarshalEventCases(t)[:2] {
		var e Event
		if !decodeEventFast(data, &e) {
			t.Errorf("%s: left the fast path", data)
		}
	}
}

func FuzzUnmarshalEvent(f *testing.F) {
	for _, data := range unmarshalEventCases(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkUnmarshalEvent(t, data) })
}

func checkUnmarshalEvent(t *testing.T, data []byte) {
	t.Helper()
	var want Event
	wantErr := json.Unmarshal(data, &want)
	got, err := UnmarshalEvent(data)
	switch {
	case (err == nil) != (wantErr == nil):
		t.Errorf("%q: error %v, json.Unmarshal's %v", data, err, wantErr)
	case err != nil:
		if !reflect.DeepEqual(got, Event{}) {
			t.Errorf("%q: error %v with a non-zero event %+v", data, err, got)
		}
	case !reflect.DeepEqual(got, want):
		t.Errorf("%q:\n got %+v\nwant %+v", data, got, want)
	}
}

func BenchmarkUnmarshalEvent(b *testing.B) {
	data := unmarshalEventCases(b)[0]
	b.Run("UnmarshalEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalEvent(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e Event
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
