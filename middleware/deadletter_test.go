package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// chain builds the process handler's failure chain around h, as the app
// does: DeadLetter → Retry → Attempt → h.
func chain(h message.HandlerFunc, written *[]middleware.Failure, writeErr error) message.HandlerFunc {
	dl := middleware.DeadLetter{
		Write: func(_ context.Context, _ *message.Message, f middleware.Failure) error {
			if writeErr != nil {
				return writeErr
			}
			*written = append(*written, f)
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	retry := middleware.Retry(middleware.RetryPolicy{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}, watermill.NopLogger{})
	return dl.Middleware(retry(middleware.Attempt(h)))
}

func failing(errs ...error) (message.HandlerFunc, *int) {
	calls := 0
	return func(msg *message.Message) ([]*message.Message, error) {
		calls++
		if calls <= len(errs) {
			return nil, errs[calls-1]
		}
		return nil, nil
	}, &calls
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	transient := errors.New("connection refused")
	tests := []struct {
		name      string
		errs      []error
		wantCalls int
		wantKind  store.ErrorKind // "" means no dead letter
		attempts  int
		wantErr   bool
	}{
		{"success", nil, 1, "", 0, false},
		{"transient then success", []error{transient, transient}, 3, "", 0, false},
		{"retries exhausted", []error{transient, transient, transient, transient, transient}, 4, store.RetriesExhausted, 4, false},
		{"permanent", []error{fmt.Errorf("validate: %w", middleware.Permanent(errors.New("bad email")))}, 1, store.Permanent, 1, false},
		{"transient then permanent", []error{transient, middleware.Permanent(errors.New("bad"))}, 2, store.Permanent, 2, false},
		{"cancelled (shutdown)", []error{fmt.Errorf("query: %w", context.Canceled)}, 1, "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var written []middleware.Failure
			h, calls := failing(tc.errs...)
			_, err := chain(h, &written, nil)(message.NewMessage("id", nil))
			if *calls != tc.wantCalls {
				t.Errorf("handler ran %d times, want %d", *calls, tc.wantCalls)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want error: %v", err, tc.wantErr)
			}
			switch {
			case tc.wantKind == "" && len(written) > 0:
				t.Errorf("dead-lettered %+v, want nothing", written)
			case tc.wantKind != "" && (len(written) != 1 || written[0].Kind != tc.wantKind || written[0].Attempts != tc.attempts):
				t.Errorf("dead letters %+v, want one %s with %d attempts", written, tc.wantKind, tc.attempts)
			}
		})
	}
}

// A message whose dead letter cannot be written is nacked, not lost.
func TestDeadLetterWriteFailureNacks(t *testing.T) {
	t.Parallel()
	var written []middleware.Failure
	h, _ := failing(middleware.Permanent(errors.New("bad")))
	if _, err := chain(h, &written, errors.New("store down"))(message.NewMessage("id", nil)); err == nil {
		t.Fatal("a failed dead-letter write must return an error, so that the message is nacked")
	}
}

// A cancelled delivery context (router shutdown) is not a failure, even
// when the handler's error does not say so.
func TestDeadLetterIgnoresShutdown(t *testing.T) {
	t.Parallel()
	var written []middleware.Failure
	ctx, cancel := context.WithCancel(context.Background())
	msg := message.NewMessageWithContext(ctx, "id", nil)
	h := func(*message.Message) ([]*message.Message, error) {
		cancel()
		return nil, middleware.Permanent(errors.New("looked permanent"))
	}
	if _, err := chain(h, &written, nil)(msg); err == nil || len(written) != 0 {
		t.Errorf("err %v, dead letters %v: want the error passed on and nothing written", err, written)
	}
}

func TestAttemptsOutsideTheChain(t *testing.T) {
	t.Parallel()
	if n := middleware.Attempts(context.Background()); n != 0 {
		t.Errorf("Attempts without a counter: %d", n)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	if middleware.Permanent(nil) != nil {
		t.Error("Permanent(nil) should be nil")
	}
	base := errors.New("x")
	err := fmt.Errorf("wrapped: %w", middleware.Permanent(base))
	if !middleware.IsPermanent(err) || !errors.Is(err, base) {
		t.Error("a wrapped permanent error should be found and unwrap to its cause")
	}
	if middleware.IsPermanent(base) {
		t.Error("a plain error is not permanent")
	}
}

// A message the transport has delivered more than MaxDeliveries times is
// quarantined without being handled again; one at the limit is handled.
func TestDeadLetterQuarantinesAfterMaxDeliveries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		deliveries  string
		wantHandled bool
	}{
		{"", true},
		{"3", true},
		{"5", true},
		{"6", false},
		{"not a number", true},
	} {
		var written []middleware.Failure
		handled := false
		dl := middleware.DeadLetter{
			MaxDeliveries: 5,
			Write: func(_ context.Context, _ *message.Message, f middleware.Failure) error {
				written = append(written, f)
				return nil
			},
			Logger: slog.New(slog.DiscardHandler),
		}
		h := dl.Middleware(func(*message.Message) ([]*message.Message, error) { handled = true; return nil, nil })
		msg := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
		if tc.deliveries != "" {
			msg.Metadata.Set(transport.DeliveriesMetadataKey, tc.deliveries)
		}
		if _, err := h(msg); err != nil {
			t.Errorf("deliveries %q: %v, want the message acked", tc.deliveries, err)
		}
		if handled != tc.wantHandled {
			t.Errorf("deliveries %q: handled %v, want %v", tc.deliveries, handled, tc.wantHandled)
		}
		if tc.wantHandled {
			if len(written) != 0 {
				t.Errorf("deliveries %q: dead letters %+v, want none", tc.deliveries, written)
			}
			continue
		}
		if len(written) != 1 || written[0].Kind != store.RetriesExhausted || written[0].Attempts != 6 {
			t.Fatalf("deliveries %q: dead letters %+v, want one retries_exhausted with 6 attempts", tc.deliveries, written)
		}
		if msg := written[0].Err.Error(); !strings.Contains(msg, "quarantined") || !strings.Contains(msg, "EVENTFLOW_MAX_DELIVERIES=5") {
			t.Errorf("the dead letter's error %q should say it was quarantined and why", msg)
		}
	}
}

// A failure from a dependency that is down is not dead-lettered when the
// retries run out: the message is nacked and comes back. A permanent
// failure is dead-lettered all the same.
func TestDeadLetterLeavesUnavailableForRedelivery(t *testing.T) {
	t.Parallel()
	down := errors.New("the database system is starting up")
	var written []middleware.Failure
	dl := middleware.DeadLetter{
		Unavailable: func(err error) bool { return errors.Is(err, down) },
		Write: func(_ context.Context, _ *message.Message, f middleware.Failure) error {
			written = append(written, f)
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	retry := middleware.Retry(middleware.RetryPolicy{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}, watermill.NopLogger{})
	for _, tc := range []struct {
		err         error
		wantNack    bool
		wantWritten int
	}{
		{down, true, 0},
		{middleware.Permanent(down), false, 1},
		{errors.New("some other failure"), false, 1},
	} {
		written = nil
		h := dl.Middleware(retry(middleware.Attempt(func(*message.Message) ([]*message.Message, error) { return nil, tc.err })))
		_, err := h(message.NewMessage(watermill.NewUUID(), []byte(`{}`)))
		if (err != nil) != tc.wantNack || len(written) != tc.wantWritten {
			t.Errorf("%v: error %v, %d dead letters; want nack %v, %d dead letters", tc.err, err, len(written), tc.wantNack, tc.wantWritten)
		}
	}
}
