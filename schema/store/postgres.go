package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/eventflow/eventflow/schema"
)

// Postgres is the Store on PostgreSQL (sqlx over lib/pq). Its tables are
// created by package migrations.
type Postgres struct {
	db *sqlx.DB
}

var _ Store = (*Postgres)(nil)

// PostgresConfig configures OpenPostgres.
type PostgresConfig struct {
	// URL is a lib/pq connection string or postgres:// URL.
	URL string
	// MaxConns caps open connections; default DefaultMaxConns.
	MaxConns int
}

// DefaultMaxConns is the default connection pool size.
const DefaultMaxConns = 20

// OpenPostgres opens a connection pool. It does not wait for the server to
// answer: call Ping for that.
func OpenPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	db, err := sqlx.Open("postgres", cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Postgres{db: db}, nil
}

// DB returns the underlying pool, for migrations and tools.
func (p *Postgres) DB() *sqlx.DB { return p.db }

// Ping implements Store.
func (p *Postgres) Ping(ctx context.Context) error { return p.db.PingContext(ctx) }

// Close implements Store.
func (p *Postgres) Close() error { return p.db.Close() }

// insertRawSQL inserts a batch with one statement and, for the events that
// were there already, compares the stored content with the new one. Unless
// $10 is false (the outbox, whose queue row commits with the event), it
// records the new events in eventflow_unpublished until their publish is
// confirmed; an earlier event is published if no such record names it. The
// final SELECT runs on the statement's snapshot, so it sees the rows that
// existed before the statement and not the ones ins adds: "found" without
// "inserted" means an earlier event.
const insertRawSQL = `
WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[],
	                     $6::text[], $7::timestamptz[], $8::timestamptz[], $9::bool[])
	    AS t(event_id, event_type, source, payload, metadata, correlation_id, occurred_at, received_at, has_ts)
), ins AS (
	INSERT INTO raw_events (event_id, event_type, source, payload, metadata, correlation_id, occurred_at, received_at)
	SELECT event_id, event_type, source, payload, metadata, correlation_id, occurred_at, received_at FROM input
	ORDER BY event_id -- concurrent batches lock shared ids in one order: no deadlock
	ON CONFLICT (event_id) DO NOTHING
	RETURNING event_id
), ledger AS (
	INSERT INTO eventflow_unpublished (event_ids, created_at)
	SELECT array_agg(ins.event_id), min(i.received_at) FROM ins JOIN input i ON i.event_id = ins.event_id
	HAVING count(*) > 0 AND $10::bool
)
SELECT i.event_id,
       ins.event_id IS NOT NULL AS inserted,
       r.event_id IS NOT NULL AS found,
       r.event_id IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM eventflow_unpublished u WHERE u.event_ids @> ARRAY[i.event_id]) AS published,
       COALESCE(r.event_type = i.event_type AND r.source = i.source
                AND r.payload = i.payload AND r.metadata = i.metadata
                AND (NOT i.has_ts OR r.occurred_at = i.occurred_at), false) AS same
FROM input i
LEFT JOIN ins ON ins.event_id = i.event_id
LEFT JOIN raw_events r ON r.event_id = i.event_id AND ins.event_id IS NULL`

// InsertRaw implements Store.
func (p *Postgres) InsertRaw(ctx context.Context, events []schema.Event) ([]RawResult, error) {
	return insertRaw(ctx, p.db, events, true)
}

// InsertRawAndPublish implements OutboxStore: the insert, the publish and
// the published mark commit together or not at all.
func (p *Postgres) InsertRawAndPublish(ctx context.Context, events []schema.Event, publish PublishFunc) ([]RawResult, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	results, err := insertRaw(ctx, tx, events, false)
	if err != nil {
		return nil, err
	}
	if err := publish(ctx, tx, results); err != nil {
		return nil, fmt.Errorf("publish in transaction: %w", err)
	}
	// What publish queued commits with the events: nothing to record in
	// eventflow_unpublished, and the earlier publishes of events that
	// were there already are confirmed unless recorded there (by another
	// transport, before a switch to this one).
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit raw events: %w", err)
	}
	return results, nil
}

// queryer is what insertRaw needs of a pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertRaw(ctx context.Context, q queryer, events []schema.Event, ledger bool) ([]RawResult, error) {
	results := make([]RawResult, len(events))
	firsts, repeats := firstOccurrences(events)
	pending := firsts
	// An event inserted concurrently by another transaction is neither
	// inserted by this statement nor visible to its snapshot; ON CONFLICT
	// waited for that transaction, so asking again finds its row.
	for try := 0; len(pending) > 0; try++ {
		if try == 3 {
			return nil, fmt.Errorf("insert raw events: %d events neither inserted nor found", len(pending))
		}
		var err error
		if pending, err = insertRawOnce(ctx, q, events, pending, results, ledger); err != nil {
			return nil, err
		}
	}
	judgeRepeats(events, results, repeats)
	return results, nil
}

// insertRawOnce inserts events[idx...], fills their results and returns
// the indexes that must be asked again.
func insertRawOnce(ctx context.Context, q queryer, events []schema.Event, idx []int, results []RawResult, ledger bool) ([]int, error) {
	n := len(idx)
	ids, types, sources := make([]string, n), make([]string, n), make([]string, n)
	payloads, metas, cids := make([]string, n), make([]string, n), make([]string, n)
	occurred, received := make([]string, n), make([]string, n)
	hasTS := make([]bool, n)
	byID := make(map[uuid.UUID]int, n)
	for j, i := range idx {
		e := events[i]
		meta, err := metadataJSON(e.Metadata)
		if err != nil {
			return nil, err
		}
		ids[j], types[j], sources[j] = e.ID.String(), e.Type, e.Source
		payloads[j], metas[j], cids[j] = string(e.Payload), meta, e.CorrelationID
		occurred[j], received[j] = e.OccurredAt.Format(time.RFC3339Nano), e.ReceivedAt.Format(time.RFC3339Nano)
		hasTS[j] = e.HasTimestamp
		byID[e.ID] = i
	}
	rows, err := q.QueryContext(ctx, insertRawSQL,
		pq.Array(ids), pq.Array(types), pq.Array(sources), pq.Array(payloads), pq.Array(metas),
		pq.Array(cids), pq.Array(occurred), pq.Array(received), pq.Array(hasTS), ledger)
	if err != nil {
		return nil, fmt.Errorf("insert raw events: %w", err)
	}
	defer rows.Close()
	var again []int
	for rows.Next() {
		var (
			id                               uuid.UUID
			inserted, found, published, same bool
		)
		if err := rows.Scan(&id, &inserted, &found, &published, &same); err != nil {
			return nil, fmt.Errorf("insert raw events: scan: %w", err)
		}
		i := byID[id]
		switch {
		case inserted:
			results[i] = RawResult{ID: id, Outcome: Inserted}
		case !found:
			again = append(again, i)
		case same:
			results[i] = RawResult{ID: id, Outcome: Duplicate, Published: published}
		default:
			results[i] = RawResult{ID: id, Outcome: Conflict}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert raw events: %w", err)
	}
	return again, nil
}

func metadataJSON(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode metadata: %w", err)
	}
	return string(b), nil
}

// MarkPublished implements Store.
func (p *Postgres) MarkPublished(ctx context.Context, ids []uuid.UUID) error {
	return markPublished(ctx, p.db, ids)
}

func markPublished(ctx context.Context, q queryer, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	return settleUnpublished(ctx, q, uuidStrings(ids))
}

// settleUnpublished removes ids from eventflow_unpublished: a record all of
// whose events are settled goes; one that names other events too keeps
// those.
func settleUnpublished(ctx context.Context, q queryer, ids []string) error {
	arr := pq.Array(ids)
	if _, err := q.ExecContext(ctx, `DELETE FROM eventflow_unpublished WHERE event_ids <@ $1::uuid[]`, arr); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	_, err := q.ExecContext(ctx, `
UPDATE eventflow_unpublished SET event_ids = ARRAY(SELECT x FROM unnest(event_ids) AS x WHERE x <> ALL ($1::uuid[]))
WHERE event_ids && $1::uuid[]`, arr)
	if err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

func uuidStrings(ids []uuid.UUID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return s
}

// recordProcessedSQL inserts the processed rows and resolves pending dead
// letters of the events, in one statement and so in one transaction. A
// dead letter is resolved whether this statement inserted the row or found
// it: a replay of an event that a redelivered copy had processed meanwhile
// must not stay pending forever.
const recordProcessedSQL = `
WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[], $7::int[], $8::bool[])
	    AS t(event_id, event_type, source, payload, enrichment, correlation_id, attempts, replay)
), ins AS (
	INSERT INTO processed_events (event_id, event_type, source, payload, enrichment, correlation_id, attempts)
	SELECT event_id, event_type, source, payload, enrichment, correlation_id, attempts FROM input
	ORDER BY event_id
	ON CONFLICT (event_id) DO NOTHING
	RETURNING event_id
), resolved AS (
	UPDATE failed_events f SET replayed_at = now()
	FROM (SELECT DISTINCT event_id FROM input) i
	WHERE f.event_id = i.event_id AND f.replayed_at IS NULL
	RETURNING f.event_id
), history AS (
	INSERT INTO failed_event_history (event_id, action)
	SELECT r.event_id, CASE WHEN bool_or(i.replay) THEN 'replay_succeeded' ELSE 'processed' END
	FROM resolved r JOIN input i ON i.event_id = r.event_id
	GROUP BY r.event_id
)
SELECT event_id FROM ins`

// RecordProcessed implements Store.
func (p *Postgres) RecordProcessed(ctx context.Context, pr Processed) (bool, error) {
	inserted, err := p.RecordProcessedBatch(ctx, []Processed{pr})
	if err != nil {
		return false, err
	}
	return inserted[0], nil
}

// RecordProcessedBatch implements Store.
func (p *Postgres) RecordProcessedBatch(ctx context.Context, ps []Processed) ([]bool, error) {
	n := len(ps)
	ids, types, sources := make([]string, n), make([]string, n), make([]string, n)
	payloads, enrichments, cids := make([]string, n), make([]string, n), make([]string, n)
	attempts, replays := make([]int64, n), make([]bool, n)
	for i, pr := range ps {
		enrichment := []byte("{}")
		if len(pr.Enrichment) > 0 {
			var err error
			if enrichment, err = json.Marshal(pr.Enrichment); err != nil {
				return nil, fmt.Errorf("encode enrichment: %w", err)
			}
		}
		e := pr.Event
		ids[i], types[i], sources[i] = e.ID.String(), e.Type, e.Source
		payloads[i], enrichments[i], cids[i] = string(e.Payload), string(enrichment), e.CorrelationID
		attempts[i], replays[i] = int64(pr.Attempts), pr.Replay
	}
	rows, err := p.db.QueryContext(ctx, recordProcessedSQL, pq.Array(ids), pq.Array(types), pq.Array(sources),
		pq.Array(payloads), pq.Array(enrichments), pq.Array(cids), pq.Array(attempts), pq.Array(replays))
	if err != nil {
		return nil, fmt.Errorf("record processed events: %w", err)
	}
	defer rows.Close()
	inserted := map[uuid.UUID]bool{}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("record processed events: %w", err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record processed events: %w", err)
	}
	out := make([]bool, n)
	for i, pr := range ps {
		out[i] = inserted[pr.Event.ID]
		delete(inserted, pr.Event.ID) // a repeat later in the batch did not insert
	}
	return out, nil
}

// recordFailedSQL writes the dead letter and its history entry in one
// statement.
const recordFailedSQL = `
WITH upsert AS (
	INSERT INTO failed_events (event_id, event_type, source, payload, metadata, correlation_id, error, error_kind, attempts)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
	WHERE NOT EXISTS (SELECT 1 FROM processed_events WHERE event_id = $1)
	ON CONFLICT (event_id) DO UPDATE SET
		error = EXCLUDED.error, error_kind = EXCLUDED.error_kind, attempts = EXCLUDED.attempts,
		failed_at = now(), replayed_at = NULL
	RETURNING event_id
)
INSERT INTO failed_event_history (event_id, action, error, error_kind, attempts)
SELECT event_id, 'failed', $7, $8, $9 FROM upsert`

// RecordFailed implements Store.
func (p *Postgres) RecordFailed(ctx context.Context, f Failed) (bool, error) {
	meta, err := metadataJSON(f.Metadata)
	if err != nil {
		return false, err
	}
	res, err := p.db.ExecContext(ctx, recordFailedSQL,
		f.EventID, f.EventType, f.Source, string(f.Payload), meta, f.CorrelationID, f.Error, string(f.Kind), f.Attempts)
	if err != nil {
		return false, fmt.Errorf("record failed event: %w", err)
	}
	// One history row per dead letter written.
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record failed event: %w", err)
	}
	return n > 0, nil
}

const statusSQL = `
SELECT r.event_id, r.event_type, r.received_at,
       p.processed_at, p.attempts, f.failed_at, f.attempts, f.error, f.error_kind
FROM raw_events r
LEFT JOIN processed_events p ON p.event_id = r.event_id
LEFT JOIN failed_events f ON f.event_id = r.event_id
WHERE r.event_id = $1`

// Status implements Store.
func (p *Postgres) Status(ctx context.Context, id uuid.UUID) (Status, error) {
	var (
		s                     Status
		processedAt, failedAt sql.NullTime
		pAttempts, fAttempts  sql.NullInt64
		errText, errKind      sql.NullString
	)
	err := p.db.QueryRowContext(ctx, statusSQL, id).Scan(&s.EventID, &s.EventType, &s.ReceivedAt,
		&processedAt, &pAttempts, &failedAt, &fAttempts, &errText, &errKind)
	if errors.Is(err, sql.ErrNoRows) {
		return Status{}, ErrNotFound
	}
	if err != nil {
		return Status{}, fmt.Errorf("event status: %w", err)
	}
	s.ReceivedAt = s.ReceivedAt.UTC()
	switch {
	case processedAt.Valid:
		s.Status = StatusProcessed
		s.ProcessedAt = utcPtr(processedAt.Time)
		s.Attempts = intPtr(pAttempts.Int64)
	case failedAt.Valid:
		s.Status = StatusFailed
		s.FailedAt = utcPtr(failedAt.Time)
		s.Attempts = intPtr(fAttempts.Int64)
		s.Error, s.ErrorKind = &errText.String, &errKind.String
	default:
		s.Status = StatusAccepted
	}
	return s, nil
}

func utcPtr(t time.Time) *time.Time { t = t.UTC(); return &t }

func intPtr(n int64) *int { i := int(n); return &i }

// relayTakeSQL locks the oldest records of unconfirmed publishes; SKIP
// LOCKED lets several relays (one per process) share the work without
// waiting.
const relayTakeSQL = `
SELECT event_ids FROM eventflow_unpublished
WHERE created_at < $1
ORDER BY created_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

const relaySelectSQL = `
SELECT event_id, event_type, source, payload, metadata, correlation_id, occurred_at, received_at
FROM raw_events
WHERE event_id = ANY ($1::uuid[])
ORDER BY received_at`

// RelayUnpublished implements Store.
func (p *Postgres) RelayUnpublished(ctx context.Context, cutoff time.Time, limit int, publish func(context.Context, []schema.Event) error) (int, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("relay: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var take []string
	records, err := tx.QueryContext(ctx, relayTakeSQL, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("relay: select: %w", err)
	}
	for records.Next() {
		var ids []string
		if err := records.Scan(pq.Array(&ids)); err != nil {
			records.Close()
			return 0, fmt.Errorf("relay: scan: %w", err)
		}
		take = append(take, ids...)
	}
	records.Close()
	if err := records.Err(); err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	if len(take) == 0 {
		return 0, nil
	}
	// A record of more events than limit is relayed in parts: the rest
	// stay recorded for the next round.
	take = take[:min(len(take), limit)]
	rows, err := tx.QueryContext(ctx, relaySelectSQL, pq.Array(take))
	if err != nil {
		return 0, fmt.Errorf("relay: select: %w", err)
	}
	var events []schema.Event
	for rows.Next() {
		var (
			e             schema.Event
			payload, meta []byte
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.Source, &payload, &meta, &e.CorrelationID, &e.OccurredAt, &e.ReceivedAt); err != nil {
			rows.Close()
			return 0, fmt.Errorf("relay: scan: %w", err)
		}
		e.Payload = json.RawMessage(payload)
		if err := json.Unmarshal(meta, &e.Metadata); err != nil {
			rows.Close()
			return 0, fmt.Errorf("relay: metadata: %w", err)
		}
		if len(e.Metadata) == 0 {
			e.Metadata = nil
		}
		e.OccurredAt, e.ReceivedAt = e.OccurredAt.UTC(), e.ReceivedAt.UTC()
		events = append(events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	if len(events) > 0 {
		if err := publish(ctx, events); err != nil {
			return 0, err
		}
	}
	// Every id taken is settled, including one whose event is gone.
	if err := settleUnpublished(ctx, tx, take); err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("relay: commit: %w", err)
	}
	return len(events), nil
}
