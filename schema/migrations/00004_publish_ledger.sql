-- +goose Up
-- eventflow_unpublished replaces raw_events.published_at. The ingest
-- handler commits events and then publishes them; a crash or a failed
-- publish between the two must not leave an event stored and never
-- processed. The statement that stores a batch in raw_events also adds one
-- row here naming the batch's new events, and a confirmed publish removes
-- it, so the relay finds the events whose publish never completed by
-- reading this small table.
--
-- It costs one row per batch instead of an UPDATE of every event (a second
-- version of each raw_events row, and an index entry to maintain), which
-- was a third of Postgres's work per event. The outbox transport never
-- writes here: its queue row commits with the event.
CREATE TABLE IF NOT EXISTS eventflow_unpublished (
    id         bigserial   PRIMARY KEY,
    event_ids  uuid[]      NOT NULL,
    -- When the first of its events was received: the relay takes a
    -- record once it is older than EVENTFLOW_RELAY_AFTER.
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS eventflow_unpublished_created_idx ON eventflow_unpublished (created_at);

INSERT INTO eventflow_unpublished (event_ids, created_at)
SELECT array_agg(event_id), min(received_at) FROM raw_events WHERE published_at IS NULL
HAVING count(*) > 0;

DROP INDEX IF EXISTS raw_events_unpublished_idx;
ALTER TABLE raw_events DROP COLUMN IF EXISTS published_at;

-- +goose Down
ALTER TABLE raw_events ADD COLUMN IF NOT EXISTS published_at timestamptz;
UPDATE raw_events r SET published_at = r.received_at
WHERE NOT EXISTS (SELECT 1 FROM eventflow_unpublished u WHERE r.event_id = ANY (u.event_ids));
CREATE INDEX IF NOT EXISTS raw_events_unpublished_idx
    ON raw_events (received_at) WHERE published_at IS NULL;
DROP TABLE IF EXISTS eventflow_unpublished;
