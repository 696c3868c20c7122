-- +goose Up
-- failed_event_history is the story of each dead letter: every failure,
-- every replay requested, and the replay that finally succeeded (or the
-- redelivered copy that was processed: 'processed').
CREATE TABLE IF NOT EXISTS failed_event_history (
    id         bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    action     text        NOT NULL CHECK (action IN ('failed', 'replay_requested', 'replay_succeeded', 'processed')),
    error      text        NOT NULL DEFAULT '',
    error_kind text        NOT NULL DEFAULT '',
    attempts   integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS failed_event_history_event_idx ON failed_event_history (event_id, id);
CREATE INDEX IF NOT EXISTS failed_events_pending_idx ON failed_events (failed_at, event_id) WHERE replayed_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS failed_events_pending_idx;
DROP TABLE IF EXISTS failed_event_history;
