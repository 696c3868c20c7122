package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// Relay closes the gap between committing an event and publishing it, for
// transports that publish after the commit (redis, memory): it publishes
// the events stored but recorded as unpublished for longer than After —
// their ingest crashed, or its publish failed and the client never retried.
// A relayed event may also have been published by a client's retry; the
// process handler deduplicates by event_id.
type Relay struct {
	Store     store.Store
	Publisher message.Publisher
	Topic     string
	// After is how old an unpublished event must be before it is relayed;
	// longer than the ingest timeout, so that requests in flight finish
	// their own publish first.
	After time.Duration
	// Every is the pause between passes that found nothing more to do.
	Every time.Duration
	// Batch caps the events one pass publishes.
	Batch   int
	Metrics *middleware.Metrics
	Logger  *slog.Logger
}

// Run relays until ctx ends. Store or transport errors are logged and the
// pass is tried again later.
func (r *Relay) Run(ctx context.Context) {
	for {
		n, err := r.Store.RelayUnpublished(ctx, time.Now().Add(-r.After), r.Batch, r.publish)
		switch {
		case err != nil && ctx.Err() == nil:
			r.Logger.Warn("relay of unpublished events failed; trying again", "error", err)
		case n > 0:
			r.Metrics.Relayed.Add(float64(n))
			r.Logger.Info("relayed unpublished events", "events", n)
		}
		if n == r.Batch && err == nil {
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Every):
		}
	}
}

func (r *Relay) publish(ctx context.Context, events []schema.Event) error {
	msgs := make([]*message.Message, len(events))
	for i, e := range events {
		m, err := EventMessage(ctx, e)
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	if err := r.Publisher.Publish(r.Topic, msgs...); err != nil {
		return fmt.Errorf("relay publish: %w", err)
	}
	return nil
}
