// Package storetest is the contract every store.Store implementation
// passes: the Postgres store and any in-memory fake run the same tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
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
		{"FailedThenReplayed", testFailedThenReplayed},
		{"FailedAfterProcessedIsIgnored", testFailedAfterProcessedIsIgnored},
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
	if err := s.RecordFailed(ctx(t), failedOf(f, store.Permanent, "payload.email: invalid", 1)); err != nil {
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
	if err := s.RecordFailed(ctx(t), failedOf(e, store.RetriesExhausted, "database down", 4)); err != nil {
		t.Fatalf("RecordFailed: %v", err)
	}
	if err := s.RecordFailed(ctx(t), failedOf(e, store.Permanent, "bad payload", 1)); err != nil {
		t.Fatalf("RecordFailed again: %v", err)
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
	if err := s.RecordFailed(ctx(t), failedOf(e, store.RetriesExhausted, "late redelivery failed", 4)); err != nil {
		t.Fatalf("RecordFailed: %v", err)
	}
	st, err := s.Status(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Status != store.StatusProcessed || st.Error != nil {
		t.Errorf("a processed event stays processed: %+v", st)
	}
}
