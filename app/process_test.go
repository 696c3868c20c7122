package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/handlers"
	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema"
)

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pipelinePayloadRuleViolationIsDeadLetteredOnce(t *testing.T, h *harness) {
	id := uuid.NewString()
	if res := h.post("/v1/events", signupBody(id, "not-an-address"), "X-Request-ID", "req-bad-email"); res.status != 202 {
		t.Fatalf("post: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "dead letter written", func() bool { return h.count("failed_events", "event_id = $1", id) == 1 })
	var (
		kind, errText, corr string
		attempts            int
	)
	if err := h.db.QueryRow(`SELECT error_kind, error, attempts, correlation_id FROM failed_events WHERE event_id = $1`, id).
		Scan(&kind, &errText, &attempts, &corr); err != nil {
		t.Fatal(err)
	}
	if kind != "permanent" || attempts != 1 || corr != "req-bad-email" {
		t.Errorf("dead letter kind %q attempts %d correlation %q, want permanent, 1, req-bad-email", kind, attempts, corr)
	}
	if errText == "" {
		t.Error("dead letter without an error text")
	}
	if n := h.count("processed_events", ""); n != 0 {
		t.Errorf("processed_events %d rows, want 0", n)
	}
	if v := h.metricValue(`events_failed_total{error_kind="permanent",event_type="user.signup"}`); v != 1 {
		t.Errorf("events_failed_total %v, want 1", v)
	}
	if v := h.metricValue("event_retries_total"); v != 0 {
		t.Errorf("a permanent failure was retried %v times", v)
	}
}

func pipelineTransientFailureIsRetriedThenSucceeds(t *testing.T, h *harness) {
	h.store.Processing.FailNext(2)
	id := uuid.NewString()
	if res := h.post("/v1/events", orderBody(id)); res.status != 202 {
		t.Fatalf("post: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "processed after retries", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	if n := h.count("processed_events", "event_id = $1 AND attempts = 3", id); n != 1 {
		var attempts int
		_ = h.db.Get(&attempts, `SELECT attempts FROM processed_events WHERE event_id = $1`, id)
		t.Errorf("attempts %d, want 3 (two failures, then success)", attempts)
	}
	if v := h.metricValue("event_retries_total"); v != 2 {
		t.Errorf("event_retries_total %v, want 2", v)
	}
	if n := h.count("failed_events", ""); n != 0 {
		t.Errorf("failed_events %d rows, want 0", n)
	}
}

func pipelineRetriesExhaustedIsDeadLettered(t *testing.T, h *harness) {
	h.store.Processing.Down()
	id := uuid.NewString()
	if res := h.post("/v1/events", orderBody(id)); res.status != 202 {
		t.Fatalf("post: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "dead-lettered", func() bool { return h.count("failed_events", "event_id = $1", id) == 1 })
	want := h.cfg.RetryMax + 1
	if n := h.count("failed_events", "event_id = $1 AND error_kind = 'retries_exhausted' AND attempts = $2", id, want); n != 1 {
		t.Errorf("want one retries_exhausted dead letter with %d attempts", want)
	}
	if v := h.metricValue(`events_failed_total{error_kind="retries_exhausted",event_type="order.placed"}`); v != 1 {
		t.Errorf("events_failed_total %v, want 1", v)
	}
	if v := h.metricValue("event_retries_total"); v != float64(h.cfg.RetryMax) {
		t.Errorf("event_retries_total %v, want %d", v, h.cfg.RetryMax)
	}
}

// The transport delivers at least once; the same event delivered again
// (as after a crash or a claim) leaves one processed row.
func pipelineRedeliveryMakesNoSecondRow(t *testing.T, h *harness) {
	pub := h.app.transport.Publisher()
	now := time.Now().UTC()
	e := schema.Event{ID: uuid.New(), Type: "user.login", Source: "auth", OccurredAt: now, ReceivedAt: now,
		Payload: json.RawMessage(`{"user_id":"u-9","ip":"2001:db8::1"}`), CorrelationID: "redelivered"}
	for range 3 {
		msg, err := handlers.EventMessage(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(h.cfg.Stream, msg); err != nil {
			t.Fatal(err)
		}
	}
	// A marker event published after the copies: once it is processed,
	// the copies before it have been handled too.
	marker := uuid.NewString()
	h.post("/v1/events", orderBody(marker))
	eventually(t, 10*time.Second, "marker processed", func() bool { return h.count("processed_events", "event_id = $1", marker) == 1 })
	eventually(t, 10*time.Second, "stream drained", func() bool { return h.metricValue("queue_depth") == 0 })
	if n := h.count("processed_events", "event_id = $1", e.ID); n != 1 {
		t.Errorf("processed rows for a thrice-delivered event: %d, want 1", n)
	}
	var version string
	_ = h.db.Get(&version, `SELECT enrichment->>'ip_version' FROM processed_events WHERE event_id = $1`, e.ID)
	if version != "6" {
		t.Errorf("ip_version %q, want 6", version)
	}
	if v := h.metricValue(`events_processed_total{event_type="user.login"}`); v != 1 {
		t.Errorf("events_processed_total %v, want 1", v)
	}
}

// A message that is not an eventflow event is dead-lettered, and
// consumption goes on.
func pipelineForeignMessageIsDeadLettered(t *testing.T, h *harness) {
	foreign := message.NewMessage("not-a-uuid", []byte(`{"foo":"bar"}`))
	if err := h.app.transport.Publisher().Publish(h.cfg.Stream, foreign); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	h.post("/v1/events", orderBody(id))
	eventually(t, 10*time.Second, "event after the foreign message processed", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	eventually(t, 10*time.Second, "foreign message dead-lettered", func() bool {
		return h.count("failed_events", "event_type = 'unknown' AND error_kind = 'permanent' AND payload = '{\"foo\":\"bar\"}'") == 1
	})
}

// An entry written straight into the stream by a foreign producer (no
// Watermill fields) or with a payload that is not JSON is dead-lettered,
// and consumption goes on.
func TestMalformedStreamEntryIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := setup(t)
	rc := redisClient(t, h.cfg.RedisURL)
	if err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: h.cfg.Stream, Values: map[string]any{"foo": "bar"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: h.cfg.Stream,
		Values: map[string]any{"_watermill_message_uuid": "x-1", "payload": "not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	h.post("/v1/events", orderBody(id))
	eventually(t, 10*time.Second, "event after the bad entries processed", func() bool { return h.count("processed_events", "event_id = $1", id) == 1 })
	eventually(t, 10*time.Second, "bad entries dead-lettered", func() bool {
		return h.count("failed_events", "event_type = 'unknown' AND error_kind = 'permanent'") == 2
	})
	var payload string
	_ = h.db.Get(&payload, `SELECT payload::text FROM failed_events WHERE payload ? 'foo'`)
	if payload == "" {
		t.Errorf("the foreign entry's fields are not kept in its dead letter")
	}
}

// A shutdown while an event is being retried is not a failure: the event is
// not dead-lettered, stays pending, and a later worker processes it.
func TestShutdownIsNeverAFailure(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, TransportRedis)
	cfg.RetryMax, cfg.HandlerTimeout, cfg.RetryMaxInterval = 50, 100*time.Millisecond, 200*time.Millisecond
	cfg.RedeliveryIdle = 60 * time.Second
	first := start(t, cfg, Roles{API: true, Worker: true})
	first.store.Processing.Down()
	id := uuid.NewString()
	if res := first.post("/v1/events", orderBody(id)); res.status != 202 {
		t.Fatalf("post: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "retrying", func() bool { return first.metricValue("event_retries_total") >= 1 })
	if err := first.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := first.count("failed_events", ""); n != 0 {
		t.Fatalf("shutdown dead-lettered %d events", n)
	}

	// The next worker claims the pending entry once it is idle long enough.
	cfg.RetryMax, cfg.HandlerTimeout, cfg.RetryMaxInterval = 3, time.Second, 20*time.Millisecond
	cfg.RedeliveryIdle = 10 * time.Second
	cfg.ConsumerName = testenv.Name("consumer")
	second := start(t, cfg, Roles{Worker: true})
	eventually(t, 30*time.Second, "processed by the next worker", func() bool { return second.count("processed_events", "event_id = $1", id) == 1 })
	if n := second.count("failed_events", ""); n != 0 {
		t.Errorf("failed_events %d rows, want 0", n)
	}
}

// If the stream's consumer group disappears, the worker cannot go on; the
// process exits with an error instead of accepting events nobody processes.
func TestLostConsumerGroupStopsTheProcess(t *testing.T) {
	t.Parallel()
	h := setup(t)
	if err := redisClient(t, h.cfg.RedisURL).XGroupDestroy(context.Background(), h.cfg.Stream, h.cfg.ConsumerGroup).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "process handler stopped") {
			t.Errorf("Run returned %v, want the process handler's stop", err)
		}
		h.cancel = nil // already stopped
	case <-time.After(15 * time.Second):
		t.Fatal("eventflow kept running without its consumer group")
	}
}
