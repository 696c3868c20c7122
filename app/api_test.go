package app

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func orderBody(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"order.placed","source":"checkout","timestamp":"2026-11-27T10:00:00Z",
		"payload":{"order_id":"A-1","user_id":"u-1","currency":"EUR","items":[{"sku":"a","quantity":2,"unit_price":19.99},{"sku":"b","quantity":1,"unit_price":5}]},
		"metadata":{"region":"eu"}}`, id)
}

func signupBody(id, email string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"user.signup","source":"accounts","payload":{"user_id":"u-1","email":%q}}`, id, email)
}

type accepted struct {
	EventID string `json:"event_id"`
	Status  string `json:"status"`
}

func pipelinePostEventAccepted(t *testing.T, h *harness) {
	id := uuid.NewString()
	res := h.post("/v1/events", orderBody(id), "X-Request-ID", "req-accepted-1")
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	var a accepted
	res.json(t, &a)
	if a.EventID != id || a.Status != "accepted" {
		t.Errorf("body %+v", a)
	}
	if loc := res.header.Get("Location"); loc != "/v1/events/"+id {
		t.Errorf("Location %q", loc)
	}
	if rid := res.header.Get("X-Request-ID"); rid != "req-accepted-1" {
		t.Errorf("X-Request-ID %q, want the request's", rid)
	}
	if n := h.count("raw_events", "event_id = $1 AND correlation_id = 'req-accepted-1'", id); n != 1 {
		t.Errorf("raw_events rows with the correlation id: %d, want 1", n)
	}
	eventually(t, 5*time.Second, "publish confirmed", func() bool { return h.unpublished(id) == 0 })
	eventually(t, 10*time.Second, "event processed", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	var enrichment string
	if err := h.db.Get(&enrichment, `SELECT enrichment::text FROM processed_events WHERE event_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if enrichment != `{"item_count": 3, "total_amount": 44.98}` {
		t.Errorf("enrichment %s", enrichment)
	}
	if n := h.count("processed_events", "correlation_id = 'req-accepted-1' AND attempts = 1"); n != 1 {
		t.Errorf("processed row with correlation id and attempts 1: %d", n)
	}
}

func pipelinePostEventAliasAndGeneratedIDs(t *testing.T, h *harness) {
	res := h.post("/events", `{"event_type":"page.view","source":"web","payload":{"url":"https://example.com/a?b=c"}}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	var a accepted
	res.json(t, &a)
	if _, err := uuid.Parse(a.EventID); err != nil {
		t.Errorf("server-assigned event_id %q: %v", a.EventID, err)
	}
	if _, err := uuid.Parse(res.header.Get("X-Request-ID")); err != nil {
		t.Errorf("generated X-Request-ID %q is not a UUID", res.header.Get("X-Request-ID"))
	}
	eventually(t, 10*time.Second, "page.view processed", func() bool { return h.count("processed_events", "event_id = $1", a.EventID) == 1 })
	var host, path string
	if err := h.db.QueryRow(`SELECT enrichment->>'url_host', enrichment->>'url_path' FROM processed_events WHERE event_id = $1`, a.EventID).Scan(&host, &path); err != nil {
		t.Fatal(err)
	}
	if host != "example.com" || path != "/a" {
		t.Errorf("enrichment url_host %q url_path %q", host, path)
	}
}

func pipelinePostEventDuplicateAndConflict(t *testing.T, h *harness) {
	id := uuid.NewString()
	if res := h.post("/v1/events", orderBody(id)); res.status != http.StatusAccepted {
		t.Fatalf("first post: %d %s", res.status, res.body)
	}
	res := h.post("/v1/events", orderBody(id))
	var a accepted
	res.json(t, &a)
	if res.status != http.StatusAccepted || a.Status != "duplicate" || a.EventID != id {
		t.Fatalf("repeat: %d %s", res.status, res.body)
	}
	conflicting := strings.Replace(orderBody(id), `"A-1"`, `"A-2"`, 1)
	res = h.post("/v1/events", conflicting)
	if res.status != http.StatusConflict {
		t.Fatalf("same id, other content: %d %s", res.status, res.body)
	}
	if p := res.problem(t); p.Type != "/problems/event-id-conflict" {
		t.Errorf("problem type %q", p.Type)
	}
	eventually(t, 10*time.Second, "processed", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	if n := h.count("raw_events", ""); n != 1 {
		t.Errorf("raw_events has %d rows, want 1", n)
	}
	var orderID string
	if err := h.db.Get(&orderID, `SELECT payload->>'order_id' FROM raw_events WHERE event_id = $1`, id); err != nil || orderID != "A-1" {
		t.Errorf("stored order_id %q (err %v), want the first event's A-1", orderID, err)
	}
	if v := h.metricValue(`events_received_total{event_type="order.placed"}`); v != 1 {
		t.Errorf("events_received_total %v, want 1", v)
	}
}

func TestPostEventRejections(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *Config) { c.MaxEventBytes = 1024 })
	big := fmt.Sprintf(`{"event_type":"page.view","source":"web","payload":{"url":"https://example.com/","pad":%q}}`, strings.Repeat("x", 2000))
	tests := []struct {
		name        string
		body        string
		headers     []string
		status      int
		problemType string
		fields      []string
	}{
		{"malformed JSON", `{"event_type":`, nil, 400, "/problems/malformed-request", nil},
		{"not an object", `[1,2]`, nil, 400, "/problems/malformed-request", nil},
		{"wrong JSON type", `{"event_type":"page.view","source":42,"payload":{}}`, nil, 400, "/problems/malformed-request", []string{"source"}},
		{"metadata value not a string", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com"},"metadata":{"n":1}}`, nil, 400, "/problems/malformed-request", []string{"metadata.n"}},
		{"text/plain", orderBody(uuid.NewString()), []string{"Content-Type", "text/plain"}, 415, "/problems/unsupported-media-type", nil},
		{"no content type", orderBody(uuid.NewString()), []string{"Content-Type", ""}, 415, "/problems/unsupported-media-type", nil},
		{"over the size limit", big, nil, 413, "/problems/too-large", nil},
		{"invalid envelope", `{"event_id":"nope","event_type":"no.such","source":"","payload":[1]}`, nil, 422, "/problems/invalid-event",
			[]string{"event_id", "event_type", "source", "payload"}},
		{"missing fields", `{}`, nil, 422, "/problems/invalid-event", []string{"event_type", "source", "payload"}},
		{"bad timestamp", `{"event_type":"page.view","source":"s","timestamp":"yesterday","payload":{"url":"https://e.com"}}`, nil, 422, "/problems/invalid-event", []string{"timestamp"}},
		// Hostile input: each gets a 4xx and nothing is stored.
		{"deep nesting", `{"event_type":"page.view","source":"s","payload":{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`,
			nil, 413, "/problems/too-large", nil}, // over the 1 KiB limit of this test
		{"nesting past the limit", `{"event_type":"page.view","source":"s","payload":{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`,
			nil, 422, "/problems/invalid-event", []string{"payload"}},
		{"huge number", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","n":1e999999}}`, nil, 422, "/problems/invalid-event", []string{"payload"}},
		{"repeated field", `{"event_type":"page.view","event_type":"user.login","source":"s","payload":{"url":"https://e.com"}}`, nil, 400, "/problems/malformed-request", []string{"event_type"}},
		{"NUL in a string", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com","x":"a\u0000b"}}`, nil, 422, "/problems/invalid-event", []string{"payload"}},
		{"invalid UTF-8", "{\"event_type\":\"page.view\",\"source\":\"s\xff\",\"payload\":{}}", nil, 400, "/problems/malformed-request", nil},
		{"trailing data", `{"event_type":"page.view","source":"s","payload":{"url":"https://e.com"}} garbage`, nil, 400, "/problems/malformed-request", nil},
	}
	for _, tc := range tests {
		res := h.post("/v1/events", tc.body, tc.headers...)
		if res.status != tc.status {
			t.Errorf("%s: status %d, want %d; body %s", tc.name, res.status, tc.status, res.body)
			continue
		}
		p := res.problem(t)
		if p.Type != tc.problemType {
			t.Errorf("%s: problem type %q, want %q", tc.name, p.Type, tc.problemType)
		}
		var fields []string
		for _, e := range p.Errors {
			fields = append(fields, e.Field)
			if e.Message == "" {
				t.Errorf("%s: field %s without a message", tc.name, e.Field)
			}
		}
		if tc.fields != nil && strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("%s: error fields %v, want %v", tc.name, fields, tc.fields)
		}
	}
	for _, table := range []string{"raw_events", "processed_events", "failed_events"} {
		if n := h.count(table, ""); n != 0 {
			t.Errorf("%s has %d rows after rejected requests, want 0", table, n)
		}
	}
}

// A body that announces more than the limit is refused without being read:
// the server answers while the client is still holding back the body.
func TestPostEventOversizedNotRead(t *testing.T) {
	t.Parallel()
	h := setup(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodPost, h.base+"/v1/events", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 10 << 30 // 10 GiB, never sent
	req.Header.Set("Content-Type", "application/json")
	go func() { _, _ = pw.Write([]byte(`{"event_type":`)) }()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", res.StatusCode)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *Config) { c.APIKeys = []string{"key-one", "key-two"} })
	body := orderBody(uuid.NewString())
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"no key", nil, 401},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, 401},
		{"prefix of a key", []string{"X-API-Key", "key-on"}, 401},
		{"bearer", []string{"Authorization", "Bearer key-one"}, 202},
		{"x-api-key", []string{"X-API-Key", "key-two"}, 202},
	} {
		res := h.post("/v1/events", body, tc.headers...)
		if res.status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, res.status, tc.status)
			continue
		}
		if tc.status == 401 {
			if p := res.problem(t); p.Type != "/problems/unauthorized" {
				t.Errorf("%s: problem type %q", tc.name, p.Type)
			}
		}
	}
	if res := h.do(http.MethodGet, "/v1/events/"+uuid.NewString(), nil); res.status != 401 {
		t.Errorf("GET without key: %d, want 401", res.status)
	}
	if res := h.do(http.MethodGet, "/healthz", nil); res.status != 200 {
		t.Errorf("/healthz needs no key: %d", res.status)
	}
}

func TestStoreDownAnswers503AndStoresNothing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.store.Down()
	id := uuid.NewString()
	res := h.post("/v1/events", orderBody(id))
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	if p := res.problem(t); p.Type != "/problems/unavailable" {
		t.Errorf("problem type %q", p.Type)
	}
	if ra := res.header.Get("Retry-After"); ra == "" {
		t.Error("503 without Retry-After")
	}
	ready := h.do(http.MethodGet, "/readyz", nil)
	if ready.status != 503 || !strings.Contains(string(ready.body), `"store"`) {
		t.Errorf("/readyz with the store down: %d %s", ready.status, ready.body)
	}
	h.store.Up()
	if n := h.count("raw_events", ""); n != 0 {
		t.Errorf("raw_events has %d rows after a 503, want 0", n)
	}
	if res := h.post("/v1/events", orderBody(id)); res.status != http.StatusAccepted {
		t.Errorf("retry after the store came back: %d %s", res.status, res.body)
	}
	if ready := h.do(http.MethodGet, "/readyz", nil); ready.status != 200 {
		t.Errorf("/readyz after recovery: %d %s", ready.status, ready.body)
	}
}

// A failed publish is answered 503. With the Postgres outbox nothing is
// stored (the insert and the publish are one transaction); with the other
// transports the event stays in raw_events, unpublished, and the client's
// retry with the same event_id publishes it. Either way it ends processed.
func pipelineTransportDownThenRetryPublishes(t *testing.T, h *harness) {
	h.transport.Down()
	id := uuid.NewString()
	res := h.post("/v1/events", orderBody(id))
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, body %s", res.status, res.body)
	}
	res.problem(t)
	if res.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	outbox := h.cfg.Transport == TransportPostgres
	wantRows, retryStatus := 1, "duplicate"
	if outbox {
		wantRows, retryStatus = 0, "accepted"
	}
	if n := h.count("raw_events", "event_id = $1", id); n != wantRows {
		t.Errorf("raw_events rows after the 503: %d, want %d", n, wantRows)
	}
	if n := h.unpublished(id); n != wantRows {
		t.Errorf("records of an unconfirmed publish after the 503: %d, want %d", n, wantRows)
	}
	if outbox {
		if n := h.count("eventflow_outbox", ""); n != 0 {
			t.Errorf("the outbox holds %d messages after the failed transaction, want 0", n)
		}
	}
	if ready := h.do(http.MethodGet, "/readyz", nil); ready.status != 503 || !strings.Contains(string(ready.body), `"transport"`) {
		t.Errorf("/readyz with the transport down: %d %s", ready.status, ready.body)
	}
	h.transport.Up()
	res = h.post("/v1/events", orderBody(id))
	var a accepted
	res.json(t, &a)
	if res.status != http.StatusAccepted || a.Status != retryStatus {
		t.Fatalf("retry: %d %s, want 202 %s", res.status, res.body, retryStatus)
	}
	eventually(t, 10*time.Second, "retried event processed", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	eventually(t, 5*time.Second, "publish confirmed", func() bool { return h.unpublished(id) == 0 })
}

func pipelineGetEvent(t *testing.T, h *harness) {
	ok, bad := uuid.NewString(), uuid.NewString()
	h.post("/v1/events", orderBody(ok))
	h.post("/v1/events", signupBody(bad, "not-an-address"))
	type status struct {
		EventID     string  `json:"event_id"`
		EventType   string  `json:"event_type"`
		Status      string  `json:"status"`
		ReceivedAt  string  `json:"received_at"`
		ProcessedAt *string `json:"processed_at"`
		Attempts    *int    `json:"attempts"`
		Error       *string `json:"error"`
	}
	get := func(id string) (int, status) {
		res := h.do(http.MethodGet, "/v1/events/"+id, nil)
		var s status
		if res.status == 200 {
			res.json(t, &s)
		}
		return res.status, s
	}
	eventually(t, 10*time.Second, "both events settled", func() bool {
		_, a := get(ok)
		_, b := get(bad)
		return a.Status == "processed" && b.Status == "failed"
	})
	_, s := get(ok)
	if s.EventID != ok || s.EventType != "order.placed" || s.ReceivedAt == "" || s.ProcessedAt == nil || s.Attempts == nil || *s.Attempts != 1 {
		t.Errorf("processed event: %+v", s)
	}
	_, s = get(bad)
	if s.Error == nil || !strings.Contains(*s.Error, "payload.email") || s.Attempts == nil || *s.Attempts != 1 {
		t.Errorf("failed event: %+v", s)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		res := h.do(http.MethodGet, "/v1/events/"+id, nil)
		if res.status != 404 {
			t.Errorf("GET %s: %d, want 404", id, res.status)
			continue
		}
		res.problem(t)
	}
}

// Each client (API key) gets its own budget; over it, 429 with Retry-After
// and the RateLimit headers, counted in events_rejected_total.
func TestRateLimitPerAPIKey(t *testing.T) {
	t.Parallel()
	h := setup(t, func(c *Config) {
		c.APIKeys = []string{"key-a", "key-b"}
		c.RateLimit, c.RateBurst = 0.5, 2 // two at once, then one every 2 s
	})
	post := func(key string) response {
		return h.post("/v1/events", orderBody(uuid.NewString()), "X-API-Key", key)
	}
	for i := range 2 {
		res := post("key-a")
		if res.status != http.StatusAccepted {
			t.Fatalf("request %d within the burst: %d %s", i, res.status, res.body)
		}
		if res.header.Get("RateLimit-Policy") == "" || res.header.Get("RateLimit") == "" {
			t.Errorf("request %d without RateLimit headers: %v", i, res.header)
		}
	}
	res := post("key-a")
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("third request at once: %d, want 429", res.status)
	}
	if p := res.problem(t); p.Type != "/problems/rate-limited" {
		t.Errorf("problem type %q", p.Type)
	}
	if res.header.Get("Retry-After") != "2" || !strings.Contains(res.header.Get("RateLimit"), "r=0") {
		t.Errorf("429 headers: Retry-After %q, RateLimit %q", res.header.Get("Retry-After"), res.header.Get("RateLimit"))
	}
	if res := post("key-b"); res.status != http.StatusAccepted {
		t.Errorf("another key is not limited by key-a's budget: %d", res.status)
	}
	if res := post("wrong-key"); res.status != http.StatusUnauthorized {
		t.Errorf("a wrong key: %d, want 401 before any rate limit", res.status)
	}
	if v := h.metricValue(`events_rejected_total{status="429"}`); v != 1 {
		t.Errorf(`events_rejected_total{status="429"} %v, want 1`, v)
	}
}
