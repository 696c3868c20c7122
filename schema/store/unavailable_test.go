package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/lib/pq"

	"github.com/eventflow/eventflow/schema/store"
)

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{context.DeadlineExceeded, false},
		{&pq.Error{Code: "57P03"}, true},  // the database system is starting up
		{&pq.Error{Code: "57P01"}, true},  // terminating connection due to administrator command
		{&pq.Error{Code: "08006"}, true},  // connection failure
		{&pq.Error{Code: "53300"}, true},  // too many connections
		{&pq.Error{Code: "57014"}, false}, // statement timeout: the statement, not the database
		{&pq.Error{Code: "23505"}, false}, // unique violation
		{&pq.Error{Code: "22P05"}, false}, // untranslatable character: the row
		{fmt.Errorf("record processed events: %w", driver.ErrBadConn), true},
		{fmt.Errorf("record processed events: %w", io.ErrUnexpectedEOF), true},
		{sql.ErrNoRows, false},
	} {
		if got := store.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	// A real refused connection.
	db, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); !store.IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false for a refused connection", err)
	}
}
