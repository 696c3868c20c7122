package redis

import (
	"context"

	"github.com/ThreeDotsLabs/watermill"
)

// shutdownLogger logs a consumer's errors at debug level once its
// subscription has ended. Stopping a consumer makes redisstream log errors
// that are part of stopping: the read in progress fails on the closed
// connection ("stop reading after error") and an ack still being retried
// gives up ("Message Acked fail"; the message comes back after
// MaxIdleTime, as the package documentation says). At error level they
// would be noise on every deploy.
type shutdownLogger struct {
	watermill.LoggerAdapter
	ctx context.Context
}

func newShutdownLogger(ctx context.Context, logger watermill.LoggerAdapter) watermill.LoggerAdapter {
	return shutdownLogger{LoggerAdapter: logger, ctx: ctx}
}

func (l shutdownLogger) Error(msg string, err error, fields watermill.LogFields) {
	if l.ctx.Err() != nil {
		l.LoggerAdapter.Debug(msg, fields.Add(watermill.LogFields{"err": err}))
		return
	}
	l.LoggerAdapter.Error(msg, err, fields)
}

func (l shutdownLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return shutdownLogger{LoggerAdapter: l.LoggerAdapter.With(fields), ctx: l.ctx}
}
