package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

func TestPublishTxIsDeliveredOnlyIfCommitted(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 1, PollInterval: 10 * time.Millisecond})
	topic := newTopic()
	msgs := subscribe(t, tr, topic)

	publishTx := func(payload string, commit bool) *message.Message {
		t.Helper()
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		msg := message.NewMessage(uuid.NewString(), []byte(payload))
		if err := tr.PublishTx(t.Context(), tx, topic, msg); err != nil {
			t.Fatalf("PublishTx: %v", err)
		}
		// Not delivered while the transaction is open.
		nothingWithin(t, msgs, 100*time.Millisecond)
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatalf("end transaction: %v", err)
		}
		return msg
	}

	publishTx("rolled back", false)
	committed := publishTx("committed", true)
	got := receive(t, msgs)
	if got.UUID != committed.UUID || string(got.Payload) != "committed" {
		t.Errorf("got %s %q, want the committed message %s", got.UUID, got.Payload, committed.UUID)
	}
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
	nothingWithin(t, msgs, 100*time.Millisecond)
}

// DefaultPostgreSQLSchema delivers nothing newer than the oldest open
// transaction of the database; the outbox does not care.
func TestDeliveryIsNotHeldBackByAnOpenTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, PollInterval: 10 * time.Millisecond})
	topic := newTopic()

	open, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = open.Rollback() }()
	// Take a transaction ID, as any write does, and hold it.
	var xid string
	if err := open.QueryRowContext(t.Context(), `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatalf("take a transaction ID: %v", err)
	}

	sent := publish(t, tr, topic, "not held back")
	select {
	case got := <-subscribe(t, tr, topic):
		if got.UUID != sent.UUID {
			t.Errorf("got %s, want %s", got.UUID, sent.UUID)
		}
		got.Ack()
	case <-time.After(2 * time.Second):
		t.Fatalf("not delivered within 2s while transaction %s is open", xid)
	}
}

// A publish inserts all its messages with one statement: outside a
// transaction too, a failure leaves none of them.
func TestPublishIsOneStatement(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	topic := newTopic()
	good := message.NewMessage(uuid.NewString(), []byte("ok"))
	bad := message.NewMessage(uuid.NewString()+"\x00", []byte("NUL is not valid in text"))
	if err := tr.Publisher().Publish(topic, good, bad); err == nil {
		t.Fatal("Publish with a NUL in a uuid returned nil")
	}
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 0 {
		t.Errorf("Depth = %d, %v; want 0", n, err)
	}
}

func TestPublishTxUsesItsContext(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db})
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	msg := message.NewMessage(uuid.NewString(), []byte("x")) // its context is not cancelled
	if err := tr.PublishTx(ctx, tx, newTopic(), msg); !errors.Is(err, context.Canceled) {
		t.Errorf("PublishTx with a cancelled context: got %v, want context.Canceled", err)
	}
}

func TestPublishPreservesMessages(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Consumers: 1})
	topic := newTopic()
	sent := []*message.Message{
		message.NewMessage(uuid.NewString(), []byte{0, 1, 2, 0xff}), // not UTF-8, not JSON
		message.NewMessage(uuid.NewString(), nil),
		message.NewMessage("not-a-uuid-and-longer-than-36-characters-for-sure", []byte(`{"a": 1}`)),
	}
	sent[0].Metadata.Set("correlation_id", "c-1")
	sent[0].Metadata.Set("empty", "")
	sent[1].Metadata = nil
	if err := tr.Publisher().Publish(topic, sent...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msgs := subscribe(t, tr, topic)
	for _, want := range sent {
		got := receive(t, msgs)
		if got.UUID != want.UUID || string(got.Payload) != string(want.Payload) {
			t.Errorf("got %s %q, want %s %q", got.UUID, got.Payload, want.UUID, want.Payload)
		}
		if len(got.Metadata) != len(want.Metadata) {
			t.Errorf("message %s: metadata %v, want %v", want.UUID, got.Metadata, want.Metadata)
		}
		for k, v := range want.Metadata {
			if got.Metadata[k] != v {
				t.Errorf("message %s: metadata %v, want %v", want.UUID, got.Metadata, want.Metadata)
			}
		}
		got.Ack()
	}
}

func TestPublishRejectsInvalidTopics(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db})
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, topic := range []string{"", "with space", "quote'"} {
		msg := message.NewMessage(uuid.NewString(), []byte("x"))
		if err := tr.Publisher().Publish(topic, msg); !errors.Is(err, wsql.ErrInvalidTopicName) {
			t.Errorf("Publish to %q: got %v, want ErrInvalidTopicName", topic, err)
		}
		if err := tr.PublishTx(t.Context(), tx, topic, msg); !errors.Is(err, wsql.ErrInvalidTopicName) {
			t.Errorf("PublishTx to %q: got %v, want ErrInvalidTopicName", topic, err)
		}
	}
}

func TestPublishNothing(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	if err := tr.Publisher().Publish(newTopic()); err != nil {
		t.Errorf("Publish of no messages: %v", err)
	}
	if err := tr.PublishTx(t.Context(), nil, newTopic()); err != nil {
		t.Errorf("PublishTx of no messages: %v", err)
	}
}

// Close waits for the publishes under way, and later ones fail.
func TestPublisherCloseWhilePublishing(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	topic := newTopic()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 4 {
		wg.Go(func() {
			for range 25 {
				err := tr.Publisher().Publish(topic, message.NewMessage(uuid.NewString(), []byte("x")))
				if err != nil && !errors.Is(err, ErrClosed) {
					errs <- err
				}
			}
		})
	}
	if err := tr.Publisher().Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Publish: %v", err)
	}
	msg := message.NewMessage(uuid.NewString(), []byte("too late"))
	if err := tr.Publisher().Publish(topic, msg); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: got %v, want ErrClosed", err)
	}
}
