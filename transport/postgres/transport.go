package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/transport"
)

var (
	_ transport.Transport   = (*Transport)(nil)
	_ transport.TxPublisher = (*Transport)(nil)
)

// Transport is the Postgres outbox transport. Create it with New and close
// it with Close.
type Transport struct {
	cfg        Config
	schema     schemaAdapter
	publisher  *publisher
	subscriber *subscriber
}

// New validates cfg, after filling in its defaults, and returns a
// Transport on cfg.DB. It does not query the database: Ping checks that
// the outbox table exists. A nil logger logs nothing.
func New(cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	schema := schemaAdapter{batchSize: cfg.BatchSize}
	pub, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(cfg.DB), wsql.PublisherConfig{
		SchemaAdapter: schema,
		// The migration creates the table.
		AutoInitializeSchema: false,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create publisher: %w", err)
	}
	return &Transport{
		cfg:        cfg,
		schema:     schema,
		publisher:  &publisher{pub: pub},
		subscriber: newSubscriber(cfg, schema, logger),
	}, nil
}

// Publisher returns the publisher: one INSERT per Publish call, outside
// any transaction (use PublishTx to publish in one). It is safe for
// concurrent use.
func (t *Transport) Publisher() message.Publisher {
	return t.publisher
}

// Subscriber returns the subscriber. See the package documentation for
// what Subscribe does.
func (t *Transport) Subscriber() message.Subscriber {
	return t.subscriber
}

// Ping reports whether the database answers and has the outbox table:
// without the migration, publishes fail and consumers only log failed
// polls.
func (t *Transport) Ping(ctx context.Context) error {
	q := `SELECT FROM ` + outboxTable + ` LIMIT 0`
	if !t.cfg.SkipDeliveryCounts {
		// Without it (migration 00005), every batch would fail.
		q = `SELECT FROM ` + outboxTable + `, ` + deliveriesTable + ` LIMIT 0`
	}
	if _, err := t.cfg.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("ping postgres outbox: %w", err)
	}
	return nil
}

// Depth returns how many messages of topic are in the outbox. Since an ack
// deletes its row, each of them is waiting or in flight (or acked in a
// batch that has not finished yet).
func (t *Transport) Depth(ctx context.Context, topic string) (int64, error) {
	var n int64
	err := t.cfg.DB.QueryRowContext(ctx, `SELECT count(*) FROM `+outboxTable+` WHERE topic = $1`, topic).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", topic, err)
	}
	return n, nil
}

// OldestAge implements transport.AgeReporter: how long the oldest row of
// topic has been in the outbox (rows leave it when acknowledged).
func (t *Transport) OldestAge(ctx context.Context, topic string) (time.Duration, error) {
	var oldest sql.NullTime
	err := t.cfg.DB.QueryRowContext(ctx, `SELECT created_at FROM `+outboxTable+` WHERE topic = $1 ORDER BY "offset" LIMIT 1`, topic).Scan(&oldest)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("oldest age of %s: %w", topic, err)
	}
	if !oldest.Valid {
		return 0, nil
	}
	return max(time.Since(oldest.Time), 0), nil
}

var _ transport.AgeReporter = (*Transport)(nil)

// Close closes the subscriber, then the publisher; it does not close the
// pool, which Ping and Depth go on using. The subscriber goes first so
// that no consumer is left polling while the rest shuts down; messages in
// flight are delivered again (see the package documentation). Close is
// safe to call more than once.
func (t *Transport) Close() error {
	var errs []error
	if err := t.subscriber.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close subscriber: %w", err))
	}
	if err := t.publisher.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	return errors.Join(errs...)
}
