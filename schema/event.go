package schema

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is an event as eventflow carries it after its envelope was checked:
// the body a client posted (SPEC §5.1) plus what the server knows about its
// arrival. It is the payload of every message on the transport, encoded as
// JSON with the field names below.
type Event struct {
	// ID is the client's idempotency key, or one the server assigned.
	ID uuid.UUID `json:"event_id"`
	// Type names a registered event type, such as "order.placed".
	Type string `json:"event_type"`
	// Source names the service that sent the event (1–128 characters).
	Source string `json:"source"`
	// OccurredAt is when the event happened: the client's timestamp, or
	// ReceivedAt when it sent none.
	OccurredAt time.Time `json:"timestamp"`
	// Payload is the event's JSON object, kept byte for byte as received.
	Payload json.RawMessage `json:"payload"`
	// Metadata holds the client's optional string attributes.
	Metadata map[string]string `json:"metadata,omitempty"`

	// ReceivedAt is when the server accepted the request.
	ReceivedAt time.Time `json:"received_at"`
	// CorrelationID is the request's X-Request-ID.
	CorrelationID string `json:"correlation_id,omitempty"`
	// HasTimestamp reports whether the client sent a timestamp; only then
	// does a repeated event_id with another timestamp count as a conflict.
	HasTimestamp bool `json:"-"`
}
