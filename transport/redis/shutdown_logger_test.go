package redis

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestShutdownLoggerDemotesErrorsOnceDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var rec recordingLogger
	logger := newShutdownLogger(ctx, &rec).With(watermill.LogFields{"consumer": "c-0"})

	logger.Error("read fail", errors.New("boom"), nil)
	cancel()
	logger.Error("stop reading after error", context.Canceled, nil)

	want := []string{"ERROR read fail", "DEBUG stop reading after error"}
	if len(rec.lines) != len(want) {
		t.Fatalf("logged %q, want %q", rec.lines, want)
	}
	for i := range want {
		if rec.lines[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, rec.lines[i], want[i])
		}
	}
}

// recordingLogger records the level and message of each line.
type recordingLogger struct {
	watermill.NopLogger
	lines []string
}

func (l *recordingLogger) Error(msg string, _ error, _ watermill.LogFields) {
	l.lines = append(l.lines, "ERROR "+msg)
}

func (l *recordingLogger) Debug(msg string, _ watermill.LogFields) {
	l.lines = append(l.lines, "DEBUG "+msg)
}

func (l *recordingLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }
