package middleware

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
)

type attemptsKey struct{}

// withAttemptCounter gives the message a fresh attempt counter, shared by
// every retry of this delivery.
func withAttemptCounter(msg *message.Message) *atomic.Int32 {
	counter := new(atomic.Int32)
	msg.SetContext(context.WithValue(msg.Context(), attemptsKey{}, counter))
	return counter
}

// Attempt counts handler runs and logs each failed one, with the
// message's correlation_id and event_id. Add it inside Retry, so that it
// sees every attempt; DeadLetter, outside Retry, provides the counter.
func Attempt(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		attempt := int32(0)
		if c, ok := msg.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
			attempt = c.Add(1)
		}
		produced, err := h(msg)
		if err != nil && !errors.Is(err, context.Canceled) {
			LoggerFrom(msg.Context(), nil).Warn("processing attempt failed",
				"attempt", attempt, "permanent", IsPermanent(err), "error", err.Error())
		}
		return produced, err
	}
}

// Attempts returns how many times the handler has run for this delivery,
// the running attempt included; 0 outside the chain.
func Attempts(ctx context.Context) int {
	if c, ok := ctx.Value(attemptsKey{}).(*atomic.Int32); ok {
		return int(c.Load())
	}
	return 0
}
