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
	// RecordProcessed writes the event to processed_events unless it is
	// there already, and reports whether it wrote it. For a replayed event it
	// sets failed_events.replayed_at in the same transaction.
	RecordProcessed(ctx context.Context, p Processed) (inserted bool, err error)
	// RecordFailed writes a dead letter, replacing an earlier one of the same
	// event_id. It writes nothing for an event already processed.
	RecordFailed(ctx context.Context, f Failed) error
	// Status tells where an event is (SPEC §5.3), or returns ErrNotFound.
	Status(ctx context.Context, id uuid.UUID) (Status, error)
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
	// transaction, calls publish with it and the results; publish returns
	// the ids it queued, which are marked published. If publish fails,
	// nothing is stored.
	InsertRawAndPublish(ctx context.Context, events []schema.Event, publish PublishFunc) ([]RawResult, error)
}

// PublishFunc queues events inside tx and returns the ids it queued.
type PublishFunc func(ctx context.Context, tx *sql.Tx, results []RawResult) (published []uuid.UUID, err error)

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
