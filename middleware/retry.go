package middleware

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// RetryPolicy is how transient failures are retried in-process.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// InitialInterval and MaxInterval bound the exponential backoff.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// OnRetry, if set, is called before each retry.
	OnRetry func()
}

// Retry returns Watermill's Retry middleware set up for the policy:
// exponential backoff (multiplier 2) with ±20 % jitter, capped at
// MaxInterval; permanent errors and cancellations are not retried.
//
// Watermill's ShouldRetry advances the backoff once more per failure, so
// the waits grow fourfold per retry (≈2×, 8×, 32× InitialInterval …) until
// they reach MaxInterval. The whole is bounded by Config.RetryBudget,
// checked against the transport's redelivery idle time at start.
func Retry(p RetryPolicy, logger watermill.LoggerAdapter) message.HandlerMiddleware {
	return wmw.Retry{
		MaxRetries:          p.MaxRetries,
		InitialInterval:     p.InitialInterval,
		MaxInterval:         p.MaxInterval,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		ResetContextOnRetry: true,
		ShouldRetry: func(params wmw.RetryParams) bool {
			retry := !IsPermanent(params.Err) && !errors.Is(params.Err, context.Canceled)
			// ShouldRetry is asked after the last attempt too, when no retry
			// follows whatever it answers.
			if retry && params.RetryNum < p.MaxRetries && p.OnRetry != nil {
				p.OnRetry()
			}
			return retry
		},
		Logger: logger,
	}.Middleware
}
