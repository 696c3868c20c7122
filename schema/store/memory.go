package store

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
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
	relaying  bool // taken by a RelayUnpublished call under way
}

type memProcessed struct {
	Processed
	at time.Time
}

type memFailed struct {
	Failed
	at       time.Time
	replayed *time.Time
	history  []HistoryEntry
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

// RelayUnpublished implements Store.
func (m *Memory) RelayUnpublished(ctx context.Context, cutoff time.Time, limit int, publish func(context.Context, []schema.Event) error) (int, error) {
	m.mu.Lock()
	var taken []*memRaw
	for _, r := range m.raw {
		if !r.published && !r.relaying && r.event.ReceivedAt.Before(cutoff) {
			taken = append(taken, r)
		}
	}
	slices.SortFunc(taken, func(a, b *memRaw) int { return a.event.ReceivedAt.Compare(b.event.ReceivedAt) })
	taken = taken[:min(len(taken), limit)]
	events := make([]schema.Event, len(taken))
	for i, r := range taken {
		r.relaying, events[i] = true, r.event
	}
	m.mu.Unlock()

	err := error(nil)
	if len(events) > 0 {
		err = publish(ctx, events)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range taken {
		r.relaying = false
		r.published = r.published || err == nil
	}
	if err != nil {
		return 0, err
	}
	return len(events), nil
}

// RecordProcessedBatch implements Store.
func (m *Memory) RecordProcessedBatch(ctx context.Context, ps []Processed) ([]bool, error) {
	out := make([]bool, len(ps))
	for i, p := range ps {
		out[i], _ = m.RecordProcessed(ctx, p)
	}
	return out, nil
}

// RecordProcessed implements Store.
func (m *Memory) RecordProcessed(_ context.Context, p Processed) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if f, ok := m.failed[p.Event.ID]; ok && f.replayed == nil {
		action := ActionProcessed
		if p.Replay {
			action = ActionReplaySucceeded
		}
		f.replayed = &now
		f.history = append(f.history, HistoryEntry{At: now, Action: action})
	}
	if _, ok := m.processed[p.Event.ID]; ok {
		return false, nil
	}
	p.Enrichment = maps.Clone(p.Enrichment)
	m.processed[p.Event.ID] = &memProcessed{Processed: p, at: now}
	return true, nil
}

// RecordFailed implements Store.
func (m *Memory) RecordFailed(_ context.Context, f Failed) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.processed[f.EventID]; ok {
		return false, nil
	}
	f.Payload = append(json.RawMessage(nil), f.Payload...)
	f.Metadata = maps.Clone(f.Metadata)
	now := m.now()
	entry := HistoryEntry{At: now, Action: ActionFailed, Error: f.Error, ErrorKind: string(f.Kind), Attempts: f.Attempts}
	var history []HistoryEntry
	if old, ok := m.failed[f.EventID]; ok {
		history = old.history
	}
	m.failed[f.EventID] = &memFailed{Failed: f, at: now, history: append(history, entry)}
	return true, nil
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

func (f *memFailed) deadLetter(withHistory bool) DeadLetter {
	d := DeadLetter{Failed: f.Failed, FailedAt: f.at}
	d.Payload = append(json.RawMessage(nil), f.Payload...)
	d.Metadata = maps.Clone(f.Metadata)
	if f.replayed != nil {
		at := *f.replayed
		d.ReplayedAt = &at
	}
	if withHistory {
		d.History = append([]HistoryEntry(nil), f.history...)
	}
	return d
}

func (f *memFailed) matches(flt DeadLetterFilter) bool {
	switch {
	case !flt.IncludeReplayed && f.replayed != nil:
		return false
	case len(flt.EventTypes) > 0 && !slices.Contains(flt.EventTypes, f.EventType):
		return false
	case len(flt.Kinds) > 0 && !slices.Contains(flt.Kinds, f.Kind):
		return false
	case !flt.FailedFrom.IsZero() && f.at.Before(flt.FailedFrom):
		return false
	case !flt.FailedTo.IsZero() && !f.at.Before(flt.FailedTo):
		return false
	}
	return true
}

// sortedDeadLetters returns the matching dead letters in listing order.
func (m *Memory) sortedDeadLetters(flt DeadLetterFilter) []*memFailed {
	var out []*memFailed
	for _, f := range m.failed {
		if f.matches(flt) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b *memFailed) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return bytes.Compare(a.EventID[:], b.EventID[:])
	})
	return out
}

// ListDeadLetters implements DeadLetters.
func (m *Memory) ListDeadLetters(_ context.Context, flt DeadLetterFilter) ([]DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := flt.Limit
	if limit <= 0 {
		limit = DefaultDeadLetterLimit
	}
	var out []DeadLetter
	for _, f := range m.sortedDeadLetters(flt) {
		if a := flt.After; a != nil {
			if c := f.at.Compare(a.FailedAt); c < 0 || c == 0 && bytes.Compare(f.EventID[:], a.EventID[:]) <= 0 {
				continue
			}
		}
		if len(out) == limit {
			break
		}
		out = append(out, f.deadLetter(false))
	}
	return out, nil
}

// CountDeadLetters implements DeadLetters.
func (m *Memory) CountDeadLetters(_ context.Context, flt DeadLetterFilter) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sortedDeadLetters(flt)), nil
}

// DeadLetter implements DeadLetters.
func (m *Memory) DeadLetter(_ context.Context, id uuid.UUID) (DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.failed[id]
	if !ok {
		return DeadLetter{}, ErrNotFound
	}
	return f.deadLetter(true), nil
}

// RecordReplayRequested implements DeadLetters.
func (m *Memory) RecordReplayRequested(_ context.Context, id uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.failed[id]; ok {
		f.history = append(f.history, HistoryEntry{At: m.now(), Action: ActionReplayRequested})
	}
	return nil
}

// DeadLetterStats implements DeadLetters.
func (m *Memory) DeadLetterStats(context.Context) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pending := m.sortedDeadLetters(DeadLetterFilter{})
	if len(pending) == 0 {
		return 0, time.Time{}, nil
	}
	return len(pending), pending[0].at, nil
}

// PurgeDeadLetters implements DeadLetters.
func (m *Memory) PurgeDeadLetters(_ context.Context, cutoff time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, f := range m.failed {
		if f.at.Before(cutoff) {
			delete(m.failed, id)
			n++
		}
	}
	return n, nil
}
