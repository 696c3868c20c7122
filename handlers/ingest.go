package handlers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/internal/batch"
	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// Ingest is the ingest handler: it stores a request's events in raw_events
// and publishes the new ones to the transport, and acks only when both
// succeeded. A duplicate whose earlier publish is not known to have
// succeeded is published again.
//
// With an outbox transport (Outbox set) the insert and the publish are one
// transaction; otherwise the insert commits first and the publish follows.
type Ingest struct {
	Store     store.Store
	Publisher message.Publisher
	// Outbox, when set, publishes inside the store's transaction; Store
	// must then be a store.OutboxStore.
	Outbox transport.TxPublisher
	// Topic is the transport topic (stream) events are published to.
	Topic   string
	Metrics *middleware.Metrics
	Logger  *slog.Logger
	// Group commit: concurrent requests are stored and published together,
	// at most BatchRequests requests after waiting at most BatchWindow (0:
	// commit at once), each commit bounded by Timeout.
	BatchWindow   time.Duration
	BatchRequests int
	Timeout       time.Duration

	once      sync.Once
	committer *batch.Committer[[]schema.Event, ingested]
}

// ingested is one request's outcome in a group commit.
type ingested struct {
	results []store.RawResult
	err     error
}

// Handle is the router handler for messages from the Front.
func (h *Ingest) Handle(msg *message.Message) error {
	req, ok := ingestRequestFrom(msg.Context())
	if !ok {
		return errors.New("ingest: message carries no request")
	}
	if err := h.ingest(msg, req); err != nil {
		req.Err = err
		return err
	}
	return nil
}

func (h *Ingest) ingest(msg *message.Message, req *IngestRequest) error {
	h.once.Do(func() {
		h.committer = batch.New(h.BatchWindow, max(h.BatchRequests, 1), h.commit)
	})
	r, err := h.committer.Do(msg.Context(), req.Events)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return err
	}
	results := r.results
	req.Results = results
	for i, r := range results {
		switch r.Outcome {
		case store.Inserted:
			h.Metrics.Received.WithLabelValues(req.Events[i].Type).Inc()
		case store.Duplicate:
			h.Metrics.Duplicates.WithLabelValues(req.Events[i].Type).Inc()
		}
	}
	return nil
}

// commit stores and publishes the events of several requests at once (one
// multi-row insert, one publish call) and hands each request its results.
// If that fails, it tries each request alone, so that one request the
// store refuses fails alone and not every request that shared its commit.
func (h *Ingest) commit(ctx context.Context, requests [][]schema.Event) ([]ingested, error) {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	var all []schema.Event
	for _, events := range requests {
		all = append(all, events...)
	}
	results, err := h.store(ctx, all)
	out := make([]ingested, len(requests))
	if err == nil {
		for i, events := range requests {
			out[i].results, results = results[:len(events):len(events)], results[len(events):]
		}
		return out, nil
	}
	if len(requests) == 1 || ctx.Err() != nil {
		return nil, err
	}
	for i, events := range requests {
		out[i].results, out[i].err = h.store(ctx, events)
	}
	return out, nil
}

// store stores and publishes events, in one transaction with the outbox.
func (h *Ingest) store(ctx context.Context, events []schema.Event) ([]store.RawResult, error) {
	if h.Outbox != nil {
		return h.ingestOutbox(ctx, events)
	}
	return h.ingestThenPublish(ctx, events)
}

// ingestThenPublish commits the events, then publishes them. A crash
// between the two leaves them unpublished in raw_events: published_at
// stays NULL and a client's retry publishes them.
func (h *Ingest) ingestThenPublish(ctx context.Context, events []schema.Event) ([]store.RawResult, error) {
	results, err := h.Store.InsertRaw(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("store raw events: %w", err)
	}
	msgs, ids, err := toPublish(ctx, events, results)
	if err != nil || len(msgs) == 0 {
		return results, err
	}
	if err := h.Publisher.Publish(h.Topic, msgs...); err != nil {
		return nil, fmt.Errorf("publish events: %w", err)
	}
	// The events are on the transport now; failing to record that only
	// means a client's retry publishes them again, which processing
	// deduplicates, so it does not fail the request.
	if err := h.Store.MarkPublished(ctx, ids); err != nil {
		middleware.LoggerFrom(ctx, h.Logger).Warn("cannot mark events published", "error", err, "events", len(ids))
	}
	return results, nil
}

// ingestOutbox stores and queues the events in one transaction.
func (h *Ingest) ingestOutbox(ctx context.Context, events []schema.Event) ([]store.RawResult, error) {
	outbox, ok := h.Store.(store.OutboxStore)
	if !ok {
		return nil, errors.New("ingest: the outbox transport needs a store with transactions")
	}
	results, err := outbox.InsertRawAndPublish(ctx, events, func(ctx context.Context, tx *sql.Tx, results []store.RawResult) ([]uuid.UUID, error) {
		msgs, ids, err := toPublish(ctx, events, results)
		if err != nil || len(msgs) == 0 {
			return nil, err
		}
		return ids, h.Outbox.PublishTx(ctx, tx, h.Topic, msgs...)
	})
	if err != nil {
		return nil, fmt.Errorf("store and queue events: %w", err)
	}
	return results, nil
}

// toPublish returns the messages of the events that need publishing: the
// new ones, and duplicates whose first publish was never confirmed.
func toPublish(ctx context.Context, events []schema.Event, results []store.RawResult) ([]*message.Message, []uuid.UUID, error) {
	var (
		msgs []*message.Message
		ids  []uuid.UUID
	)
	for i, r := range results {
		if r.Outcome == store.Inserted || (r.Outcome == store.Duplicate && !r.Published) {
			m, err := EventMessage(ctx, events[i])
			if err != nil {
				return nil, nil, err
			}
			msgs = append(msgs, m)
			ids = append(ids, r.ID)
		}
	}
	return msgs, ids, nil
}
