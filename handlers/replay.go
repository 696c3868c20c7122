package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// ErrAlreadyReplayed is returned for a dead letter whose replay already
// succeeded: it is processed, and replaying it again would do nothing.
var ErrAlreadyReplayed = errors.New("dead letter already replayed and processed")

// NotReplayableError is a dead letter that cannot go through the normal path
// again, such as a message that never was an event.
type NotReplayableError struct{ Reason string }

func (e *NotReplayableError) Error() string { return "cannot replay: " + e.Reason }

// Replayer publishes dead letters again through the normal path: their
// envelope is checked against today's registry, they are published to the
// transport marked as replays, and the process handler validates them
// again. A replay that succeeds sets replayed_at and writes
// processed_events once; one that fails again updates the dead letter.
type Replayer struct {
	Store     store.Store
	Publisher message.Publisher
	Topic     string
	Registry  *schema.Registry
	Metrics   *middleware.Metrics
	Logger    *slog.Logger
}

// ReplayOne replays the dead letter with this event_id.
func (r *Replayer) ReplayOne(ctx context.Context, id uuid.UUID) error {
	d, err := r.Store.DeadLetter(ctx, id)
	if err != nil {
		return err
	}
	return r.Replay(ctx, d)
}

// Replay publishes d again. It does not wait for processing.
func (r *Replayer) Replay(ctx context.Context, d store.DeadLetter) error {
	if d.ReplayedAt != nil {
		return ErrAlreadyReplayed
	}
	if _, ok := r.Registry.Lookup(d.EventType); !ok {
		return &NotReplayableError{Reason: fmt.Sprintf("event_type %q is not registered", d.EventType)}
	}
	st, err := r.Store.Status(ctx, d.EventID)
	if errors.Is(err, store.ErrNotFound) {
		return &NotReplayableError{Reason: "no raw event with this event_id"}
	}
	if err != nil {
		return err
	}
	e := schema.Event{
		ID: d.EventID, Type: d.EventType, Source: d.Source, Payload: d.Payload, Metadata: d.Metadata,
		OccurredAt: st.ReceivedAt, ReceivedAt: st.ReceivedAt, CorrelationID: d.CorrelationID,
	}
	msg, err := EventMessage(ctx, e)
	if err != nil {
		return err
	}
	msg.Metadata.Set(ReplayMetadataKey, "true")
	// The request goes into the history before the publish: the replay may
	// be processed (and fail again) before Publish returns.
	if err := r.Store.RecordReplayRequested(ctx, d.EventID); err != nil {
		return &unavailableError{err}
	}
	if err := r.Publisher.Publish(r.Topic, msg); err != nil {
		return &unavailableError{fmt.Errorf("publish replay: %w", err)}
	}
	r.Metrics.Replayed.WithLabelValues(d.EventType).Inc()
	r.Logger.Info("dead letter replayed", "event_id", d.EventID, "event_type", d.EventType, "correlation_id", d.CorrelationID)
	return nil
}

// ReplayResult sums up a bulk replay.
type ReplayResult struct {
	Matched  int             `json:"matched"`
	Replayed int             `json:"replayed"`
	DryRun   bool            `json:"dry_run"`
	Failed   []ReplayFailure `json:"failed,omitempty"`
}

// ReplayFailure is one dead letter a bulk replay could not publish.
type ReplayFailure struct {
	EventID string `json:"event_id"`
	Error   string `json:"error"`
}

// ReplayMatching replays every pending dead letter that matches f, at most
// rate per second (0: no limit), calling progress after each. With dryRun
// it only counts them. It stops early, with the result so far, when ctx
// ends or the transport fails.
func (r *Replayer) ReplayMatching(ctx context.Context, f store.DeadLetterFilter, dryRun bool, rate float64, progress func(done, total int)) (ReplayResult, error) {
	f.IncludeReplayed = false
	total, err := r.Store.CountDeadLetters(ctx, f)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{Matched: total, DryRun: dryRun}
	if dryRun || total == 0 {
		return res, nil
	}
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	// A snapshot of the matching ids first: replays that fail again at
	// once must not be visited twice.
	var todo []store.DeadLetter
	for page := f; ; {
		page.Limit = 500
		batch, err := r.Store.ListDeadLetters(ctx, page)
		if err != nil {
			return res, err
		}
		todo = append(todo, batch...)
		if len(batch) < page.Limit {
			break
		}
		c := batch[len(batch)-1].Cursor()
		page.After = &c
	}
	for i, d := range todo {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		err := r.Replay(ctx, d)
		var unavailable *unavailableError
		switch {
		case err == nil:
			res.Replayed++
		case errors.As(err, &unavailable):
			return res, err
		default:
			res.Failed = append(res.Failed, ReplayFailure{EventID: d.EventID.String(), Error: err.Error()})
		}
		if progress != nil {
			progress(i+1, len(todo))
		}
	}
	return res, nil
}
