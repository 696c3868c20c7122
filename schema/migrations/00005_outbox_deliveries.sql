-- +goose Up
-- eventflow_outbox_deliveries records the batches of outbox rows that
-- workers of the Postgres transport have handed out and not settled yet,
-- so that a message that crashes every worker that handles it is
-- quarantined after EVENTFLOW_MAX_DELIVERIES, as on Redis: a row was
-- delivered as many times as records name it. The count cannot live in
-- eventflow_outbox: the consumer holds its rows locked in a transaction
-- that a crash rolls back, count and all. So a consumer records a batch
-- in a statement of its own, committed before the batch is handed out,
-- and deletes the record with the acknowledged rows, in the transaction
-- that deletes them. What is left are the records of batches in flight
-- and of batches whose worker crashed or hung: a few rows.
--
-- One row per batch, not per event: counting every row cost a fifth of
-- the outbox's processing rate. UNLOGGED: the records must survive a
-- worker's crash, not Postgres's (a crash of the server empties the
-- table, and counting starts again).
CREATE UNLOGGED TABLE IF NOT EXISTS eventflow_outbox_deliveries (
    id         bigserial   PRIMARY KEY,
    -- The outbox offsets the batch handed out.
    offsets    bigint[]    NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE IF EXISTS eventflow_outbox_deliveries;
