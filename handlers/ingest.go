package handlers

import (
	"cmp"
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
	// Commits caps the group commits in flight at once (default 4); the
	// requests that arrive meanwhile form the next batch.
	Commits int

	once      sync.Once
	committer *batch.Committer[[]schema.Event, ingested]
	markOnce  sync.Once
	marks     *batch.Committer[[]uuid.UUID, struct{}]
	marking   sync.WaitGroup
}

// defaultCommits is how many group commits run at once unless configured:
// enough to overlap one commit's fsync with the next batch's round trips,
// few enough that batches grow under load.
const defaultCommits = 4

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
		h.committer = batch.New(h.BatchWindow, max(h.BatchRequests, 1), cmp.Or(h.Commits, defaultCommits), h.commit)
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
	h.Metrics.CommitBatch.WithLabelValues("ingest").Observe(float64(len(all)))
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
// between the two leaves them recorded as unpublished (the store does that
// in the insert's statement): a client's retry or the relay publishes them.
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
	// The events are on the transport now. Recording that is only a hint
	// for the relay and for a client's retry, so it does not hold up the
	// request: marks of many commits are written together in the
	// background. A mark that is lost (a crash, a failed write) means the
	// relay publishes the event again, which processing deduplicates.
	h.markPublished(ids)
	return results, nil
}

// markWindow is how long published marks gather before one UPDATE writes
// them: far below EVENTFLOW_RELAY_AFTER, so the relay does not republish
// events whose mark is only on its way.
const markWindow = 20 * time.Millisecond

func (h *Ingest) markPublished(ids []uuid.UUID) {
	h.markOnce.Do(func() {
		h.marks = batch.New(markWindow, 64, 1, func(ctx context.Context, batches [][]uuid.UUID) ([]struct{}, error) {
			var all []uuid.UUID
			for _, ids := range batches {
				all = append(all, ids...)
			}
			ctx, cancel := context.WithTimeout(ctx, cmp.Or(h.Timeout, 10*time.Second))
			defer cancel()
			if err := h.Store.MarkPublished(ctx, all); err != nil {
				h.Logger.Warn("cannot mark events published; the relay will publish them again", "error", err, "events", len(all))
			}
			return make([]struct{}, len(batches)), nil
		})
	})
	h.marking.Add(1)
	go func() {
		defer h.marking.Done()
		_, _ = h.marks.Do(context.Background(), ids)
	}()
}

// Close waits for the published marks on their way to be written. Call it
// once the router, and so every ingest, has stopped.
func (h *Ingest) Close() {
	h.marking.Wait()
}

// ingestOutbox stores and queues the events in one transaction.
func (h *Ingest) ingestOutbox(ctx context.Context, events []schema.Event) ([]store.RawResult, error) {
	outbox, ok := h.Store.(store.OutboxStore)
	if !ok {
		return nil, errors.New("ingest: the outbox transport needs a store with transactions")
	}
	results, err := outbox.InsertRawAndPublish(ctx, events, func(ctx context.Context, tx *sql.Tx, results []store.RawResult) error {
		msgs, _, err := toPublish(ctx, events, results)
		if err != nil || len(msgs) == 0 {
			return err
		}
		return h.Outbox.PublishTx(ctx, tx, h.Topic, msgs...)
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
