package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

const deadLetterColumns = `event_id, event_type, source, payload, metadata, correlation_id,
	error, error_kind, attempts, failed_at, replayed_at`

// deadLetterWhere turns a filter into a WHERE clause and its arguments.
func deadLetterWhere(f DeadLetterFilter, paginate bool) (string, []any) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !f.IncludeReplayed {
		conds = append(conds, "replayed_at IS NULL")
	}
	if len(f.EventTypes) > 0 {
		conds = append(conds, "event_type = ANY("+arg(pq.Array(f.EventTypes))+"::text[])")
	}
	if len(f.Kinds) > 0 {
		kinds := make([]string, len(f.Kinds))
		for i, k := range f.Kinds {
			kinds[i] = string(k)
		}
		conds = append(conds, "error_kind = ANY("+arg(pq.Array(kinds))+"::text[])")
	}
	if !f.FailedFrom.IsZero() {
		conds = append(conds, "failed_at >= "+arg(f.FailedFrom))
	}
	if !f.FailedTo.IsZero() {
		conds = append(conds, "failed_at < "+arg(f.FailedTo))
	}
	if paginate && f.After != nil {
		conds = append(conds, fmt.Sprintf("(failed_at, event_id) > (%s, %s)", arg(f.After.FailedAt), arg(f.After.EventID)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListDeadLetters implements DeadLetters.
func (p *Postgres) ListDeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	where, args := deadLetterWhere(f, true)
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultDeadLetterLimit
	}
	args = append(args, limit)
	rows, err := p.db.QueryContext(ctx, "SELECT "+deadLetterColumns+" FROM failed_events"+where+
		fmt.Sprintf(" ORDER BY failed_at, event_id LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

func scanDeadLetter(row interface{ Scan(...any) error }) (DeadLetter, error) {
	var (
		d             DeadLetter
		payload, meta []byte
		kind          string
		replayed      sql.NullTime
	)
	if err := row.Scan(&d.EventID, &d.EventType, &d.Source, &payload, &meta, &d.CorrelationID,
		&d.Error, &kind, &d.Attempts, &d.FailedAt, &replayed); err != nil {
		return DeadLetter{}, err
	}
	d.Payload, d.Kind, d.FailedAt = json.RawMessage(payload), ErrorKind(kind), d.FailedAt.UTC()
	if err := json.Unmarshal(meta, &d.Metadata); err != nil {
		return DeadLetter{}, fmt.Errorf("decode dead letter metadata: %w", err)
	}
	if len(d.Metadata) == 0 {
		d.Metadata = nil
	}
	if replayed.Valid {
		d.ReplayedAt = utcPtr(replayed.Time)
	}
	return d, nil
}

// CountDeadLetters implements DeadLetters.
func (p *Postgres) CountDeadLetters(ctx context.Context, f DeadLetterFilter) (int, error) {
	where, args := deadLetterWhere(f, false)
	var n int
	if err := p.db.QueryRowContext(ctx, "SELECT count(*) FROM failed_events"+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// DeadLetter implements DeadLetters.
func (p *Postgres) DeadLetter(ctx context.Context, id uuid.UUID) (DeadLetter, error) {
	d, err := scanDeadLetter(p.db.QueryRowContext(ctx, "SELECT "+deadLetterColumns+" FROM failed_events WHERE event_id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return DeadLetter{}, ErrNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter: %w", err)
	}
	rows, err := p.db.QueryContext(ctx,
		`SELECT at, action, error, error_kind, attempts FROM failed_event_history WHERE event_id = $1 ORDER BY id`, id)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.At, &h.Action, &h.Error, &h.ErrorKind, &h.Attempts); err != nil {
			return DeadLetter{}, fmt.Errorf("dead letter history: %w", err)
		}
		h.At = h.At.UTC()
		d.History = append(d.History, h)
	}
	return d, rows.Err()
}

// RecordReplayRequested implements DeadLetters.
func (p *Postgres) RecordReplayRequested(ctx context.Context, id uuid.UUID) error {
	if _, err := p.db.ExecContext(ctx,
		`INSERT INTO failed_event_history (event_id, action) VALUES ($1, 'replay_requested')`, id); err != nil {
		return fmt.Errorf("record replay: %w", err)
	}
	return nil
}

// DeadLetterStats implements DeadLetters.
func (p *Postgres) DeadLetterStats(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullTime
	)
	if err := p.db.QueryRowContext(ctx,
		`SELECT count(*), min(failed_at) FROM failed_events WHERE replayed_at IS NULL`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("dead letter stats: %w", err)
	}
	return n, oldest.Time, nil
}

// PurgeDeadLetters implements DeadLetters.
func (p *Postgres) PurgeDeadLetters(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := p.db.QueryRowContext(ctx, `
		WITH gone AS (DELETE FROM failed_events WHERE failed_at < $1 RETURNING event_id),
		     history AS (DELETE FROM failed_event_history WHERE event_id IN (SELECT event_id FROM gone))
		SELECT count(*) FROM gone`, cutoff).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return n, nil
}
