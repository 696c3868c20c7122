package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/internal/batch"
	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// Process is the process handler: it validates an event against its type's
// payload rules, enriches it and writes it to processed_events once.
//
// A malformed message, an unknown type or a payload that breaks the rules
// is a permanent failure (middleware.Permanent); a store error is transient
// and retried by the middleware around the handler.
type Process struct {
	Store    store.Store
	Registry *schema.Registry
	Metrics  *middleware.Metrics
	Logger   *slog.Logger
	// Group commit: the processed rows of concurrent messages are written
	// together, at most BatchSize after waiting at most BatchWindow, each
	// write bounded by Timeout.
	BatchWindow time.Duration
	BatchSize   int
	Timeout     time.Duration
	// Commits caps the group commits in flight at once (default 4).
	Commits int

	once      sync.Once
	committer *batch.Committer[store.Processed, recorded]
}

// minCommitTimeout is the least bound of one group commit of
// processed_events rows; see record.
const minCommitTimeout = 30 * time.Second

// recorded is one event's outcome in a group commit.
type recorded struct {
	inserted bool
	err      error
}

// Handle is the router handler for messages from the transport.
func (p *Process) Handle(msg *message.Message) error {
	ctx := msg.Context()
	if reason := msg.Metadata.Get(transport.MalformedMetadataKey); reason != "" {
		return middleware.Permanent(fmt.Errorf("malformed message: %s", reason))
	}
	e, err := DecodeEventMessage(msg)
	if err != nil {
		return middleware.Permanent(err)
	}
	typ, ok := p.Registry.Lookup(e.Type)
	if !ok {
		return middleware.Permanent(fmt.Errorf("unknown event_type %q", e.Type))
	}
	enrichment, err := typ.Check(e.Payload)
	if err != nil {
		return middleware.Permanent(err)
	}
	p.once.Do(func() {
		p.committer = batch.New(p.BatchWindow, max(p.BatchSize, 1), cmp.Or(p.Commits, defaultCommits), p.record)
	})
	r, err := p.committer.Do(ctx, store.Processed{
		Event:      e,
		Enrichment: enrichment,
		Attempts:   max(middleware.Attempts(ctx), 1),
		Replay:     msg.Metadata.Get(ReplayMetadataKey) == "true",
	})
	if err == nil {
		err = r.err
	}
	if err != nil {
		return err
	}
	if p.Logger.Enabled(ctx, slog.LevelDebug) {
		log := middleware.LoggerFrom(ctx, p.Logger)
		if r.inserted {
			log.Debug("event processed", "event_type", e.Type)
		} else {
			log.Debug("event already processed; redelivery ignored", "event_type", e.Type)
		}
	}
	return nil
}

// record writes a batch of processed events in one statement. If the
// statement fails, it writes them one by one, so that one row the database
// refuses fails its own event and not the others that shared its batch
// (whose retries would keep meeting it and end dead-lettered).
//
// A commit is bounded by Timeout but never by less than minCommitTimeout:
// its callers give up at their own handler timeout, and a commit cut off
// by its deadline may have committed all the same, unseen, so that nobody
// counts its rows (a worker paused by SIGSTOP wakes up with every deadline
// passed). A longer bound lets the commit learn its outcome.
func (p *Process) record(ctx context.Context, ps []store.Processed) ([]recorded, error) {
	ctx, cancel := context.WithTimeout(ctx, max(p.Timeout, minCommitTimeout))
	defer cancel()
	p.Metrics.CommitBatch.WithLabelValues("process").Observe(float64(len(ps)))
	out := make([]recorded, len(ps))
	inserted, err := p.Store.RecordProcessedBatch(ctx, ps)
	if err == nil {
		for i := range ps {
			out[i].inserted = inserted[i]
		}
		p.count(ps, out)
		return out, nil
	}
	if len(ps) == 1 || ctx.Err() != nil {
		return nil, err
	}
	for i, pr := range ps {
		out[i].inserted, out[i].err = p.Store.RecordProcessed(ctx, pr)
	}
	p.count(ps, out)
	return out, nil
}

// count counts the rows a commit wrote. It happens here, where the write is
// known, and not in Handle: a handler whose context ended (its timeout)
// stops waiting for the commit, which may write its row all the same, and
// the retry then finds the row there and writes nothing. Counting in Handle
// missed such rows, and events_processed_total fell short of the table.
func (p *Process) count(ps []store.Processed, out []recorded) {
	for i, pr := range ps {
		if out[i].inserted {
			p.Metrics.Processed.WithLabelValues(pr.Event.Type).Inc()
			p.Metrics.EndToEnd.WithLabelValues(pr.Event.Type).Observe(time.Since(pr.Event.ReceivedAt).Seconds())
		}
	}
}

// WriteDeadLetter stores a message that failed for good in failed_events;
// it is the middleware.DeadLetter writer of the process handler. A message
// that is not a decodable event is kept too: its payload as received (as
// a JSON string when it is not JSON), under its message UUID when that is a
// UUID and a new one otherwise.
func (p *Process) WriteDeadLetter(ctx context.Context, msg *message.Message, f middleware.Failure) error {
	d := store.Failed{
		CorrelationID: wmw.MessageCorrelationID(msg),
		Error:         f.Err.Error(),
		Kind:          f.Kind,
		Attempts:      max(f.Attempts, 1),
	}
	if e, err := DecodeEventMessage(msg); err == nil {
		d.EventID, d.EventType, d.Source, d.Payload, d.Metadata = e.ID, e.Type, e.Source, e.Payload, e.Metadata
		if d.CorrelationID == "" {
			d.CorrelationID = e.CorrelationID
		}
	} else {
		d.EventID, d.EventType = uuidOrNew(msg.UUID), "unknown"
		d.Payload = json.RawMessage(msg.Payload)
		if !json.Valid(d.Payload) {
			d.Payload, _ = json.Marshal(string(msg.Payload))
		}
	}
	written, err := p.Store.RecordFailed(ctx, d)
	if err != nil {
		return err
	}
	if !written {
		middleware.LoggerFrom(msg.Context(), p.Logger).Info("event failed on a redelivery but was processed already; no dead letter",
			"event_type", d.EventType, "error_kind", d.Kind, "error", d.Error)
		return nil
	}
	p.Metrics.Failed.WithLabelValues(d.EventType, string(d.Kind)).Inc()
	middleware.LoggerFrom(msg.Context(), p.Logger).Warn("event dead-lettered",
		"event_type", d.EventType, "error_kind", d.Kind, "attempts", d.Attempts, "error", d.Error)
	return nil
}

func uuidOrNew(s string) uuid.UUID {
	if id, err := uuid.Parse(s); err == nil {
		return id
	}
	return uuid.New()
}
