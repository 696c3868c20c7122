package postgres

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/internal/testenv"
)

func TestTransportPing(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	if err := tr.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// Without the migration the transport is not ready: Ping says so.
func TestTransportPingWithoutOutboxTable(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{DB: openDB(t, testenv.Postgres(t), testPoolSize)})
	if err := tr.Ping(t.Context()); err == nil {
		t.Error("Ping without the outbox table returned nil")
	}
}

func TestTransportUnreachable(t *testing.T) {
	t.Parallel()
	// Port 1 on loopback refuses connections.
	db := openDB(t, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", testPoolSize)
	tr := newTestTransport(t, Config{DB: db})
	if err := tr.Ping(t.Context()); err == nil {
		t.Error("Ping returned nil")
	}
	if err := tr.Publisher().Publish("events", message.NewMessage(uuid.NewString(), nil)); err == nil {
		t.Error("Publish returned nil")
	}
	if _, err := tr.Depth(t.Context(), "events"); err == nil {
		t.Error("Depth returned nil")
	}
}

func TestTransportDepth(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Consumers: 2})
	topic, other := newTopic(), newTopic()
	for range 3 {
		publish(t, tr, topic, "x")
	}
	publish(t, tr, other, "y")
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 3 {
		t.Errorf("Depth = %d, %v; want 3", n, err)
	}

	msgs := subscribe(t, tr, topic)
	held := receive(t, msgs)
	// Delivered and not acked: still counted.
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 3 {
		t.Errorf("Depth with one in flight = %d, %v; want 3", n, err)
	}
	held.Ack()
	receive(t, msgs).Ack()
	receive(t, msgs).Ack()
	eventually(t, depthIs(t, tr, topic, 0))
	if n, err := tr.Depth(t.Context(), other); err != nil || n != 1 {
		t.Errorf("Depth of the other topic = %d, %v; want 1", n, err)
	}
}

func TestTransportClose(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 2})
	topic := newTopic()
	msgs := subscribe(t, tr, topic)

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
	if err := tr.Publisher().Publish(topic, msg); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: got %v, want ErrClosed", err)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := tr.PublishTx(t.Context(), tx, topic, msg); !errors.Is(err, ErrClosed) {
		t.Errorf("PublishTx after Close: got %v, want ErrClosed", err)
	}
	if _, err := tr.Subscriber().Subscribe(t.Context(), topic); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want ErrClosed", err)
	}
	// The pool is eventflow's: still open.
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("pool closed by Close: %v", err)
	}
}

func TestTransportOldestAge(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	topic := newTopic()
	if age, err := tr.OldestAge(t.Context(), topic); err != nil || age != 0 {
		t.Fatalf("empty topic: %v, %v; want 0", age, err)
	}
	publish(t, tr, topic, "x")
	if _, err := tr.cfg.DB.Exec(`UPDATE eventflow_outbox SET created_at = now() - interval '90 seconds' WHERE topic = $1`, topic); err != nil {
		t.Fatal(err)
	}
	publish(t, tr, topic, "y")
	if age, err := tr.OldestAge(t.Context(), topic); err != nil || age < 89*time.Second || age > 120*time.Second {
		t.Errorf("a row from 90 s ago: %v, %v", age, err)
	}
}
