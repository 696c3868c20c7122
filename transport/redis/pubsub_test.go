package redis

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
)

// TestPubSub runs Watermill's contract suite for Pub/Subs against the
// transport. Each constructor call is one process: a Transport of its own,
// with a unique ConsumerName.
func TestPubSub(t *testing.T) {
	t.Parallel()
	runPubSubSuite(t, 0)
}

// TestPubSubBatched runs the same suite in batched mode (ReadBatch > 1).
func TestPubSubBatched(t *testing.T) {
	t.Parallel()
	runPubSubSuite(t, 16)
}

func runPubSubSuite(t *testing.T, readBatch int) {
	client := requireRedis(t)

	// Every stream of this run starts with run; they are deleted once all
	// sub-tests are done.
	run := uniqueName()
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.ScanType(ctx, 0, run+"*", 100, "stream").Iterator()
		for iter.Next(ctx) {
			if err := client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("delete stream %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan streams: %v", err)
		}
	})

	features := tests.Features{
		// Every Config.ConsumerGroup gets every message; the consumers of
		// one group share them.
		ConsumerGroups: true,
		// At least once: a message is delivered again after a nack, and
		// after MaxIdleTime when its ack was lost or its consumer closed.
		ExactlyOnceDelivery: false,
		// Consumers of one Subscribe handle messages concurrently, and
		// claimed entries come back late.
		GuaranteedOrder: false,
		// Not even one Subscriber keeps the order: it runs Config.Consumers
		// consumers. (Only read by the ordering tests, which GuaranteedOrder
		// false skips.)
		GuaranteedOrderWithSingleSubscriber: false,
		// Entries live in Redis, not in the process: a Transport created
		// later reads what an earlier one published.
		Persistent: true,
		// Transports share nothing but Redis.
		RequireSingleInstance: false,
		// A new subscriber of the same group gets only what the group has
		// not consumed yet (a new group would get the whole stream, but
		// the constructor below gives every subscriber of a test the same
		// group, like the processes of one deployment).
		NewSubscriberReceivesOldMessages: false,
		// The message context is the subscriber's, not the publisher's.
		ContextPreserved: false,
		// TestReconnect needs a command that restarts Redis, and the test
		// Redis is shared with the other tests: it is skipped.
		RestartServiceCommand: nil,
		GenerateTopicFunc: func(tctx tests.TestContext) string {
			return run + "_" + string(tctx.TestID)
		},
	}

	// Sub-tests call the constructor with their own t: the processes of
	// one sub-test share a consumer group, and no two sub-tests do.
	var groups sync.Map // t.Name() → consumer group
	tests.TestPubSub(t, features,
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			group, _ := groups.LoadOrStore(t.Name(), uniqueName())
			return newSuitePubSub(t, group.(string), readBatch)
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newSuitePubSub(t, group, readBatch)
		},
	)
}

// newSuitePubSub is a process of the suite: a Transport with the default
// configuration, except for shorter timings. Claims after 2s rather than a
// minute let the tests that close subscribers with messages in flight get
// them back; a 100ms pause after a nack, still no hot loop, keeps the 300
// nacks of TestContinueAfterErrors from taking most of a minute.
func newSuitePubSub(t *testing.T, consumerGroup string, readBatch int) (message.Publisher, message.Subscriber) {
	tr := newTestTransport(t, Config{
		ConsumerGroup:   consumerGroup,
		MaxIdleTime:     2 * time.Second,
		ClaimInterval:   time.Second,
		NackResendSleep: 100 * time.Millisecond,
		ReadBatch:       readBatch,
	})
	return tr.Publisher(), tr.Subscriber()
}
