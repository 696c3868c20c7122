package middleware

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

type loggerKey struct{}

// Correlation puts a logger carrying the message's correlation_id and
// event_id (its UUID) into the message context, for every line logged
// about it; read it with LoggerFrom.
func Correlation(base *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			l := base.With("correlation_id", wmw.MessageCorrelationID(msg), "event_id", msg.UUID,
				"handler", message.HandlerNameFromCtx(msg.Context()))
			msg.SetContext(WithLogger(msg.Context(), l))
			return h(msg)
		}
	}
}

// WithLogger returns ctx carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger in ctx, or fallback (or slog.Default when
// fallback is nil) when there is none.
func LoggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	if fallback != nil {
		return fallback
	}
	return slog.Default()
}
