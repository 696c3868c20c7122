package redis

import (
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

func TestTransportPing(t *testing.T) {
	t.Parallel()
	requireRedis(t)
	tr := newTestTransport(t, Config{})
	if err := tr.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestTransportUnreachable(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses connections; no retries keep it quick.
	tr, err := New(Config{URL: "redis://127.0.0.1:1/0?max_retries=-1", ConsumerGroup: "g", ConsumerName: "c"}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })

	if err := tr.Ping(t.Context()); err == nil {
		t.Error("Ping returned nil")
	}
	if err := tr.Publisher().Publish("events", message.NewMessage(uuid.NewString(), nil)); err == nil {
		t.Error("Publish returned nil")
	}
	if _, err := tr.Depth(t.Context(), "events"); err == nil {
		t.Error("Depth returned nil")
	}
	for range 2 {
		// The topic is free again after a failed Subscribe.
		if _, err := tr.Subscriber().Subscribe(t.Context(), "events"); err == nil || errors.Is(err, ErrAlreadySubscribed) {
			t.Errorf("Subscribe: got %v, want a connection error", err)
		}
	}
}

func TestTransportClose(t *testing.T) {
	t.Parallel()
	_, topic := setup(t)
	tr := newTestTransport(t, Config{Consumers: 2})
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	// Concurrent and repeated calls all return once everything is closed.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = tr.Close() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	if _, ok := <-msgs; ok {
		t.Error("message after Close")
	}

	msg := message.NewMessage(uuid.NewString(), []byte("too late"))
	if err := tr.Publisher().Publish(topic, msg); err == nil {
		t.Error("Publish after Close returned nil")
	}
	if _, err := tr.Subscriber().Subscribe(t.Context(), topic); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want ErrClosed", err)
	}
	if err := tr.Ping(t.Context()); err == nil {
		t.Error("Ping after Close returned nil")
	}
	if _, err := tr.Depth(t.Context(), topic); err == nil {
		t.Error("Depth after Close returned nil")
	}
	if err := tr.Subscriber().Close(); err != nil {
		t.Errorf("Subscriber().Close after Close: %v", err)
	}
	if err := tr.Publisher().Close(); err != nil {
		t.Errorf("Publisher().Close after Close: %v", err)
	}
}
