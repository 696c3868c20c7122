package middleware

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/schema/store"
)

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
	Logger       *slog.Logger
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
		counter := withAttemptCounter(msg)
		produced, err := h(msg)
		if err == nil {
			return produced, nil
		}
		if deliveryCtx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil, err
		}
		f := Failure{Err: err, Kind: store.RetriesExhausted, Attempts: int(counter.Load())}
		if IsPermanent(err) {
			f.Kind = store.Permanent
		}
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
