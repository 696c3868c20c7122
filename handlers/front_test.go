package handlers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

func oneEvent() *IngestRequest {
	return &IngestRequest{Events: []schema.Event{{ID: uuid.New(), Type: "page.view"}}}
}

// Submit hands the request to the subscriber and returns the handler's
// verdict: nil on ack, the handler's error on nack.
func TestFrontSubmitWaitsForTheVerdict(t *testing.T) {
	t.Parallel()
	f := NewFront()
	msgs, err := f.Subscribe(context.Background(), "http")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for msg := range msgs {
			req, ok := ingestRequestFrom(msg.Context())
			if !ok {
				t.Error("message without its request")
				msg.Nack()
				continue
			}
			if msg.UUID != req.Events[0].ID.String() {
				t.Errorf("a single event's message has UUID %s, want the event_id", msg.UUID)
			}
			if req.Events[0].Type == "fail" {
				req.Err = errors.New("store down")
				msg.Nack()
				continue
			}
			req.Results = []store.RawResult{{ID: req.Events[0].ID, Outcome: store.Inserted}}
			msg.Ack()
		}
	}()
	defer f.Close()

	req := oneEvent()
	if err := f.Submit(context.Background(), req, "corr"); err != nil || len(req.Results) != 1 {
		t.Fatalf("ack: err %v, results %+v", err, req.Results)
	}
	bad := oneEvent()
	bad.Events[0].Type = "fail"
	if err := f.Submit(context.Background(), bad, "corr"); err == nil || err.Error() != "store down" {
		t.Errorf("nack: %v, want the handler's error", err)
	}
}

// Close ends the subscription (the router's handler stops) and later
// Submits fail fast with ErrClosed, also when they race the Close.
func TestFrontClose(t *testing.T) {
	t.Parallel()
	f := NewFront()
	msgs, err := f.Subscribe(context.Background(), "http")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Subscribe(context.Background(), "http"); err == nil {
		t.Error("a second Subscribe should fail")
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Nobody reads msgs: every Submit is waiting to send when Close
			// comes, and must leave with ErrClosed.
			if err := f.Submit(ctx, oneEvent(), "corr"); !errors.Is(err, ErrClosed) {
				t.Errorf("Submit during Close: %v, want ErrClosed", err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the Submits block on the send
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, open := <-msgs; open {
		t.Error("the output channel is still open after Close")
	}
	if err := f.Submit(context.Background(), oneEvent(), "corr"); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Cancelling the subscription context closes the front, as Watermill's
// router does when it stops a handler.
func TestFrontClosesWithItsSubscription(t *testing.T) {
	t.Parallel()
	f := NewFront()
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := f.Subscribe(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, open := <-msgs:
		if open {
			t.Error("a message arrived instead of the close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the output channel stayed open after the subscription ended")
	}
}
