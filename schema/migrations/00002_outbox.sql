-- +goose Up
-- eventflow_outbox is the queue of the Postgres transport
-- (EVENTFLOW_TRANSPORT=postgres, package transport/postgres): the ingest
-- handler inserts a row in the transaction that stores the event in
-- raw_events, and workers lock rows with FOR UPDATE SKIP LOCKED, handle
-- them and delete them. Every row is waiting or in flight: acked rows are
-- gone. Other transports leave it empty.
CREATE TABLE IF NOT EXISTS eventflow_outbox (
    -- Orders delivery within a topic (roughly: concurrent transactions
    -- commit in any order, and consumers run side by side).
    "offset"   bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    -- The Watermill message UUID; eventflow's is the event_id.
    uuid       text        NOT NULL,
    -- The message payload, byte for byte (not jsonb, which would reformat
    -- it); convert_from(payload, 'UTF8') shows it.
    payload    bytea       NOT NULL,
    -- The message metadata, a JSON object of strings.
    metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- When the row was queued; now() - min(created_at) is the lag.
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Serves the consumers' poll: WHERE topic = $1 ORDER BY "offset" LIMIT n.
CREATE INDEX IF NOT EXISTS eventflow_outbox_topic_offset_idx
    ON eventflow_outbox (topic, "offset");

-- +goose Down
DROP TABLE IF EXISTS eventflow_outbox;
