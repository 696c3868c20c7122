package store

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

// Memory is a Store that keeps the three tables in memory, for the
// one-process dev mode and for unit tests. It passes the same contract
// suite as Postgres; nothing survives the process.
type Memory struct {
	mu        sync.Mutex
	raw       map[uuid.UUID]*memRaw
	processed map[uuid.UUID]*memProcessed
	failed    map[uuid.UUID]*memFailed
	now       func() time.Time
}

type memRaw struct {
	event     schema.Event
	published bool
}

type memProcessed struct {
	Processed
	at time.Time
}

type memFailed struct {
	Failed
	at       time.Time
	replayed *time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		raw:       map[uuid.UUID]*memRaw{},
		processed: map[uuid.UUID]*memProcessed{},
		failed:    map[uuid.UUID]*memFailed{},
		// Postgres keeps microseconds; so does Memory, so that both compare
		// and report times alike.
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// InsertRaw implements Store.
func (m *Memory) InsertRaw(_ context.Context, events []schema.Event) ([]RawResult, error) {
	results := make([]RawResult, len(events))
	firsts, repeats := firstOccurrences(events)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, i := range firsts {
		e := events[i]
		e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
		e.ReceivedAt = e.ReceivedAt.UTC().Truncate(time.Microsecond)
		e.Payload = append(json.RawMessage(nil), e.Payload...)
		e.Metadata = maps.Clone(e.Metadata)
		r := RawResult{ID: e.ID, Outcome: Inserted}
		switch stored, ok := m.raw[e.ID]; {
		case !ok:
			m.raw[e.ID] = &memRaw{event: e}
		case sameContent(stored.event, e):
			r.Outcome, r.Published = Duplicate, stored.published
		default:
			r.Outcome = Conflict
		}
		results[i] = r
	}
	judgeRepeats(events, results, repeats)
	return results, nil
}

// MarkPublished implements Store.
func (m *Memory) MarkPublished(_ context.Context, ids []uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if r, ok := m.raw[id]; ok {
			r.published = true
		}
	}
	return nil
}

// RecordProcessed implements Store.
func (m *Memory) RecordProcessed(_ context.Context, p Processed) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.processed[p.Event.ID]; ok {
		return false, nil
	}
	now := m.now()
	p.Enrichment = maps.Clone(p.Enrichment)
	m.processed[p.Event.ID] = &memProcessed{Processed: p, at: now}
	if f, ok := m.failed[p.Event.ID]; ok && p.Replay && f.replayed == nil {
		f.replayed = &now
	}
	return true, nil
}

// RecordFailed implements Store.
func (m *Memory) RecordFailed(_ context.Context, f Failed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.processed[f.EventID]; ok {
		return nil
	}
	f.Payload = append(json.RawMessage(nil), f.Payload...)
	f.Metadata = maps.Clone(f.Metadata)
	m.failed[f.EventID] = &memFailed{Failed: f, at: m.now()}
	return nil
}

// Status implements Store.
func (m *Memory) Status(_ context.Context, id uuid.UUID) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.raw[id]
	if !ok {
		return Status{}, ErrNotFound
	}
	s := Status{EventID: id, EventType: r.event.Type, Status: StatusAccepted, ReceivedAt: r.event.ReceivedAt}
	if p, ok := m.processed[id]; ok {
		at, attempts := p.at, p.Attempts
		s.Status, s.ProcessedAt, s.Attempts = StatusProcessed, &at, &attempts
		return s, nil
	}
	if f, ok := m.failed[id]; ok {
		at, attempts, msg, kind := f.at, f.Attempts, f.Error, string(f.Kind)
		s.Status, s.FailedAt, s.Attempts, s.Error, s.ErrorKind = StatusFailed, &at, &attempts, &msg, &kind
	}
	return s, nil
}

// Ping implements Store; memory always answers.
func (m *Memory) Ping(context.Context) error { return nil }

// Close implements Store.
func (m *Memory) Close() error { return nil }
