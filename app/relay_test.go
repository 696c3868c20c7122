package app

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// An event committed to raw_events whose publish never happened (the
// process died between the two) is published by the relay and processed,
// with no client retry. The outbox transport has no such gap and no relay.
func TestRelayPublishesWhatIngestDidNot(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{TransportRedis, TransportMemory} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			h := setupOn(t, transport, func(c *Config) {
				c.IngestTimeout, c.RelayAfter, c.RelayInterval = time.Second, 2*time.Second, 50*time.Millisecond
			})
			id := uuid.NewString()
			// What a crash after the commit leaves behind.
			if _, err := h.db.Exec(`INSERT INTO raw_events (event_id, event_type, source, payload, correlation_id, occurred_at, received_at)
				VALUES ($1, 'page.view', 'web', '{"url":"https://example.com/x"}', 'crashed-request', now(), now() - interval '1 minute')`, id); err != nil {
				t.Fatal(err)
			}
			if _, err := h.db.Exec(`INSERT INTO eventflow_unpublished (event_ids, created_at) VALUES (ARRAY[$1::uuid], now() - interval '1 minute')`, id); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "relayed event processed", func() bool {
				return h.count("processed_events", "event_id = $1 AND correlation_id = 'crashed-request'", id) == 1
			})
			// The worker may process the event before the relay's
			// transaction marks it published.
			eventually(t, 5*time.Second, "relayed event marked published and counted", func() bool {
				return h.unpublished(id) == 0 &&
					h.metricValue("events_relayed_total") == 1
			})
			// Events that ingest published itself are never relayed.
			h.post("/v1/events", orderBody(uuid.NewString()))
			time.Sleep(3 * h.cfg.RelayInterval)
			if v := h.metricValue("events_relayed_total"); v != 1 {
				t.Errorf("events_relayed_total %v after a normal event, want still 1", v)
			}
		})
	}
}
