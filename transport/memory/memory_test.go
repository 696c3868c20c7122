package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/eventflow/eventflow/transport/memory"
)

// closingPublisher makes the suite's Close reach the GoChannel, which the
// transport owns (its Publisher's Close does nothing).
type closingPublisher struct {
	message.Publisher
	t *memory.Transport
}

func (p closingPublisher) Close() error { return p.t.Close() }

func newPubSub(*testing.T) (message.Publisher, message.Subscriber) {
	tr := memory.New(memory.Config{NoWaitForAck: true}, watermill.NopLogger{})
	return closingPublisher{tr.Publisher(), tr}, tr.Subscriber()
}

// Watermill's universal suite, against the transport as eventflow
// configures it but for NoWaitForAck (see Config); the waiting is tested
// below.
func TestPubSub(t *testing.T) {
	t.Parallel()
	tests.TestPubSub(t, tests.Features{
		// GoChannel fans every message out to every subscriber: no groups.
		ConsumerGroups: false,
		// A message is sent once per subscriber and only re-sent on a nack.
		ExactlyOnceDelivery: true,
		// Deliveries run concurrently, one goroutine each.
		GuaranteedOrder: false,
		// The suite means kept across separate instances: a GoChannel keeps
		// its messages (Persistent mode) only within itself.
		Persistent: false,
		// Publisher and subscriber must be the same GoChannel.
		RequireSingleInstance: true,
	}, newPubSub, nil)
}

// Publish returns only after the handler acknowledged the message, and
// Depth counts it while it is in flight.
func TestPublishWaitsForAckAndDepthCountsInFlight(t *testing.T) {
	t.Parallel()
	tr := memory.New(memory.Config{}, watermill.NopLogger{})
	defer tr.Close()
	msgs, err := tr.Subscriber().Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- tr.Publisher().Publish("events", message.NewMessage("1", []byte("{}"))) }()
	msg := <-msgs
	if d, _ := tr.Depth(context.Background(), "events"); d != 1 {
		t.Errorf("depth while in flight: %d, want 1", d)
	}
	time.Sleep(20 * time.Millisecond) // let the message age a little
	if age, _ := tr.OldestAge(context.Background(), "events"); age < 20*time.Millisecond {
		t.Errorf("oldest age while in flight: %v, want ≥ 20ms", age)
	}
	select {
	case <-published:
		t.Fatal("Publish returned before the ack")
	case <-time.After(50 * time.Millisecond):
	}
	msg.Ack()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if d, _ := tr.Depth(context.Background(), "events"); d != 0 {
		t.Errorf("depth after the ack: %d, want 0", d)
	}
	if age, _ := tr.OldestAge(context.Background(), "events"); age != 0 {
		t.Errorf("oldest age with nothing in flight: %v, want 0", age)
	}
}
