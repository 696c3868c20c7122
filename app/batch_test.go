package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

type batchResult struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Results    []struct {
		Index   int    `json:"index"`
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Error   *struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		} `json:"error"`
	} `json:"results"`
}

func batch(items ...string) string {
	return `{"events":[` + strings.Join(items, ",") + `]}`
}

func pipelineBatchAllAccepted(t *testing.T, h *harness) {
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	res := h.post("/v1/events/batch", batch(orderBody(ids[0]), signupBody(ids[1], "ada@example.com"), orderBody(ids[2])))
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var b batchResult
	res.json(t, &b)
	if b.Accepted != 3 || b.Duplicates != 0 || b.Rejected != 0 || len(b.Results) != 3 {
		t.Fatalf("answer %s", res.body)
	}
	for i, r := range b.Results {
		if r.Index != i || r.EventID != ids[i] || r.Status != "accepted" {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	eventually(t, 10*time.Second, "batch processed", func() bool { return h.count("processed_events", "") == 3 })

	// The same batch again: every item a duplicate, still 202.
	res = h.post("/v1/events/batch", batch(orderBody(ids[0]), signupBody(ids[1], "ada@example.com"), orderBody(ids[2])))
	res.json(t, &b)
	if res.status != http.StatusAccepted || b.Duplicates != 3 || b.Accepted != 0 {
		t.Errorf("repeated batch: %d %s", res.status, res.body)
	}
}

func pipelineBatchPartlyRejected(t *testing.T, h *harness) {
	stored := uuid.NewString()
	h.post("/v1/events", orderBody(stored))
	good, repeated := uuid.NewString(), uuid.NewString()
	res := h.post("/v1/events/batch", batch(
		orderBody(good), // 0 accepted
		`{"event_type":"nope","source":"s","payload":{}}`, // 1 rejected 422
		`"not an object"`, // 2 rejected 400
		orderBody(stored), // 3 duplicate of an earlier request
		strings.Replace(orderBody(stored), "A-1", "B-1", 1), // 4 conflict 409
		orderBody(repeated), // 5 accepted
		orderBody(repeated), // 6 duplicate within the batch
	))
	if res.status != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	var b batchResult
	res.json(t, &b)
	want := []struct {
		status string
		code   int
	}{{"accepted", 0}, {"rejected", 422}, {"rejected", 400}, {"duplicate", 0}, {"rejected", 409}, {"accepted", 0}, {"duplicate", 0}}
	if len(b.Results) != len(want) {
		t.Fatalf("%d results: %s", len(b.Results), res.body)
	}
	for i, w := range want {
		r := b.Results[i]
		if r.Index != i || r.Status != w.status {
			t.Errorf("item %d: %+v, want %s", i, r, w.status)
		}
		if w.code != 0 && (r.Error == nil || r.Error.Status != w.code || r.Error.Type == "") {
			t.Errorf("item %d: error %+v, want status %d", i, r.Error, w.code)
		}
		if w.code == 0 && r.Error != nil {
			t.Errorf("item %d: unexpected error %+v", i, r.Error)
		}
	}
	if b.Results[1].Error != nil && (len(b.Results[1].Error.Errors) == 0 || b.Results[1].Error.Errors[0].Field != "event_type") {
		t.Errorf("item 1 should name event_type: %+v", b.Results[1].Error)
	}
	if b.Accepted != 2 || b.Duplicates != 2 || b.Rejected != 3 {
		t.Errorf("counts accepted %d duplicates %d rejected %d, want 2 2 3", b.Accepted, b.Duplicates, b.Rejected)
	}
	eventually(t, 10*time.Second, "accepted items processed", func() bool { return h.count("processed_events", "") == 3 })
	if n := h.count("raw_events", ""); n != 3 {
		t.Errorf("raw_events %d rows, want 3 (one earlier, two new)", n)
	}
}

func TestBatchEnvelopeErrors(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *Config) { c.MaxBatchEvents = 3; c.MaxBatchBytes = 4096 })
	four := batch(orderBody(uuid.NewString()), orderBody(uuid.NewString()), orderBody(uuid.NewString()), orderBody(uuid.NewString()))
	huge := fmt.Sprintf(`{"events":[{"event_type":"page.view","source":"s","payload":{"pad":%q}}]}`, strings.Repeat("x", 5000))
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"malformed", `{"events":[`, 400},
		{"events not an array", `{"events":{}}`, 400},
		{"over the event count", four, 413},
		{"over the byte limit", huge, 413},
		{"empty", `{"events":[]}`, 422},
	} {
		res := h.post("/v1/events/batch", tc.body)
		if res.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, res.status, tc.status, res.body)
			continue
		}
		res.problem(t)
	}
	if n := h.count("raw_events", ""); n != 0 {
		t.Errorf("raw_events has %d rows, want 0", n)
	}
}
