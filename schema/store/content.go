package store

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"

	"github.com/eventflow/eventflow/schema"
)

// sameContent reports whether b repeats a: same type, source, payload and
// metadata, and the same timestamp when b carries one. Payloads compare as
// JSON values, so key order and white space do not matter.
func sameContent(a, b schema.Event) bool {
	if a.Type != b.Type || a.Source != b.Source || !maps.Equal(a.Metadata, b.Metadata) {
		return false
	}
	if b.HasTimestamp && !a.OccurredAt.Equal(b.OccurredAt) {
		return false
	}
	return jsonEqual(a.Payload, b.Payload)
}

func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// firstOccurrences splits events into the first occurrence of each
// event_id and the later repeats, mapping each repeat's index to the index
// of its first occurrence.
func firstOccurrences(events []schema.Event) (firsts []int, repeats map[int]int) {
	seen := make(map[[16]byte]int, len(events))
	for i, e := range events {
		if first, ok := seen[e.ID]; ok {
			if repeats == nil {
				repeats = make(map[int]int)
			}
			repeats[i] = first
			continue
		}
		seen[e.ID] = i
		firsts = append(firsts, i)
	}
	return firsts, repeats
}

// judgeRepeats fills in the results of in-call repeats: a repeat with its
// first occurrence's content shares that occurrence's fate, anything else
// conflicts. Repeats never need a publish of their own, since the caller
// publishes the first occurrence.
func judgeRepeats(events []schema.Event, results []RawResult, repeats map[int]int) {
	for i, first := range repeats {
		r := RawResult{ID: events[i].ID, Outcome: Conflict}
		if results[first].Outcome != Conflict && sameContent(events[first], events[i]) {
			r.Outcome, r.Published = Duplicate, true
		}
		results[i] = r
	}
}
