package migrations_test

import (
	"context"
	"database/sql"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync"
	"testing"

	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema/migrations"
)

// Replicas that start together must not trip over each other: one applies
// the migrations, the others find nothing left to do.
func TestUpConcurrentReplicas(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	const replicas = 4
	applied := make([]int, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sql.Open("postgres", url)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = migrations.Up(context.Background(), db, slog.New(slog.DiscardHandler))
		}()
	}
	wg.Wait()
	total := 0
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions int
	if err := db.QueryRow(`SELECT count(*) FROM eventflow_schema_migrations WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if total != versions {
		t.Errorf("replicas applied %d migrations in all, the database records %d", total, versions)
	}
	for _, table := range []string{"raw_events", "processed_events", "failed_events"} {
		var exists bool
		if err := db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s missing after migrate (err %v)", table, err)
		}
	}
	again, err := migrations.Up(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil || again != 0 {
		t.Errorf("second run applied %d (err %v), want 0", again, err)
	}
}

func TestEnsureDatabaseCreatesAMissingDatabase(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t) // created, then dropped here to be missing
	admin, err := sql.Open("postgres", testenv.AdminDatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("DROP DATABASE " + strings.TrimPrefix(u.Path, "/")); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if err := migrations.EnsureDatabase(context.Background(), url, logger); err != nil {
		t.Fatalf("EnsureDatabase: %v", err)
	}
	if err := migrations.EnsureDatabase(context.Background(), url, logger); err != nil {
		t.Fatalf("EnsureDatabase on an existing database: %v", err)
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Errorf("database still missing: %v", err)
	}
}
