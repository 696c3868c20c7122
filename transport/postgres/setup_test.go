package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema/migrations"
)

// waitTimeout bounds every wait for something to happen in Postgres.
const waitTimeout = 15 * time.Second

// testPoolSize caps the pool of a test's database. The tests of this and
// other packages share one Postgres server, whose max_connections is 100
// by default.
const testPoolSize = 10

// newDB returns a pool on a fresh database of its own, with the
// migrations applied; the database is dropped when the test ends.
func newDB(t testing.TB, maxConns int) *sql.DB {
	t.Helper()
	db := openDB(t, testenv.Postgres(t), maxConns)
	if _, err := migrations.Up(context.Background(), db, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// openDB opens a pool on url, closed when the test ends.
func openDB(t testing.TB, url string, maxConns int) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newTopic returns a topic name no other test uses.
func newTopic() string {
	return "test_" + uuid.NewString()
}

// newTestTransport returns a Transport, closed when the test ends. A nil
// cfg.DB gets a fresh database.
func newTestTransport(t testing.TB, cfg Config) *Transport {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = newDB(t, testPoolSize)
	}
	tr, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// publish publishes one message with payload to topic and returns it.
func publish(t *testing.T, tr *Transport, topic, payload string) *message.Message {
	t.Helper()
	msg := message.NewMessage(uuid.NewString(), []byte(payload))
	if err := tr.Publisher().Publish(topic, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return msg
}

// subscribe subscribes to topic for the rest of the test.
func subscribe(t *testing.T, tr *Transport, topic string) <-chan *message.Message {
	t.Helper()
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return msgs
}

// receive returns the next message of msgs, failing the test when none
// comes within waitTimeout or the channel is closed.
func receive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return msg
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %s", waitTimeout)
		return nil
	}
}

// nothingWithin fails the test if msgs delivers a message within d.
func nothingWithin(t *testing.T, msgs <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		if ok {
			t.Fatalf("got message %s %q, want none", msg.UUID, msg.Payload)
		}
		t.Fatal("messages channel closed")
	case <-time.After(d):
	}
}

// waitClosed waits until msgs is closed, failing the test if a message
// comes instead or nothing happens within waitTimeout.
func waitClosed(t *testing.T, msgs <-chan *message.Message) {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		if ok {
			t.Fatalf("got message %s, want the channel closed", msg.UUID)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("channel not closed within %s", waitTimeout)
	}
}

// eventually polls cond every 20ms until it returns true, and fails the
// test with what cond last reported if that takes longer than waitTimeout.
func eventually(t *testing.T, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within %s: %s", waitTimeout, last)
		}
		time.Sleep(20 * time.Millisecond)
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
