package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

type deadLetterPage struct {
	DeadLetters []struct {
		EventID    string  `json:"event_id"`
		EventType  string  `json:"event_type"`
		ErrorKind  string  `json:"error_kind"`
		Error      string  `json:"error"`
		Attempts   int     `json:"attempts"`
		ReplayedAt *string `json:"replayed_at"`
		History    []struct {
			Action string `json:"action"`
		} `json:"history"`
	} `json:"dead_letters"`
	NextCursor string `json:"next_cursor"`
}

// failWhileStoreIsDown posts n order events while processing cannot write,
// so that they are dead-lettered as retries_exhausted, then brings the
// store back.
func failWhileStoreIsDown(t *testing.T, h *harness, n int) []string {
	t.Helper()
	h.store.Processing.Down()
	var ids []string
	for range n {
		id := uuid.NewString()
		if res := h.post("/v1/events", orderBody(id)); res.status != 202 {
			t.Fatalf("post: %d %s", res.status, res.body)
		}
		ids = append(ids, id)
	}
	eventually(t, 10*time.Second, "dead-lettered", func() bool {
		return h.count("failed_events", "error_kind = 'retries_exhausted'") == n
	})
	h.store.Processing.Up()
	return ids
}

func TestDeadLettersOverHTTP(t *testing.T) {
	t.Parallel()
	h := setup(t)
	exhausted := failWhileStoreIsDown(t, h, 3)
	bad := uuid.NewString()
	h.post("/v1/events", signupBody(bad, "not-an-address"))
	eventually(t, 10*time.Second, "permanent failure", func() bool { return h.count("failed_events", "") == 4 })

	var page deadLetterPage
	h.do(http.MethodGet, "/v1/dead-letters?error_kind=permanent", nil).json(t, &page)
	if len(page.DeadLetters) != 1 || page.DeadLetters[0].EventID != bad || page.DeadLetters[0].EventType != "user.signup" {
		t.Errorf("filter by kind: %+v", page)
	}
	// Pages of two: two pages, four dead letters, each once.
	seen := map[string]bool{}
	next := "/v1/dead-letters?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		page = deadLetterPage{}
		h.do(http.MethodGet, next, nil).json(t, &page)
		for _, d := range page.DeadLetters {
			seen[d.EventID] = true
		}
		next = ""
		if page.NextCursor != "" {
			next = "/v1/dead-letters?limit=2&cursor=" + page.NextCursor
		}
	}
	if len(seen) != 4 {
		t.Errorf("pagination saw %d dead letters, want 4", len(seen))
	}
	if res := h.do(http.MethodGet, "/v1/dead-letters?error_kind=sometimes&since=yesterday", nil); res.status != 400 || len(res.problem(t).Errors) != 2 {
		t.Errorf("bad parameters: %d %s", res.status, res.body)
	}

	// Dry run, then the real replay of the transient failures.
	res := h.post("/v1/dead-letters/replay", `{"error_kinds":["retries_exhausted"],"dry_run":true}`)
	if res.status != 200 || !strings.Contains(string(res.body), `"matched":3`) {
		t.Fatalf("dry run: %d %s", res.status, res.body)
	}
	if n := h.count("processed_events", ""); n != 0 {
		t.Fatalf("a dry run processed %d events", n)
	}
	res = h.post("/v1/dead-letters/replay", `{"error_kinds":["retries_exhausted"]}`)
	if res.status != 202 || !strings.Contains(string(res.body), `"replayed":3`) {
		t.Fatalf("replay: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "replayed events processed", func() bool {
		return h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(exhausted)) == 3
	})
	eventually(t, 10*time.Second, "replayed_at set", func() bool {
		return h.count("failed_events", "replayed_at IS NOT NULL") == 3
	})
	var one struct {
		ReplayedAt *string `json:"replayed_at"`
		History    []struct {
			Action string `json:"action"`
		} `json:"history"`
	}
	h.do(http.MethodGet, "/v1/dead-letters/"+exhausted[0], nil).json(t, &one)
	var actions []string
	for _, e := range one.History {
		actions = append(actions, e.Action)
	}
	if one.ReplayedAt == nil || strings.Join(actions, ",") != "failed,replay_requested,replay_succeeded" {
		t.Errorf("dead letter after replay: replayed_at %v, history %v", one.ReplayedAt, actions)
	}
	// Replaying again is refused; a replay of a processed event never makes a second row.
	if res := h.post("/v1/dead-letters/"+exhausted[0]+"/replay", ""); res.status != 409 {
		t.Errorf("second replay: %d %s, want 409", res.status, res.body)
	}
	if n := h.count("processed_events", ""); n != 3 {
		t.Errorf("processed_events %d rows, want 3", n)
	}
	// The permanent failure, replayed unfixed, fails again and stays a dead letter.
	if res := h.post("/v1/dead-letters/"+bad+"/replay", ""); res.status != 202 {
		t.Fatalf("replay one: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "failed again", func() bool {
		var d struct {
			History []struct{ Action string } `json:"history"`
		}
		h.do(http.MethodGet, "/v1/dead-letters/"+bad, nil).json(t, &d)
		return len(d.History) == 3 && d.History[2].Action == "failed"
	})
	if res := h.do(http.MethodGet, "/v1/dead-letters/"+uuid.NewString(), nil); res.status != 404 {
		t.Errorf("unknown dead letter: %d", res.status)
	}
	if v := h.metricValue("dead_letters"); v != 1 {
		t.Errorf("dead_letters gauge %v, want 1 (the unfixed one)", v)
	}
	if v := h.metricValue(`events_replayed_total{event_type="order.placed"}`); v != 3 {
		t.Errorf("events_replayed_total %v, want 3", v)
	}
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	h := setup(t)
	ids := failWhileStoreIsDown(t, h, 4)
	env := []string{
		"DATABASE_URL=" + h.cfg.DatabaseURL, "REDIS_URL=" + h.cfg.RedisURL,
		"EVENTFLOW_STREAM=" + h.cfg.Stream, "EVENTFLOW_CONSUMER_GROUP=" + h.cfg.ConsumerGroup,
		fmt.Sprintf("EVENTFLOW_HANDLER_TIMEOUT=%s", h.cfg.HandlerTimeout),
	}
	run := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := Execute(t.Context(), args, env, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := run("dlq", "list", "--kind", "retries_exhausted")
	if err != nil || strings.Count(out, "order.placed") != 4 || !strings.Contains(out, "4 of 4 shown") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	out, err = run("dlq", "list", "-o", "json", "--limit", "2")
	if err != nil || !strings.Contains(out, `"total":4`) || strings.Count(out, `"event_id"`) != 2 {
		t.Errorf("dlq list -o json: %v\n%s", err, out)
	}
	out, err = run("dlq", "show", ids[0])
	if err != nil || !strings.Contains(out, `"payload"`) || !strings.Contains(out, `"action": "failed"`) || !strings.Contains(out, `"attempts": 4`) {
		t.Errorf("dlq show: %v\n%s", err, out)
	}
	if out, err := run("dlq", "replay"); err == nil {
		t.Errorf("replay without an id, filter or --all should be refused:\n%s", out)
	}
	out, err = run("dlq", "replay", "--type", "order.placed", "--dry-run")
	if err != nil || !strings.Contains(out, "would replay 4 dead letters") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = run("dlq", "replay", "--type", "order.placed", "--rate", "50")
	if err != nil || !strings.Contains(out, "replayed 4 of 4") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "replayed events processed", func() bool {
		return h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(ids)) == 4
	})
	if n := h.count("failed_events", "replayed_at IS NULL"); n != 0 {
		t.Errorf("%d dead letters still pending after the replay", n)
	}
}
