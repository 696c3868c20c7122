package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// publisher is the autocommit publisher: watermill-sql's Publisher on the
// pool, made safe to close while Publish runs (watermill-sql's Close and
// Publish race on a plain bool).
type publisher struct {
	pub *wsql.Publisher

	// mu is held for reading by every Publish and for writing by Close,
	// so that Close waits for the publishes under way.
	mu     sync.RWMutex
	closed bool
}

// Publish inserts msgs into the outbox with one statement, under the first
// message's context: all of them are queued, or none.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("publish to %s: %w", topic, ErrClosed)
	}
	if err := p.pub.Publish(topic, msgs...); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Close makes later publishes fail with ErrClosed, once the ones under way
// have returned. It does not close the pool. It is safe to call more than
// once.
func (p *publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// PublishTx inserts msgs into the outbox as part of tx, with one
// statement: they are delivered once tx commits, and never if it rolls
// back. The caller commits or rolls back; a failed PublishTx leaves tx
// aborted, to be rolled back. With sqlx, pass the *sqlx.Tx's Tx field.
//
// It runs the same insert as Publisher, but under ctx: watermill-sql's
// Publish would take the first message's context instead.
func (t *Transport) PublishTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if t.publisher.isClosed() {
		return fmt.Errorf("publish to %s: %w", topic, ErrClosed)
	}
	q, err := t.schema.InsertQuery(wsql.InsertQueryParams{Topic: topic, Msgs: msgs})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	if _, err := tx.ExecContext(ctx, q.Query, q.Args...); err != nil {
		return fmt.Errorf("publish to %s: insert into outbox: %w", topic, err)
	}
	return nil
}

func (p *publisher) isClosed() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.closed
}
