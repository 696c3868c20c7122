package store_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema/migrations"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/schema/store/storetest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pg, err := store.OpenPostgres(store.PostgresConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if _, err := migrations.Up(context.Background(), pg.DB().DB, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	// The sub-tests share one database: each works on its own event ids.
	storetest.Run(t, func(*testing.T) store.Store { return pg })
}
