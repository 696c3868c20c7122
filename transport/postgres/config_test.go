package postgres

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

// A pool that is never used: Validate only reads its settings.
func unusedPool(t *testing.T, maxOpen int) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", "postgres://127.0.0.1:1/none")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	db.SetMaxOpenConns(maxOpen)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	db := unusedPool(t, 0)
	cfg := Config{DB: db}
	cfg.setDefaults()
	want := Config{
		DB:             db,
		Consumers:      DefaultConsumers,
		BatchSize:      DefaultBatchSize,
		PollInterval:   DefaultPollInterval,
		AckDeadline:    DefaultAckDeadline,
		ResendInterval: DefaultResendInterval,
	}
	if cfg != want {
		t.Errorf("after setDefaults\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	set := Config{DB: db, Consumers: 3, BatchSize: 2, PollInterval: time.Second, AckDeadline: time.Minute, ResendInterval: time.Millisecond}
	got := set
	got.setDefaults()
	if got != set {
		t.Errorf("setDefaults changed set fields: got %+v, want %+v", got, set)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	db, small := unusedPool(t, 0), unusedPool(t, DefaultConsumers)
	valid := func() Config {
		cfg := Config{DB: db}
		cfg.setDefaults()
		return cfg
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // in the error
	}{
		{"no DB", func(c *Config) { c.DB = nil }, "DB is required"},
		{"no consumers", func(c *Config) { c.Consumers = -1 }, "Consumers"},
		{"pool too small", func(c *Config) { c.DB = small }, "allow at least 16"},
		{"no batch", func(c *Config) { c.BatchSize = -1 }, "BatchSize"},
		{"negative PollInterval", func(c *Config) { c.PollInterval = -time.Second }, "PollInterval"},
		{"negative AckDeadline", func(c *Config) { c.AckDeadline = -time.Second }, "AckDeadline"},
		{"hot nack loop", func(c *Config) { c.ResendInterval = -1 }, "ResendInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: got %v, want an error with %q", err, tc.want)
			}
		})
	}

	cfg := valid()
	cfg.DB = unusedPool(t, cfg.Consumers+1)
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate with a pool of Consumers+1: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "DB is required") {
		t.Errorf("New without DB: got %v, want an error naming DB", err)
	}
}
