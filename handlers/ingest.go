package handlers

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema/store"
)

// Ingest is the ingest handler: it stores a request's events in raw_events
// and publishes the new ones to the transport, in that order, and acks only
// when both succeeded. A duplicate whose earlier publish is not known to
// have succeeded is published again.
type Ingest struct {
	Store     store.Store
	Publisher message.Publisher
	// Topic is the transport topic (stream) events are published to.
	Topic   string
	Metrics *middleware.Metrics
	Logger  *slog.Logger
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
	ctx := msg.Context()
	results, err := h.Store.InsertRaw(ctx, req.Events)
	if err != nil {
		return fmt.Errorf("store raw events: %w", err)
	}
	var (
		out []*message.Message
		ids []uuid.UUID
	)
	for i, r := range results {
		if r.Outcome == store.Inserted || (r.Outcome == store.Duplicate && !r.Published) {
			m, err := EventMessage(ctx, req.Events[i])
			if err != nil {
				return err
			}
			out = append(out, m)
			ids = append(ids, r.ID)
		}
	}
	if len(out) > 0 {
		if err := h.Publisher.Publish(h.Topic, out...); err != nil {
			return fmt.Errorf("publish events: %w", err)
		}
		// The events are on the transport now; failing to record that only
		// means a client's retry publishes them again, which processing
		// deduplicates, so it does not fail the request.
		if err := h.Store.MarkPublished(ctx, ids); err != nil {
			middleware.LoggerFrom(ctx, h.Logger).Warn("cannot mark events published", "error", err, "events", len(ids))
		}
	}
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
