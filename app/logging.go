package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// NewLogger returns the process's one logger: JSON (or text) lines on w at
// the configured level. Watermill logs through it via
// watermill.NewSlogLogger.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	level, _ := ParseLogLevel(cfg.LogLevel) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newWatermillLogger bridges Watermill's logger into l. Watermill's slog
// adapter turns a line's fields into attributes before slog checks the
// level, and its router writes a Trace line for every message; this one
// drops Trace and Debug lines first when l would not write them.
func newWatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	ctx := context.Background()
	return levelGated{
		LoggerAdapter: watermill.NewSlogLogger(l),
		debug:         l.Enabled(ctx, slog.LevelDebug),
		trace:         l.Enabled(ctx, watermill.LevelTrace),
	}
}

type levelGated struct {
	watermill.LoggerAdapter
	debug, trace bool
}

func (g levelGated) Debug(msg string, fields watermill.LogFields) {
	if g.debug {
		g.LoggerAdapter.Debug(msg, fields)
	}
}

func (g levelGated) Trace(msg string, fields watermill.LogFields) {
	if g.trace {
		g.LoggerAdapter.Trace(msg, fields)
	}
}

func (g levelGated) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return levelGated{LoggerAdapter: g.LoggerAdapter.With(fields), debug: g.debug, trace: g.trace}
}
