// Package storetest is the contract every store.Store implementation
// passes: the Postgres store and any in-memory fake run the same tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// Run runs the contract against stores made by newStore, one per sub-test.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"InsertRawOutcomes", testInsertRawOutcomes},
		{"InsertRawRepeatsInOneCall", testInsertRawRepeatsInOneCall},
		{"InsertRawConcurrentSameID", testInsertRawConcurrentSameID},
		{"StatusLifecycle", testStatusLifecycle},
		{"RecordProcessedOnce", testRecordProcessedOnce},
		{"RecordProcessedBatch", testRecordProcessedBatch},
		{"FailedThenReplayed", testFailedThenReplayed},
		{"FailedAfterProcessedIsIgnored", testFailedAfterProcessedIsIgnored},
		{"RelayUnpublished", testRelayUnpublished},
		{"DeadLetterListing", testDeadLetterListing},
		{"DeadLetterHistory", testDeadLetterHistory},
		{"DeadLetterStatsAndPurge", testDeadLetterStatsAndPurge},
		{"DeadLetterResolvedByLaterProcessing", testDeadLetterResolvedByLaterProcessing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// NewEvent returns a valid order.placed event with a fresh id.
func NewEvent() schema.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return schema.Event{
		ID:            uuid.New(),
		Type:          "order.placed",
		Source:        "storetest",
		OccurredAt:    now,
		ReceivedAt:    now,
		Payload:       json.RawMessage(`{"order_id":"A-1","user_id":"u-1","currency":"EUR","items":[{"sku":"s","quantity":1,"unit_price":2.5}]}`),
		Metadata:      map[string]string{"region": "eu"},
		CorrelationID: "corr-" + uuid.NewString()[:8],
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func insertOne(t *testing.T, s store.Store, e schema.Event) store.RawResult {
	t.Helper()
	res, err := s.InsertRaw(ctx(t), []schema.Event{e})
	if err != nil {
		t.Fatalf("InsertRaw: %v", err)
	}
	if len(res) != 1 || res[0].ID != e.ID {
		t.Fatalf("InsertRaw returned %+v for event %s", res, e.ID)
	}
	return res[0]
}

func testInsertRawOutcomes(t *testing.T, s store.Store) {
	e := NewEvent()
	e.HasTimestamp = true
	if got := insertOne(t, s, e); got.Outcome != store.Inserted {
		t.Fatalf("first insert: outcome %v, want inserted", got.Outcome)
	}
	if got := insertOne(t, s, e); got.Outcome != store.Duplicate || got.Published {
		t.Fatalf("repeat before publish: %+v, want duplicate, not published", got)
	}
	if err := s.MarkPublished(ctx(t), []uuid.UUID{e.ID}); err != nil {
		t.Fatalf("MarkPublished: %v", err)
	}
	if got := insertOne(t, s, e); got.Outcome != store.Duplicate || !got.Published {
		t.Fatalf("repeat after publish: %+v, want duplicate, published", got)
	}

	reordered := e
	reordered.Payload = json.RawMessage(`{ "currency":"EUR", "user_id":"u-1", "order_id":"A-1", "items":[{"unit_price":2.5,"quantity":1,"sku":"s"}] }`)
	reordered.ReceivedAt = e.ReceivedAt.Add(time.Minute)
	if got := insertOne(t, s, reordered); got.Outcome != store.Duplicate {
		t.Errorf("same payload with other key order and a later arrival: %v, want duplicate", got.Outcome)
	}
	noTimestamp := e
	noTimestamp.HasTimestamp, noTimestamp.OccurredAt = false, e.OccurredAt.Add(time.Hour)
	if got := insertOne(t, s, noTimestamp); got.Outcome != store.Duplicate {
		t.Errorf("repeat without a timestamp: %v, want duplicate", got.Outcome)
	}

	changes := map[string]func(*schema.Event){
		"payload":   func(e *schema.Event) { e.Payload = json.RawMessage(`{"order_id":"A-2"}`) },
		"type":      func(e *schema.Event) { e.Type = "page.view" },
		"source":    func(e *schema.Event) { e.Source = "elsewhere" },
		"metadata":  func(e *schema.Event) { e.Metadata = map[string]string{"region": "us"} },
		"timestamp": func(e *schema.Event) { e.OccurredAt = e.OccurredAt.Add(time.Second) },
	}
	for field, change := range changes {
		changed := e
		change(&changed)
		if got := insertOne(t, s, changed); got.Outcome != store.Conflict {
			t.Errorf("same id, other %s: %v, want conflict", field, got.Outcome)
		}
	}
}

func testInsertRawRepeatsInOneCall(t *testing.T, s store.Store) {
	a, b := NewEvent(), NewEvent()
	other := a
	other.Source = "other"
	stored := NewEvent()
	insertOne(t, s, stored)

	batch := []schema.Event{a, b, a, other, stored, stored}
	res, err := s.InsertRaw(ctx(t), batch)
	if err != nil {
		t.Fatalf("InsertRaw: %v", err)
	}
	want := []store.Outcome{store.Inserted, store.Inserted, store.Duplicate, store.Conflict, store.Duplicate, store.Duplicate}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, w := range want {
		if res[i].ID != batch[i].ID || res[i].Outcome != w {
			t.Errorf("item %d: %+v, want id %s outcome %v", i, res[i], batch[i].ID, w)
		}
	}
}

func testInsertRawConcurrentSameID(t *testing.T, s store.Store) {
	e := NewEvent()
	const n = 8
	var wg sync.WaitGroup
	outcomes := make([]store.Outcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.InsertRaw(ctx(t), []schema.Event{e})
			if err == nil {
				outcomes[i] = res[0].Outcome
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	inserted := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("InsertRaw %d: %v", i, errs[i])
		}
		switch outcomes[i] {
		case store.Inserted:
			inserted++
		case store.Duplicate:
		default:
			t.Errorf("call %d: outcome %v", i, outcomes[i])
		}
	}
	if inserted != 1 {
		t.Errorf("%d of %d concurrent calls inserted the event, want exactly 1", inserted, n)
	}
}

func testStatusLifecycle(t *testing.T, s store.Store) {
	if _, err := s.Status(ctx(t), uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Status of an unknown event: %v, want ErrNotFound", err)
	}
	e := NewEvent()
	insertOne(t, s, e)
	st, err := s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusAccepted || st.EventType != e.Type || st.ProcessedAt != nil || st.Attempts != nil {
		t.Errorf("accepted event: %+v", st)
	}
	if d := st.ReceivedAt.Sub(e.ReceivedAt); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("received_at %v, want %v", st.ReceivedAt, e.ReceivedAt)
	}
	if _, err := s.RecordProcessed(ctx(t), store.Processed{Event: e, Attempts: 2, Enrichment: schema.Enrichment{"item_count": 1}}); err != nil {
		t.Fatalf("RecordProcessed: %v", err)
	}
	st, err = s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusProcessed || st.ProcessedAt == nil || st.Attempts == nil || *st.Attempts != 2 {
		t.Errorf("processed event: %+v", st)
	}

	f := NewEvent()
	insertOne(t, s, f)
	if _, err := s.RecordFailed(ctx(t), failedOf(f, store.Permanent, "payload.email: invalid", 1)); err != nil {
		t.Fatalf("RecordFailed: %v", err)
	}
	st, err = s.Status(ctx(t), f.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusFailed || st.Attempts == nil || *st.Attempts != 1 ||
		st.Error == nil || *st.Error != "payload.email: invalid" || st.ErrorKind == nil || *st.ErrorKind != "permanent" {
		t.Errorf("failed event: %+v", st)
	}
}

func failedOf(e schema.Event, kind store.ErrorKind, msg string, attempts int) store.Failed {
	return store.Failed{
		EventID: e.ID, EventType: e.Type, Source: e.Source, Payload: e.Payload, Metadata: e.Metadata,
		CorrelationID: e.CorrelationID, Error: msg, Kind: kind, Attempts: attempts,
	}
}

func testRecordProcessedOnce(t *testing.T, s store.Store) {
	e := NewEvent()
	insertOne(t, s, e)
	for i, want := range []bool{true, false, false} {
		got, err := s.RecordProcessed(ctx(t), store.Processed{Event: e, Attempts: 1})
		if err != nil {
			t.Fatalf("RecordProcessed %d: %v", i, err)
		}
		if got != want {
			t.Errorf("RecordProcessed call %d reported inserted=%v, want %v", i, got, want)
		}
	}
}

func testFailedThenReplayed(t *testing.T, s store.Store) {
	e := NewEvent()
	insertOne(t, s, e)
	if written, err := s.RecordFailed(ctx(t), failedOf(e, store.RetriesExhausted, "database down", 4)); err != nil || !written {
		t.Fatalf("RecordFailed: written=%v, %v", written, err)
	}
	if written, err := s.RecordFailed(ctx(t), failedOf(e, store.Permanent, "bad payload", 1)); err != nil || !written {
		t.Fatalf("RecordFailed again: written=%v, %v", written, err)
	}
	st, err := s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusFailed || *st.ErrorKind != "permanent" || *st.Attempts != 1 {
		t.Errorf("a second dead letter replaces the first: %+v", st)
	}
	inserted, err := s.RecordProcessed(ctx(t), store.Processed{Event: e, Attempts: 1, Replay: true})
	if err != nil || !inserted {
		t.Fatalf("RecordProcessed of the replay: inserted=%v err=%v", inserted, err)
	}
	st, err = s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusProcessed {
		t.Errorf("replayed and processed event: status %q, want processed", st.Status)
	}
}

func testFailedAfterProcessedIsIgnored(t *testing.T, s store.Store) {
	e := NewEvent()
	insertOne(t, s, e)
	if _, err := s.RecordProcessed(ctx(t), store.Processed{Event: e, Attempts: 1}); err != nil {
		t.Fatalf("RecordProcessed: %v", err)
	}
	if written, err := s.RecordFailed(ctx(t), failedOf(e, store.RetriesExhausted, "late redelivery failed", 4)); err != nil || written {
		t.Fatalf("RecordFailed: written=%v, %v; want nothing written", written, err)
	}
	st, err := s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusProcessed || st.Error != nil {
		t.Errorf("a processed event stays processed: %+v", st)
	}
}

// failEvents stores n events of type typ and dead-letters them with kind.
func failEvents(t *testing.T, s store.Store, typ string, kind store.ErrorKind, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		e := NewEvent()
		e.Type = typ
		insertOne(t, s, e)
		if _, err := s.RecordFailed(ctx(t), failedOf(e, kind, "failed: "+typ, 1)); err != nil {
			t.Fatalf("RecordFailed: %v", err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func testDeadLetterListing(t *testing.T, s store.Store) {
	a := failEvents(t, s, "type.a", store.Permanent, 3)
	b := failEvents(t, s, "type.b", store.RetriesExhausted, 2)
	list := func(f store.DeadLetterFilter) []store.DeadLetter {
		t.Helper()
		got, err := s.ListDeadLetters(ctx(t), f)
		if err != nil {
			t.Fatalf("ListDeadLetters: %v", err)
		}
		return got
	}
	if got := list(store.DeadLetterFilter{EventTypes: []string{"type.a"}}); len(got) != 3 {
		t.Errorf("by type: %d dead letters, want 3", len(got))
	}
	got := list(store.DeadLetterFilter{Kinds: []store.ErrorKind{store.RetriesExhausted}})
	if len(got) != 2 || got[0].Kind != store.RetriesExhausted || got[0].EventType != "type.b" || got[0].Error != "failed: type.b" ||
		len(got[0].Payload) == 0 || got[0].Metadata["region"] != "eu" || got[0].FailedAt.IsZero() || got[0].ReplayedAt != nil {
		t.Errorf("by kind: %+v", got)
	}
	if got := list(store.DeadLetterFilter{FailedFrom: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Errorf("failed from the future: %d, want 0", len(got))
	}
	if got := list(store.DeadLetterFilter{FailedTo: time.Now().Add(-time.Hour)}); len(got) != 0 {
		t.Errorf("failed before an hour ago: %d, want 0", len(got))
	}

	// Pages of 2 visit every dead letter once, in order.
	seen := map[uuid.UUID]bool{}
	var after *store.DeadLetterCursor
	var prev store.DeadLetter
	for page := 0; ; page++ {
		got := list(store.DeadLetterFilter{Limit: 2, After: after})
		if len(got) == 0 {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		for _, d := range got {
			if seen[d.EventID] {
				t.Errorf("dead letter %s listed twice", d.EventID)
			}
			seen[d.EventID] = true
			if d.FailedAt.Before(prev.FailedAt) {
				t.Errorf("listing out of order: %v after %v", d.FailedAt, prev.FailedAt)
			}
			prev = d
		}
		c := got[len(got)-1].Cursor()
		after = &c
	}
	for _, id := range append(a, b...) {
		if !seen[id] {
			t.Errorf("dead letter %s never listed", id)
		}
	}
	n, err := s.CountDeadLetters(ctx(t), store.DeadLetterFilter{EventTypes: []string{"type.a", "type.b"}, Limit: 1})
	if err != nil || n != 5 {
		t.Errorf("CountDeadLetters: %d, %v; want 5", n, err)
	}
}

func testDeadLetterHistory(t *testing.T, s store.Store) {
	if _, err := s.DeadLetter(ctx(t), uuid.New()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown dead letter: %v, want ErrNotFound", err)
	}
	id := failEvents(t, s, "type.h", store.Permanent, 1)[0]
	if err := s.RecordReplayRequested(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	d, err := s.DeadLetter(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordProcessed(ctx(t), store.Processed{Event: schema.Event{
		ID: id, Type: d.EventType, Source: d.Source, Payload: d.Payload, Metadata: d.Metadata,
	}, Attempts: 1, Replay: true}); err != nil {
		t.Fatal(err)
	}
	d, err = s.DeadLetter(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, h := range d.History {
		actions = append(actions, h.Action)
	}
	want := []string{store.ActionFailed, store.ActionReplayRequested, store.ActionReplaySucceeded}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Errorf("history %v, want %v", actions, want)
	}
	if len(d.History) > 0 && (d.History[0].Error != "failed: type.h" || d.History[0].ErrorKind != "permanent" || d.History[0].Attempts != 1) {
		t.Errorf("failure entry %+v", d.History[0])
	}
	if d.ReplayedAt == nil {
		t.Error("replayed_at not set after a successful replay")
	}
	if got, _ := s.ListDeadLetters(ctx(t), store.DeadLetterFilter{EventTypes: []string{"type.h"}}); len(got) != 0 {
		t.Errorf("a replayed dead letter is listed by default: %+v", got)
	}
	if got, _ := s.ListDeadLetters(ctx(t), store.DeadLetterFilter{EventTypes: []string{"type.h"}, IncludeReplayed: true}); len(got) != 1 {
		t.Errorf("IncludeReplayed: %d dead letters, want 1", len(got))
	}
}

func testDeadLetterStatsAndPurge(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	n, oldest, err := s.DeadLetterStats(ctx(t))
	if err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("stats of an empty store: %d %v %v", n, oldest, err)
	}
	ids := failEvents(t, s, "type.s", store.Permanent, 3)
	n, oldest, err = s.DeadLetterStats(ctx(t))
	if err != nil || n != 3 || oldest.Before(before) || oldest.After(time.Now()) {
		t.Errorf("stats: %d pending, oldest %v (%v); want 3, just now", n, oldest, err)
	}
	if gone, err := s.PurgeDeadLetters(ctx(t), before); err != nil || gone != 0 {
		t.Errorf("purge before the failures: %d (%v), want 0", gone, err)
	}
	if gone, err := s.PurgeDeadLetters(ctx(t), time.Now().Add(time.Second)); err != nil || gone != 3 {
		t.Errorf("purge after the failures: %d (%v), want 3", gone, err)
	}
	if _, err := s.DeadLetter(ctx(t), ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a purged dead letter: %v, want ErrNotFound", err)
	}
}

func testRelayUnpublished(t *testing.T, s store.Store) {
	old := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	var events []schema.Event
	for i := range 3 {
		e := NewEvent()
		e.ReceivedAt = old.Add(time.Duration(i) * time.Second)
		insertOne(t, s, e)
		events = append(events, e)
	}
	fresh := NewEvent() // received now: not yet due
	insertOne(t, s, fresh)
	if err := s.MarkPublished(ctx(t), []uuid.UUID{events[1].ID}); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-30 * time.Second)

	var got []schema.Event
	collect := func(_ context.Context, es []schema.Event) error { got = append(got, es...); return nil }
	failing := func(context.Context, []schema.Event) error { return errors.New("transport down") }

	if n, err := s.RelayUnpublished(ctx(t), cutoff, 10, failing); err == nil || n != 0 {
		t.Fatalf("a failing publish: %d, %v; want 0 and the error", n, err)
	}
	n, err := s.RelayUnpublished(ctx(t), cutoff, 1, collect)
	if err != nil || n != 1 || len(got) != 1 || got[0].ID != events[0].ID {
		t.Fatalf("first relay (limit 1): %d, %v, %v; want the oldest unpublished event", n, err, got)
	}
	if got[0].Type != events[0].Type || got[0].CorrelationID != events[0].CorrelationID ||
		!jsonSame(got[0].Payload, events[0].Payload) || got[0].Metadata["region"] != "eu" || !got[0].ReceivedAt.Equal(events[0].ReceivedAt) {
		t.Errorf("relayed event %+v differs from the stored one %+v", got[0], events[0])
	}
	got = nil
	if n, err := s.RelayUnpublished(ctx(t), cutoff, 10, collect); err != nil || n != 1 || len(got) != 1 || got[0].ID != events[2].ID {
		t.Errorf("second relay: %d, %v, %v; want only the third event (the second was published, the fourth is fresh)", n, err, got)
	}
	if n, err := s.RelayUnpublished(ctx(t), cutoff, 10, collect); err != nil || n != 0 {
		t.Errorf("third relay: %d, %v; want nothing left", n, err)
	}
	if r := insertOne(t, s, events[0]); r.Outcome != store.Duplicate || !r.Published {
		t.Errorf("a relayed event is marked published: %+v", r)
	}
}

func jsonSame(a, b json.RawMessage) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// A dead letter whose event is processed afterwards by a copy that is not
// a replay (a redelivery) is resolved, never left pending.
func testDeadLetterResolvedByLaterProcessing(t *testing.T, s store.Store) {
	id := failEvents(t, s, "type.r", store.RetriesExhausted, 1)[0]
	inserted, err := s.RecordProcessed(ctx(t), store.Processed{Event: schema.Event{
		ID: id, Type: "type.r", Source: "storetest", Payload: json.RawMessage(`{}`),
	}, Attempts: 1})
	if err != nil || !inserted {
		t.Fatalf("RecordProcessed: inserted=%v, %v", inserted, err)
	}
	n, _, err := s.DeadLetterStats(ctx(t))
	if err != nil || n != 0 {
		t.Errorf("pending dead letters after the event was processed: %d (%v), want 0", n, err)
	}
	d, err := s.DeadLetter(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.ReplayedAt == nil || len(d.History) == 0 || d.History[len(d.History)-1].Action != store.ActionProcessed {
		t.Errorf("dead letter of a redelivered, processed event: replayed_at %v, history %+v", d.ReplayedAt, d.History)
	}
}

func testRecordProcessedBatch(t *testing.T, s store.Store) {
	a, b, done := NewEvent(), NewEvent(), NewEvent()
	for _, e := range []schema.Event{a, b, done} {
		insertOne(t, s, e)
	}
	if _, err := s.RecordProcessed(ctx(t), store.Processed{Event: done, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	batch := []store.Processed{
		{Event: a, Attempts: 1, Enrichment: schema.Enrichment{"item_count": 1}},
		{Event: done, Attempts: 1}, // processed before
		{Event: b, Attempts: 2},
		{Event: a, Attempts: 1}, // the same event twice in one batch
	}
	got, err := s.RecordProcessedBatch(ctx(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("inserted %v, want %v", got, want)
	}
	st, err := s.Status(ctx(t), b.ID)
	if err != nil || st.Status != store.StatusProcessed || *st.Attempts != 2 {
		t.Errorf("event b after the batch: %+v, %v", st, err)
	}
}
