package postgres_test

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/transport"
	"github.com/eventflow/eventflow/transport/postgres"
)

// The ingest side stores an event and queues it in one transaction: both
// happen, or neither.
func ExampleTransport_PublishTx() {
	ctx := context.Background()
	db, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/eventflow?sslmode=disable")
	if err != nil {
		slog.Error("open database", "err", err)
		return
	}
	defer db.Close()
	tr, err := postgres.New(postgres.Config{DB: db}, watermill.NewSlogLogger(slog.Default()))
	if err != nil {
		slog.Error("create transport", "err", err)
		return
	}
	defer tr.Close()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		slog.Error("begin", "err", err)
		return
	}
	defer tx.Rollback() // after Commit, a no-op
	id := uuid.New()
	payload := []byte(`{"event_id":"` + id.String() + `","event_type":"user.signup"}`)
	if _, err := tx.ExecContext(ctx, `INSERT INTO raw_events (event_id, event_type, source, payload, occurred_at) VALUES ($1, 'user.signup', 'example', '{}', now())`, id); err != nil {
		slog.Error("store event", "err", err)
		return
	}
	if err := tr.PublishTx(ctx, tx, "events", message.NewMessageWithContext(ctx, id.String(), payload)); err != nil {
		slog.Error("queue event", "err", err)
		return
	}
	if err := tx.Commit(); err != nil {
		slog.Error("commit", "err", err)
	}
}

// A worker process: one router handler gets up to Consumers × BatchSize
// messages at once, from the outbox that every worker process shares.
func ExampleTransport_Subscriber() {
	db, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/eventflow?sslmode=disable")
	if err != nil {
		slog.Error("open database", "err", err)
		return
	}
	defer db.Close()
	db.SetMaxOpenConns(2*postgres.DefaultConsumers + 4)
	logger := watermill.NewSlogLogger(slog.Default())
	tr, err := postgres.New(postgres.Config{DB: db}, logger)
	if err != nil {
		slog.Error("create transport", "err", err)
		return
	}
	// After the router: it closes the subscriber on its way out.
	defer tr.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		slog.Error("create router", "err", err)
		return
	}
	router.AddConsumerHandler("process", "events", tr.Subscriber(), func(msg *message.Message) error {
		if reason := msg.Metadata.Get(transport.MalformedMetadataKey); reason != "" {
			// Dead-letter msg as a permanent failure, then ack it.
			slog.Warn("malformed outbox row", "reason", reason)
			return nil
		}
		// Process the event idempotently: it may come more than once.
		return nil
	})
	if err := router.Run(context.Background()); err != nil {
		slog.Error("run router", "err", err)
	}
}
