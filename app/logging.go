package app

import (
	"io"
	"log/slog"
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
