package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
)

func TestSubscriberHasConsumersMessagesInFlight(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	const consumers = 4
	tr := newTestTransport(t, Config{Consumers: consumers})
	for i := range 2 * consumers {
		publish(t, tr, topic, fmt.Sprint(i))
	}

	var (
		mu                    sync.Mutex
		inFlight, maxInFlight int
	)
	started := make(chan struct{}, 2*consumers)
	release := make(chan struct{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	router.AddConsumerHandler("blocking", topic, tr.Subscriber(), func(*message.Message) error {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		started <- struct{}{}
		<-release
		return nil
	})
	runRouter(t, router)

	for range consumers {
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatalf("fewer than %d handlers started within %s", consumers, waitTimeout)
		}
	}
	mu.Lock()
	if inFlight != consumers {
		t.Errorf("with all handlers blocked, %d messages in flight, want %d", inFlight, consumers)
	}
	mu.Unlock()
	// Each consumer holds only the entry its handler has: none read ahead.
	if n := pendingCount(t, client, topic, tr.cfg.ConsumerGroup); n != consumers {
		t.Errorf("%d entries pending, want %d", n, consumers)
	}

	close(release)
	for range consumers {
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatalf("the last %d messages were not handled within %s", consumers, waitTimeout)
		}
	}
	eventually(t, depthIs(t, tr, topic, 0))
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight != consumers {
		t.Errorf("at most %d messages in flight, want %d", maxInFlight, consumers)
	}
}

func TestSubscriberRedeliversAfterMaxIdleTimeWhenConsumerClosed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		settle func(*message.Message)
	}{
		{"not acked", func(*message.Message) {}},
		{"nacked", func(msg *message.Message) { msg.Nack() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, topic := setup(t)
			cfg := Config{
				ConsumerGroup: uniqueName(),
				Consumers:     1,
				MaxIdleTime:   time.Second,
				ClaimInterval: 100 * time.Millisecond,
			}
			first := newTestTransport(t, cfg)
			sent := publish(t, first, topic, "redeliver me")

			beforeDelivery := time.Now()
			msgs, err := first.Subscriber().Subscribe(t.Context(), topic)
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			tc.settle(receive(t, msgs))
			if err := first.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			second := newTestTransport(t, cfg)
			msgs, err = second.Subscriber().Subscribe(t.Context(), topic)
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			got := receive(t, msgs)
			if elapsed := time.Since(beforeDelivery); elapsed < cfg.MaxIdleTime {
				t.Errorf("delivered again after %s, before MaxIdleTime %s", elapsed, cfg.MaxIdleTime)
			}
			if got.UUID != sent.UUID || string(got.Payload) != string(sent.Payload) {
				t.Errorf("got message %s %q, want %s %q", got.UUID, got.Payload, sent.UUID, sent.Payload)
			}
			got.Ack()
			eventually(t, depthIs(t, second, topic, 0))
		})
	}
}

func TestSubscriberSubscribeTwice(t *testing.T) {
	t.Parallel()
	_, topic := setup(t)
	tr := newTestTransport(t, Config{Consumers: 2})
	sub := tr.Subscriber()

	ctx, cancel := context.WithCancel(t.Context())
	first, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if _, err := sub.Subscribe(t.Context(), topic); !errors.Is(err, ErrAlreadySubscribed) {
		t.Fatalf("second Subscribe while the first runs: got error %v, want ErrAlreadySubscribed", err)
	}

	cancel()
	waitClosed(t, first)
	second, err := sub.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe after the first channel closed: %v", err)
	}
	sent := publish(t, tr, topic, "after resubscribe")
	got := receive(t, second)
	got.Ack()
	if got.UUID != sent.UUID {
		t.Errorf("got message %s, want %s", got.UUID, sent.UUID)
	}
}

func TestSubscriberCloseClosesChannels(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{Consumers: 3})
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	publish(t, tr, topic, "in flight at close")
	inFlight := receive(t, msgs)

	if err := tr.Subscriber().Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case msg, ok := <-msgs:
		if ok {
			t.Fatalf("message %s after Close", msg.UUID)
		}
	default:
		t.Fatal("channel still open after Close returned")
	}
	select {
	case <-inFlight.Context().Done():
	default:
		t.Error("context of the message in flight not cancelled by Close")
	}
	// The ack comes after Close: it is lost, as documented, and the entry
	// stays pending for another consumer to claim.
	inFlight.Ack()
	if n := pendingCount(t, client, topic, tr.cfg.ConsumerGroup); n != 1 {
		t.Errorf("%d entries pending after Close, want 1", n)
	}
}

func TestSubscriberEndsWhenGroupIsDeleted(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{Consumers: 3})
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	if err := client.XGroupDestroy(t.Context(), topic, tr.cfg.ConsumerGroup).Err(); err != nil {
		t.Fatalf("XGROUP DESTROY: %v", err)
	}
	waitClosed(t, msgs)

	// Subscribing again creates the group again.
	msgs, err = tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe after the group was deleted: %v", err)
	}
	sent := publish(t, tr, topic, "after the group came back")
	got := receive(t, msgs)
	got.Ack()
	if got.UUID != sent.UUID {
		t.Errorf("got message %s, want %s", got.UUID, sent.UUID)
	}
}

// runRouter runs router until the test ends.
func runRouter(t *testing.T, router *message.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	select {
	case <-router.Running():
	case <-time.After(waitTimeout):
		t.Fatalf("router not running within %s", waitTimeout)
	}
}

// depthIs is a condition for eventually: Depth of topic is want.
func depthIs(t *testing.T, tr *Transport, topic string, want int64) func() (bool, string) {
	return func() (bool, string) {
		got, err := tr.Depth(t.Context(), topic)
		if err != nil {
			return false, fmt.Sprintf("Depth: %v", err)
		}
		return got == want, fmt.Sprintf("Depth %d, want %d", got, want)
	}
}

// pendingCount returns how many entries of topic group has delivered and
// not had acknowledged.
func pendingCount(t *testing.T, client *goredis.Client, topic, group string) int64 {
	t.Helper()
	pending, err := client.XPending(t.Context(), topic, group).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return pending.Count
}
