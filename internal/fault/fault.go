// Package fault injects failures in-process: wrappers around the store and
// the transport that tests turn Down and Up, so failure paths run in
// milliseconds against otherwise real parts.
package fault

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// ErrInjected is the error a downed part returns.
var ErrInjected = errors.New("fault injected: dependency down")

// Switch is a part that can be taken down. The zero value is up.
type Switch struct {
	down atomic.Bool
	// failNext counts calls still to fail after FailNext.
	failNext atomic.Int64
}

// Down makes every call fail until Up.
func (s *Switch) Down() { s.down.Store(true) }

// Up ends Down.
func (s *Switch) Up() { s.down.Store(false) }

// FailNext makes the next n calls fail.
func (s *Switch) FailNext(n int64) { s.failNext.Store(n) }

func (s *Switch) fail() error {
	if s.down.Load() {
		return ErrInjected
	}
	for {
		n := s.failNext.Load()
		if n <= 0 {
			return nil
		}
		if s.failNext.CompareAndSwap(n, n-1) {
			return ErrInjected
		}
	}
}

// Store wraps a store.Store. Writes (Switch) and RecordProcessed alone
// (Processing) can be failed separately, so a test can let ingestion work
// while processing fails.
type Store struct {
	store.Store
	Switch
	// Processing fails RecordProcessed only.
	Processing Switch
}

var _ store.Store = (*Store)(nil)

// InsertRaw implements store.Store.
func (s *Store) InsertRaw(ctx context.Context, events []schema.Event) ([]store.RawResult, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.InsertRaw(ctx, events)
}

// MarkPublished implements store.Store.
func (s *Store) MarkPublished(ctx context.Context, ids []uuid.UUID) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.MarkPublished(ctx, ids)
}

// RecordProcessed implements store.Store.
func (s *Store) RecordProcessed(ctx context.Context, p store.Processed) (bool, error) {
	if err := s.fail(); err != nil {
		return false, err
	}
	if err := s.Processing.fail(); err != nil {
		return false, err
	}
	return s.Store.RecordProcessed(ctx, p)
}

// RecordFailed implements store.Store.
func (s *Store) RecordFailed(ctx context.Context, f store.Failed) (bool, error) {
	if err := s.fail(); err != nil {
		return false, err
	}
	return s.Store.RecordFailed(ctx, f)
}

// Status implements store.Store.
func (s *Store) Status(ctx context.Context, id uuid.UUID) (store.Status, error) {
	if err := s.fail(); err != nil {
		return store.Status{}, err
	}
	return s.Store.Status(ctx, id)
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

// Transport wraps a transport.Transport whose publisher and Ping fail while
// it is down; its subscriber keeps delivering.
type Transport struct {
	transport.Transport
	Switch
}

var _ transport.Transport = (*Transport)(nil)

// Publisher implements transport.Transport.
func (t *Transport) Publisher() message.Publisher {
	return publisher{Publisher: t.Transport.Publisher(), sw: &t.Switch}
}

// Ping implements transport.Transport.
func (t *Transport) Ping(ctx context.Context) error {
	if err := t.fail(); err != nil {
		return err
	}
	return t.Transport.Ping(ctx)
}

type publisher struct {
	message.Publisher
	sw *Switch
}

func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.sw.fail(); err != nil {
		return err
	}
	return p.Publisher.Publish(topic, msgs...)
}

// InsertRawAndPublish implements store.OutboxStore when the wrapped store
// does; publish failures injected through Transport surface here.
func (s *Store) InsertRawAndPublish(ctx context.Context, events []schema.Event, publish store.PublishFunc) ([]store.RawResult, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	os, ok := s.Store.(store.OutboxStore)
	if !ok {
		return nil, errors.New("fault: the wrapped store has no outbox")
	}
	return os.InsertRawAndPublish(ctx, events, publish)
}

// PublishTx implements transport.TxPublisher when the wrapped transport
// does. While the transport is down it fails after the real publish has
// written the messages into tx, so a test sees that the failure rolls back
// both the events and their messages.
func (t *Transport) PublishTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error {
	tp, ok := t.Transport.(transport.TxPublisher)
	if !ok {
		return errors.New("fault: the wrapped transport has no outbox")
	}
	if err := tp.PublishTx(ctx, tx, topic, msgs...); err != nil {
		return err
	}
	return t.fail()
}

// OldestAge implements transport.AgeReporter when the wrapped transport
// does (and reports 0 when it does not).
func (t *Transport) OldestAge(ctx context.Context, topic string) (time.Duration, error) {
	if ages, ok := t.Transport.(transport.AgeReporter); ok {
		return ages.OldestAge(ctx, topic)
	}
	return 0, nil
}

// RecordProcessedBatch implements store.Store; Processing fails the whole
// batch.
func (s *Store) RecordProcessedBatch(ctx context.Context, ps []store.Processed) ([]bool, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	if err := s.Processing.fail(); err != nil {
		return nil, err
	}
	return s.Store.RecordProcessedBatch(ctx, ps)
}
