package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// deliveries is the transport's delivery count of msg, 1 when it does not
// say.
func deliveries(msg *message.Message) int {
	n, err := strconv.Atoi(msg.Metadata.Get(transport.DeliveriesMetadataKey))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// Failure is what DeadLetter knows of a failed message.
type Failure struct {
	Err      error
	Kind     store.ErrorKind
	Attempts int
}

// DeadLetter records messages whose handling failed for good and then
// acknowledges them, so that one bad event never blocks the rest.
//
// It plays the part of Watermill's PoisonQueue, which it replaces because
// PoisonQueue hands the poison publisher only the error's text: the
// dead-letter row needs the error's kind (permanent or retries exhausted)
// and the attempt count, which only the typed error and the counter carry.
//
// Add it outside Retry. A cancelled message context (router shutdown) is
// never dead-lettered: the error goes on, the message is nacked and
// redelivered. If Write fails, the message is nacked too, and so kept.
type DeadLetter struct {
	// Write stores the dead letter. Its context is detached from the
	// message's, which may already be cancelled by a timeout.
	Write func(ctx context.Context, msg *message.Message, f Failure) error
	// WriteTimeout bounds Write; default DefaultDeadLetterWriteTimeout.
	WriteTimeout time.Duration
	// MaxDeliveries, when above 0, quarantines a message that the
	// transport has delivered more often than that (its
	// transport.DeliveriesMetadataKey): it goes to the dead letters as
	// retries exhausted without being handled again. Each of those
	// deliveries ended without an outcome, because the worker handling it
	// crashed, hung past the redelivery idle time or was killed; handling
	// it once more would likely do the same.
	MaxDeliveries int
	// Unavailable, if set, tells the failures that come from a dependency
	// being down (the database restarting, say) rather than from the
	// event. Such a message is not dead-lettered when its retries run out
	// but nacked, and so redelivered until the dependency is back: an
	// outage longer than the retry budget must not turn valid events into
	// dead letters.
	Unavailable func(error) bool
	Logger      *slog.Logger
}

// DefaultDeadLetterWriteTimeout bounds one dead-letter write.
const DefaultDeadLetterWriteTimeout = 10 * time.Second

// Middleware implements message.HandlerMiddleware.
func (d DeadLetter) Middleware(h message.HandlerFunc) message.HandlerFunc {
	timeout := d.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultDeadLetterWriteTimeout
	}
	return func(msg *message.Message) ([]*message.Message, error) {
		deliveryCtx := msg.Context()
		var f Failure
		if n := deliveries(msg); d.MaxDeliveries > 0 && n > d.MaxDeliveries {
			f = Failure{Kind: store.RetriesExhausted, Attempts: n, Err: fmt.Errorf(
				"quarantined: delivered %d times (more than EVENTFLOW_MAX_DELIVERIES=%d) without an outcome; "+
					"the worker handling it crashed, hung or was stopped each time", n, d.MaxDeliveries)}
		} else {
			counter := withAttemptCounter(msg)
			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}
			if deliveryCtx.Err() != nil || errors.Is(err, context.Canceled) {
				return nil, err
			}
			f = Failure{Err: err, Kind: store.RetriesExhausted, Attempts: int(counter.Load())}
			if IsPermanent(err) {
				f.Kind = store.Permanent
			} else if d.Unavailable != nil && d.Unavailable(err) {
				LoggerFrom(msg.Context(), d.Logger).Warn("a dependency is unavailable; the message is left for redelivery, not dead-lettered",
					"error", err.Error(), "attempts", f.Attempts)
				return nil, err
			}
		}
		err := f.Err
		ctx, cancel := context.WithTimeout(context.WithoutCancel(deliveryCtx), timeout)
		defer cancel()
		if werr := d.Write(ctx, msg, f); werr != nil {
			LoggerFrom(msg.Context(), d.Logger).Error("cannot write dead letter; the message will be redelivered",
				"error", werr, "failure", err.Error())
			return nil, errors.Join(err, werr)
		}
		return nil, nil
	}
}
