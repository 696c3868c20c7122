package transport

import (
	"context"
	"database/sql"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Transport carries events from the ingest handler to the process handler.
//
// A Transport owns its connections: Publisher and Subscriber are created
// once and closed by Close, never by their users. Hand neither of them to
// message.Router.AddHandler as an output publisher: the router closes the
// publishers it is given.
type Transport interface {
	// Publisher publishes events to a topic.
	Publisher() message.Publisher
	// Subscriber delivers the events of a topic to the process handler,
	// each at least once, with several messages in flight at a time.
	Subscriber() message.Subscriber
	// Ping reports whether the transport answers; /readyz calls it.
	Ping(ctx context.Context) error
	// Depth returns how many messages of topic wait to be processed:
	// not yet delivered to the consumer group plus delivered and not
	// acknowledged. It backs the queue_depth gauge.
	Depth(ctx context.Context, topic string) (int64, error)
	// Close closes the publisher, the subscriber and the connections under
	// them. It is safe to call more than once.
	Close() error
}

// MalformedMetadataKey marks a message that a transport received but could
// not decode (a stream entry written by a foreign producer, say). Its value
// says what was wrong; the message's payload holds what was received. The
// process handler dead-letters such messages instead of stopping.
const MalformedMetadataKey = "eventflow_malformed"

// DeliveriesMetadataKey, when set, is how many times the transport has
// handed out the message, this delivery included, as the broker counts it
// (durably: a crash of the consumer does not reset it). It is set on
// redeliveries, which is where it exceeds 1; the process handler
// quarantines a message delivered too often (EVENTFLOW_MAX_DELIVERIES): a
// message whose handling kills or hangs the worker would otherwise come
// back forever.
const DeliveriesMetadataKey = "eventflow_deliveries"

// Trimmer is implemented by a transport whose queue keeps consumed
// messages until told to drop them (a Redis stream). Trim drops those that
// every consumer has finished and returns how many it dropped.
type Trimmer interface {
	Trim(ctx context.Context, topic string) (int64, error)
}

// TxPublisher is implemented by a transport whose messages live in the
// database, beside raw_events (the Postgres outbox): it publishes inside
// the caller's transaction, so that an event is stored and queued, or
// neither.
type TxPublisher interface {
	// PublishTx publishes msgs to topic as part of tx; nothing is delivered
	// unless tx commits.
	PublishTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error
}

// AgeReporter is implemented by transports that can tell how long the
// oldest message of a topic has been waiting; it backs the
// queue_oldest_age_seconds gauge.
type AgeReporter interface {
	// OldestAge is the age of the oldest message of topic not yet
	// acknowledged (waiting or in flight); 0 when there is none.
	OldestAge(ctx context.Context, topic string) (time.Duration, error)
}
