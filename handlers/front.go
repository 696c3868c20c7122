package handlers

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// ErrClosed is returned by Front.Submit once the front is closed.
var ErrClosed = errors.New("ingest is shutting down")

// IngestRequest is one HTTP request's events on their way through the
// ingest handler. The handler fills Results, one per event in order.
type IngestRequest struct {
	Events  []schema.Event
	Results []store.RawResult
	// Err is why the ingest handler failed, when it nacked.
	Err error
}

type ingestRequestKey struct{}

func ingestRequestFrom(ctx context.Context) (*IngestRequest, bool) {
	req, ok := ctx.Value(ingestRequestKey{}).(*IngestRequest)
	return req, ok
}

// Front is the Watermill subscriber through which HTTP requests reach the
// ingest handler. Submit turns a request into a message and waits until the
// router's handler acks or nacks it; the handler's answer travels back in
// the IngestRequest. It exists because watermill-http's subscriber can
// only answer with a status code, never a body.
type Front struct {
	out       chan *message.Message
	closing   chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	closed     bool
	subscribed bool
	sending    sync.WaitGroup // Submits between the closed check and the send
}

var _ message.Subscriber = (*Front)(nil)

// NewFront returns an open front.
func NewFront() *Front {
	return &Front{out: make(chan *message.Message), closing: make(chan struct{})}
}

// Subscribe implements message.Subscriber. The front has one consumer, the
// ingest handler; the topic is ignored.
func (f *Front) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subscribed {
		return nil, errors.New("front: already subscribed")
	}
	f.subscribed = true
	go func() {
		select {
		case <-ctx.Done():
			_ = f.Close()
		case <-f.closing:
		}
	}()
	return f.out, nil
}

// Close implements message.Subscriber: later Submits fail with ErrClosed,
// and the output channel closes, which ends the router's handler. Requests
// already handed to the handler still get their answer.
func (f *Front) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		close(f.closing)
		f.mu.Unlock()
		// A Submit that passed the closed check is leaving through its
		// closing case; once it has, nothing sends on out any more.
		f.sending.Wait()
		close(f.out)
	})
	return nil
}

// Submit hands req to the ingest handler and waits for its verdict. ctx is
// the message context: cancelling it aborts the handler's work, so callers
// pass one detached from the HTTP request (a client that hangs up must not
// leave an event half-stored) and bounded by a timeout.
func (f *Front) Submit(ctx context.Context, req *IngestRequest, correlationID string) error {
	// A single event's message carries its event_id, so that the ingest
	// handler's log lines name it; a batch's carries a fresh id.
	id := watermill.NewUUID()
	if len(req.Events) == 1 {
		id = req.Events[0].ID.String()
	}
	msg := message.NewMessageWithContext(context.WithValue(ctx, ingestRequestKey{}, req), id, nil)
	wmw.SetCorrelationID(correlationID, msg)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.sending.Add(1)
	f.mu.Unlock()
	select {
	case f.out <- msg:
		f.sending.Done()
	case <-f.closing:
		f.sending.Done()
		return ErrClosed
	case <-ctx.Done():
		f.sending.Done()
		return ctx.Err()
	}
	select {
	case <-msg.Acked():
		return nil
	case <-msg.Nacked():
		if req.Err == nil {
			req.Err = errors.New("ingest handler failed")
		}
		return req.Err
	case <-ctx.Done():
		// The handler honours ctx too and answers soon; this only keeps a
		// request from waiting on a router that stopped without answering.
		return ctx.Err()
	}
}
