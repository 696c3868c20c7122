package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
)

// SPEC §10: every line about an event carries correlation_id and event_id;
// payloads are never logged at INFO or above.
func TestLogsCarryIDsAndNoPayloads(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.store.Processing.FailNext(1) // one failed attempt, logged
	const secret = "payload-marker-7f3a"
	ok, bad := uuid.NewString(), uuid.NewString()
	h.post("/v1/events", strings.Replace(orderBody(ok), "A-1", secret, 1), "X-Request-ID", "req-logs-ok")
	h.post("/v1/events", signupBody(bad, secret+"-not-an-address"), "X-Request-ID", "req-logs-bad")
	eventually(t, 10*time.Second, "both events settled", func() bool {
		return h.count("processed_events", "event_id = $1", ok) == 1 && h.count("failed_events", "event_id = $1", bad) == 1
	})
	about := map[string]bool{} // messages of lines about an event
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		level, _ := l["level"].(string)
		if level != "DEBUG" && strings.Contains(line, secret) {
			t.Errorf("a %s line carries the payload: %s", level, line)
		}
		eid, _ := l["event_id"].(string)
		if eid != ok && eid != bad {
			continue
		}
		about[l["msg"].(string)] = true
		if cid, _ := l["correlation_id"].(string); cid != "req-logs-ok" && cid != "req-logs-bad" {
			t.Errorf("a line about event %s without its correlation_id: %s", eid, line)
		}
	}
	// SPEC §4: with no API keys, auth is off and a warning says so.
	if !strings.Contains(h.logs.String(), `"level":"WARN","msg":"EVENTFLOW_API_KEYS is empty`) {
		t.Error("no warning that auth is off")
	}
	for _, msg := range []string{"processing attempt failed", "event dead-lettered", "event processed"} {
		if !about[msg] {
			t.Errorf("no %q line carries the event's ids; lines about the events: %v", msg, about)
		}
	}
}

// Watermill's Debug and Trace lines reach the log only at levels that show
// them; the gate must not hide what the level lets through.
func TestWatermillLoggerGatesByLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level            slog.Level
		debug, trace, in bool
	}{
		{slog.LevelInfo, false, false, true},
		{slog.LevelDebug, true, false, true},
		{watermill.LevelTrace, true, true, true},
	} {
		var buf bytes.Buffer
		l := newWatermillLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))).
			With(watermill.LogFields{"handler": "process"})
		l.Trace("trace line", nil)
		l.Debug("debug line", nil)
		l.Info("info line", nil)
		out := buf.String()
		if strings.Contains(out, "trace line") != tc.trace || strings.Contains(out, "debug line") != tc.debug ||
			strings.Contains(out, "info line") != tc.in || !strings.Contains(out, `"handler":"process"`) {
			t.Errorf("level %v wrote:\n%s", tc.level, out)
		}
	}
}
