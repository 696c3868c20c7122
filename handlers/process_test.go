package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// refusingStore refuses any write that includes the poisoned event, as
// Postgres refuses a whole statement for one bad row.
type refusingStore struct {
	store.Store
	poison uuid.UUID
}

func (s refusingStore) RecordProcessedBatch(ctx context.Context, ps []store.Processed) ([]bool, error) {
	for _, p := range ps {
		if p.Event.ID == s.poison {
			return nil, errors.New("unsupported Unicode escape sequence")
		}
	}
	return s.Store.RecordProcessedBatch(ctx, ps)
}

func (s refusingStore) RecordProcessed(ctx context.Context, p store.Processed) (bool, error) {
	in, err := s.RecordProcessedBatch(ctx, []store.Processed{p})
	if err != nil {
		return false, err
	}
	return in[0], nil
}

// One event the store refuses fails alone; the events that shared its
// group commit are processed.
func TestProcessGroupCommitIsolatesAFailingEvent(t *testing.T) {
	t.Parallel()
	poison := uuid.New()
	p := &Process{
		Store:       refusingStore{Store: store.NewMemory(), poison: poison},
		Registry:    schema.DefaultRegistry(),
		Metrics:     middleware.NewMetrics(prometheus.NewRegistry(), nil),
		Logger:      slog.New(slog.DiscardHandler),
		BatchWindow: 200 * time.Millisecond, // long enough for all five to join one batch
		BatchSize:   5,
	}
	ids := []uuid.UUID{uuid.New(), uuid.New(), poison, uuid.New(), uuid.New()}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		now := time.Now()
		msg, err := EventMessage(context.Background(), schema.Event{ID: id, Type: "page.view", Source: "web",
			Payload: json.RawMessage(`{"url":"https://example.com/"}`), OccurredAt: now, ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = p.Handle(msg) })
	}
	wg.Wait()
	for i, id := range ids {
		if (errs[i] != nil) != (id == poison) {
			t.Errorf("event %d: error %v (poisoned: %v)", i, errs[i], id == poison)
		}
	}
}

// slowStore holds every write until release is closed.
type slowStore struct {
	store.Store
	release chan struct{}
}

func (s slowStore) RecordProcessedBatch(ctx context.Context, ps []store.Processed) ([]bool, error) {
	<-s.release
	return s.Store.RecordProcessedBatch(ctx, ps)
}

// A handler whose context ends while its commit is under way gets an
// error, but the commit still writes the row, and that row is counted: the
// retry finds it there and writes nothing, so only the commit can count it.
func TestProcessCountsRowsItsCallerStoppedWaitingFor(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	st := slowStore{Store: store.NewMemory(), release: make(chan struct{})}
	p := &Process{Store: st, Registry: schema.DefaultRegistry(), Metrics: middleware.NewMetrics(reg, nil),
		Logger: slog.New(slog.DiscardHandler), BatchSize: 10}
	now := time.Now()
	msg, err := EventMessage(context.Background(), schema.Event{ID: uuid.New(), Type: "page.view", Source: "web",
		Payload: json.RawMessage(`{"url":"https://example.com/"}`), OccurredAt: now, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	msg.SetContext(ctx)
	if err := p.Handle(msg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handle: %v, want the deadline", err)
	}
	close(st.release)
	processed := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "events_processed_total" && len(mf.GetMetric()) > 0 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	deadline := time.Now().Add(5 * time.Second)
	for processed() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := processed(); n != 1 {
		t.Errorf("events_processed_total %v after the late commit, want 1", n)
	}
}
