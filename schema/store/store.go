// Package store keeps eventflow's three tables (SPEC §7): raw_events, the
// audit trail of every accepted event; processed_events, each processed
// event exactly once; and failed_events, the dead letters.
//
// Store is the seam; Postgres is the production implementation. Every
// implementation passes the contract suite in package storetest.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

// ErrNotFound is returned by Status for an event_id the store does not know.
var ErrNotFound = errors.New("event not found")

// Store reads and writes the three tables. Implementations are safe for
// concurrent use.
type Store interface {
	// InsertRaw stores events in raw_events, each at most once per event_id,
	// and reports for each input, in input order, whether it was inserted,
	// repeated an earlier event with the same content, or conflicted with an
	// earlier event of the same event_id and other content. The same
	// event_id twice in one call is judged against its first occurrence.
	InsertRaw(ctx context.Context, events []schema.Event) ([]RawResult, error)
	// MarkPublished records that the transport accepted these events.
	MarkPublished(ctx context.Context, ids []uuid.UUID) error
	// RelayUnpublished takes up to limit events received before cutoff
	// whose publish was never confirmed, oldest first, passes them to
	// publish and, if it succeeds, marks them published. Concurrent calls
	// never take the same events.
	RelayUnpublished(ctx context.Context, cutoff time.Time, limit int, publish func(context.Context, []schema.Event) error) (int, error)
	// RecordProcessed writes the event to processed_events unless it is
	// there already, and reports whether it wrote it. In the same
	// transaction it resolves a pending dead letter of the event (sets
	// replayed_at): the event is processed, by this call or an earlier one.
	RecordProcessed(ctx context.Context, p Processed) (inserted bool, err error)
	// RecordProcessedBatch is RecordProcessed for several events in one
	// transaction, reporting for each whether it wrote it. Of two entries
	// with the same event_id, only the first can report true.
	RecordProcessedBatch(ctx context.Context, ps []Processed) (inserted []bool, err error)
	// RecordFailed writes a dead letter, replacing an earlier one of the same
	// event_id, and reports whether it wrote it: it writes nothing for an
	// event already processed.
	RecordFailed(ctx context.Context, f Failed) (written bool, err error)
	// Status tells where an event is (SPEC §5.3), or returns ErrNotFound.
	Status(ctx context.Context, id uuid.UUID) (Status, error)

	DeadLetters
	// Ping reports whether the store answers; /readyz calls it.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// OutboxStore is a Store that can queue events in the same transaction
// that stores them, for a transport whose queue lives in the database.
type OutboxStore interface {
	Store
	// InsertRawAndPublish does what InsertRaw does and, in the same
	// transaction, calls publish with it and the results: what publish
	// queues commits with the events. If publish fails, nothing is stored.
	InsertRawAndPublish(ctx context.Context, events []schema.Event, publish PublishFunc) ([]RawResult, error)
}

// PublishFunc queues events inside tx.
type PublishFunc func(ctx context.Context, tx *sql.Tx, results []RawResult) error

// DeadLetters is the part of a Store that operators use to inspect,
// replay and expire dead letters.
type DeadLetters interface {
	// ListDeadLetters returns the dead letters that match f, oldest
	// failure first, at most f.Limit of them, after f.After.
	ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// CountDeadLetters counts the dead letters that match f (ignoring its
	// Limit and After).
	CountDeadLetters(ctx context.Context, f DeadLetterFilter) (int, error)
	// DeadLetter returns one dead letter with its history, or ErrNotFound.
	DeadLetter(ctx context.Context, id uuid.UUID) (DeadLetter, error)
	// RecordReplayRequested notes in a dead letter's history that it was
	// published again.
	RecordReplayRequested(ctx context.Context, id uuid.UUID) error
	// DeadLetterStats counts the dead letters not yet replayed and tells
	// when the oldest of them failed (zero time when there are none).
	DeadLetterStats(ctx context.Context) (pending int, oldest time.Time, err error)
	// PurgeDeadLetters deletes the dead letters (and their history) that
	// failed before cutoff, and returns how many it deleted.
	PurgeDeadLetters(ctx context.Context, cutoff time.Time) (int, error)
}

// DeadLetterFilter selects dead letters. Zero fields do not filter.
type DeadLetterFilter struct {
	EventTypes []string
	Kinds      []ErrorKind
	// FailedFrom and FailedTo bound failed_at: From ≤ failed_at < To.
	FailedFrom, FailedTo time.Time
	// IncludeReplayed also selects dead letters already replayed
	// successfully; by default only pending ones are listed.
	IncludeReplayed bool
	// After continues a listing after this position (keyset pagination).
	After *DeadLetterCursor
	// Limit caps a listing; 0 means DefaultDeadLetterLimit.
	Limit int
}

// DefaultDeadLetterLimit is the page size of a listing without a Limit.
const DefaultDeadLetterLimit = 100

// DeadLetterCursor is a position in a listing: the last dead letter seen.
type DeadLetterCursor struct {
	FailedAt time.Time
	EventID  uuid.UUID
}

// DeadLetter is a failed_events row.
type DeadLetter struct {
	Failed
	FailedAt   time.Time
	ReplayedAt *time.Time
	// History is filled by DeadLetter (not by listings), oldest first.
	History []HistoryEntry
}

// Cursor returns the position just after d.
func (d DeadLetter) Cursor() DeadLetterCursor {
	return DeadLetterCursor{FailedAt: d.FailedAt, EventID: d.EventID}
}

// History actions.
const (
	ActionFailed          = "failed"
	ActionReplayRequested = "replay_requested"
	ActionReplaySucceeded = "replay_succeeded"
	// ActionProcessed: a copy that was not a replay (a redelivery) was
	// processed, which resolves the dead letter too.
	ActionProcessed = "processed"
)

// HistoryEntry is one step of a dead letter's story.
type HistoryEntry struct {
	At        time.Time `json:"at"`
	Action    string    `json:"action"`
	Error     string    `json:"error,omitempty"`
	ErrorKind string    `json:"error_kind,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
}

// Outcome is what InsertRaw did with one event.
type Outcome int

const (
	// Inserted: the event is new and now stored.
	Inserted Outcome = iota + 1
	// Duplicate: an event with this event_id and the same content was stored
	// earlier; nothing new was stored.
	Duplicate
	// Conflict: an event with this event_id and other content was stored
	// earlier; nothing was stored.
	Conflict
)

func (o Outcome) String() string {
	switch o {
	case Inserted:
		return "inserted"
	case Duplicate:
		return "duplicate"
	case Conflict:
		return "conflict"
	}
	return "unknown"
}

// RawResult is InsertRaw's answer for one event.
type RawResult struct {
	ID      uuid.UUID
	Outcome Outcome
	// Published reports, for a Duplicate, whether the earlier event's
	// publish is known to have succeeded. When it is false the caller
	// publishes the event again.
	Published bool
}

// Processed is a successfully processed event.
type Processed struct {
	Event      schema.Event
	Enrichment schema.Enrichment
	// Attempts counts the handler runs this delivery took, the last included.
	Attempts int
	// Replay marks an event that was replayed from failed_events.
	Replay bool
}

// ErrorKind classifies a dead letter (SPEC §7).
type ErrorKind string

const (
	// Permanent failures are not retried: they cannot succeed as they are.
	Permanent ErrorKind = "permanent"
	// RetriesExhausted failures were transient and kept failing.
	RetriesExhausted ErrorKind = "retries_exhausted"
)

// Failed is a dead letter.
type Failed struct {
	EventID       uuid.UUID
	EventType     string
	Source        string
	Payload       json.RawMessage // must be valid JSON
	Metadata      map[string]string
	CorrelationID string
	Error         string
	Kind          ErrorKind
	Attempts      int
}

// Event states reported by Status (SPEC §5.3).
const (
	StatusAccepted  = "accepted"
	StatusProcessed = "processed"
	StatusFailed    = "failed"
)

// Status is where one event is.
type Status struct {
	EventID     uuid.UUID  `json:"event_id"`
	EventType   string     `json:"event_type"`
	Status      string     `json:"status"`
	ReceivedAt  time.Time  `json:"received_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
	FailedAt    *time.Time `json:"failed_at,omitempty"`
	Attempts    *int       `json:"attempts,omitempty"`
	Error       *string    `json:"error,omitempty"`
	ErrorKind   *string    `json:"error_kind,omitempty"`
}
