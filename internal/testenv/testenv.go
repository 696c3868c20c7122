// Package testenv gives integration tests their own isolated share of the
// real services on the machine: a fresh Postgres database per test, and
// unique Redis stream and group names.
//
// When a service is unreachable a test is skipped, except under CI
// (CI=true), where it fails: a green CI must mean the tests ran.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the postgres driver
	"github.com/redis/go-redis/v9"
)

// Defaults for the services on this machine; EVENTFLOW_TEST_DATABASE_URL and
// EVENTFLOW_TEST_REDIS_URL override them.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// Unavailable skips the test, or fails it under CI, because a service it
// needs is not there.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI and not reachable: %v", service, err)
	}
	t.Skipf("%s not reachable, skipping (set CI=true to fail instead): %v", service, err)
}

// AdminDatabaseURL is the URL of the server's maintenance database.
func AdminDatabaseURL() string {
	if u := os.Getenv("EVENTFLOW_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// Postgres creates an empty database for this test alone, drops it when the
// test ends, and returns its URL. The database has no tables: run the
// migrations to get them.
func Postgres(t testing.TB) string {
	t.Helper()
	admin, err := sql.Open("postgres", AdminDatabaseURL())
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	name := "eventflow_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminDatabaseURL())
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns the URL of the machine's Redis after checking it
// answers. Tests isolate themselves with Name.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("EVENTFLOW_TEST_REDIS_URL")
	if u == "" {
		u = DefaultRedisURL
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("parse redis URL: %v", err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		Unavailable(t, "Redis", err)
	}
	return u
}

// DeleteStreams removes Redis keys when the test ends.
func DeleteStreams(t testing.TB, redisURL string, keys ...string) {
	t.Helper()
	t.Cleanup(func() {
		opts, err := redis.ParseURL(redisURL)
		if err != nil {
			return
		}
		client := redis.NewClient(opts)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Del(ctx, keys...).Err()
	})
}

// Name returns a name unique to this run, for streams and groups.
func Name(prefix string) string {
	return fmt.Sprintf("%s_%s", prefix, strings.ReplaceAll(uuid.NewString(), "-", "")[:12])
}
