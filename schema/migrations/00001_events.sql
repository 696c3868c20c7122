-- +goose Up
-- raw_events is the audit trail: every accepted event, exactly as received.
CREATE TABLE IF NOT EXISTS raw_events (
    event_id       uuid        PRIMARY KEY,
    event_type     text        NOT NULL,
    source         text        NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text        NOT NULL DEFAULT '',
    occurred_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    -- published_at is set once the transport confirmed the publish; a row
    -- that stays NULL is published again by a client's retry.
    published_at   timestamptz
);
CREATE INDEX IF NOT EXISTS raw_events_unpublished_idx
    ON raw_events (received_at) WHERE published_at IS NULL;

-- processed_events holds each successfully processed event exactly once.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id       uuid        PRIMARY KEY,
    event_type     text        NOT NULL,
    source         text        NOT NULL,
    payload        jsonb       NOT NULL,
    enrichment     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text        NOT NULL DEFAULT '',
    attempts       integer     NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now()
);

-- failed_events holds dead letters: events that failed permanently or ran
-- out of retries. A replay sets replayed_at.
CREATE TABLE IF NOT EXISTS failed_events (
    event_id       uuid        PRIMARY KEY,
    event_type     text        NOT NULL,
    source         text        NOT NULL DEFAULT '',
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    correlation_id text        NOT NULL DEFAULT '',
    error          text        NOT NULL,
    error_kind     text        NOT NULL CHECK (error_kind IN ('permanent', 'retries_exhausted')),
    attempts       integer     NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz
);
CREATE INDEX IF NOT EXISTS failed_events_failed_at_idx ON failed_events (failed_at);

-- +goose Down
DROP TABLE IF EXISTS failed_events;
DROP TABLE IF EXISTS processed_events;
DROP TABLE IF EXISTS raw_events;
