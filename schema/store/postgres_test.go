package store_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"

	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/migrations"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/schema/store/storetest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

// openPostgres returns a Postgres store on a fresh, migrated database.
func openPostgres(t *testing.T) *store.Postgres {
	t.Helper()
	pg, err := store.OpenPostgres(store.PostgresConfig{URL: testenv.Postgres(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if _, err := migrations.Up(context.Background(), pg.DB().DB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return pg
}

func TestPostgresInsertRawAndPublish(t *testing.T) {
	t.Parallel()
	pg := openPostgres(t)
	ctx := context.Background()
	if _, err := pg.DB().Exec(`CREATE TABLE queued (event_id uuid)`); err != nil {
		t.Fatal(err)
	}
	queue := func(fail bool) store.PublishFunc {
		return func(ctx context.Context, tx *sql.Tx, results []store.RawResult) error {
			for _, r := range results {
				if _, err := tx.ExecContext(ctx, `INSERT INTO queued VALUES ($1)`, r.ID); err != nil {
					return err
				}
			}
			if fail {
				return errors.New("publish failed after the insert")
			}
			return nil
		}
	}
	count := func(q string, args ...any) int {
		var n int
		if err := pg.DB().Get(&n, q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}

	failed := storetest.NewEvent()
	if _, err := pg.InsertRawAndPublish(ctx, []schema.Event{failed}, queue(true)); err == nil {
		t.Fatal("a failing publish must fail InsertRawAndPublish")
	}
	if n := count(`SELECT count(*) FROM raw_events WHERE event_id = $1`, failed.ID); n != 0 {
		t.Errorf("raw_events kept %d rows of a transaction whose publish failed", n)
	}
	if n := count(`SELECT count(*) FROM queued`); n != 0 {
		t.Errorf("the queue kept %d messages of a transaction whose publish failed", n)
	}

	ok := storetest.NewEvent()
	res, err := pg.InsertRawAndPublish(ctx, []schema.Event{ok}, queue(false))
	if err != nil || len(res) != 1 || res[0].Outcome != store.Inserted {
		t.Fatalf("InsertRawAndPublish: %+v, %v", res, err)
	}
	if n := count(`SELECT count(*) FROM raw_events WHERE event_id = $1`, ok.ID); n != 1 {
		t.Errorf("the event was not stored")
	}
	if n := count(`SELECT count(*) FROM eventflow_unpublished WHERE $1::uuid = ANY (event_ids)`, ok.ID); n != 0 {
		t.Errorf("the outbox's publish commits with the event, yet it is recorded as unconfirmed")
	}
	again, err := pg.InsertRaw(ctx, []schema.Event{ok})
	if err != nil || again[0].Outcome != store.Duplicate || !again[0].Published {
		t.Errorf("the same event again: %+v, %v; want a duplicate whose publish is confirmed", again, err)
	}
	if n := count(`SELECT count(*) FROM queued WHERE event_id = $1`, ok.ID); n != 1 {
		t.Errorf("the event was not queued")
	}
}

// Batches that share event ids in opposite orders, sent at once, must not
// deadlock (a spurious 503 for the client).
func TestPostgresOverlappingBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	pg := openPostgres(t)
	ctx := context.Background()
	for round := range 50 {
		a, b := storetest.NewEvent(), storetest.NewEvent()
		errs := make(chan error, 2)
		for _, batch := range [][]schema.Event{{a, b}, {b, a}} {
			go func() { _, err := pg.InsertRaw(ctx, batch); errs <- err }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
