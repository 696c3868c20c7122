package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/lib/pq"
)

// EnsureDatabase creates the database that databaseURL names when the
// server answers that it does not exist, connecting to the server's
// "postgres" database to do so. It lets a fresh machine run eventflow with
// the default DATABASE_URL and nothing else.
func EnsureDatabase(ctx context.Context, databaseURL string, logger *slog.Logger) error {
	err := ping(ctx, databaseURL)
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "3D000" { // invalid_catalog_name
		return err
	}
	u, perr := url.Parse(databaseURL)
	if perr != nil || len(u.Path) < 2 {
		return err
	}
	name := u.Path[1:]
	u.Path = "/postgres"
	db, oerr := sql.Open("postgres", u.String())
	if oerr != nil {
		return err
	}
	defer db.Close()
	if _, cerr := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); cerr != nil {
		var dup *pq.Error
		if !errors.As(cerr, &dup) || dup.Code != "42P04" { // duplicate_database: a replica won
			return fmt.Errorf("create database %q: %w", name, cerr)
		}
	}
	logger.Info("created database", "database", name)
	return nil
}

func ping(ctx context.Context, databaseURL string) error {
	db, err := sql.Open("postgres", databaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}
