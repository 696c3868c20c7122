package postgres

import (
	"database/sql"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// TestPubSub runs Watermill's contract suite for Pub/Subs against the
// transport. Each constructor call is one process: a Transport of its own,
// on one database that the whole suite shares (the pool stands for the
// server: Transports share nothing else).
func TestPubSub(t *testing.T) {
	t.Parallel()
	// Enough for two sub-tests at a time (go test's -parallel is GOMAXPROCS
	// here) with several Transports of DefaultConsumers each.
	db := newDB(t, 40)

	features := tests.Features{
		// No consumer groups: all subscribers of a topic compete for its
		// messages, and each message goes to one of them.
		ConsumerGroups: false,
		// At least once: a message comes again after a nack, after its ack
		// deadline, and after its subscriber closed before acking it.
		ExactlyOnceDelivery: false,
		// Consumers of one Subscribe, and of several, handle messages side
		// by side, and released rows come back late.
		GuaranteedOrder: false,
		// Not even one Subscriber keeps the order: it runs Config.Consumers
		// consumers. (Only read by the ordering tests, which GuaranteedOrder
		// false skips.)
		GuaranteedOrderWithSingleSubscriber: false,
		// Rows live in Postgres, not in the process: a Transport created
		// later gets what an earlier one published.
		Persistent: true,
		// Transports share nothing but the database.
		RequireSingleInstance: false,
		// An ack deletes the row, so a new subscriber gets only what has
		// not been acked yet.
		NewSubscriberReceivesOldMessages: false,
		// The message context is the subscriber's, not the publisher's.
		ContextPreserved: false,
		// TestReconnect needs a command that restarts Postgres, which the
		// other tests share: it is skipped.
		RestartServiceCommand: nil,
	}
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newSuitePubSub(t, db)
		},
		nil, // no consumer groups
	)
}

// newSuitePubSub is a process of the suite: a Transport with the default
// configuration, except for shorter timings. A 50ms pause after a nack
// keeps the 300 nacks of TestContinueAfterErrors quick; a 5s ack deadline
// bounds how long a message delivered to a reader that stopped reading
// stays locked.
func newSuitePubSub(t *testing.T, db *sql.DB) (message.Publisher, message.Subscriber) {
	tr := newTestTransport(t, Config{
		DB:             db,
		AckDeadline:    5 * time.Second,
		ResendInterval: 50 * time.Millisecond,
	})
	return tr.Publisher(), tr.Subscriber()
}
