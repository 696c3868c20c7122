// Package migrations holds eventflow's SQL migrations, embedded in the
// binary, and applies them.
//
// Up is safe to run from several replicas at once: it holds a Postgres
// session advisory lock while it migrates, so one replica applies the
// pending migrations and the others wait for it and then find nothing to do.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up applies every pending migration to db and returns how many it applied.
func Up(ctx context.Context, db *sql.DB, logger *slog.Logger) (int, error) {
	// Poll for the lock every second, for up to five minutes: a replica
	// that starts while another migrates waits for it instead of failing.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return 0, fmt.Errorf("migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName("eventflow_schema_migrations"),
	)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return len(results), nil
}
