package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport != "redis" || cfg.HTTPAddr != ":8080" || cfg.MetricsAddr != ":9091" || cfg.Stream != "events" ||
		cfg.ConsumerGroup != "eventflow-workers" || !cfg.AutoMigrate || cfg.StrictIngest || len(cfg.APIKeys) != 0 ||
		cfg.MaxEventBytes != 64<<10 || cfg.MaxBatchEvents != 500 || cfg.MaxBatchBytes != 4<<20 ||
		cfg.DatabaseURL != "postgres://postgres@localhost:5432/eventflow?sslmode=disable" || cfg.RedisURL != "redis://localhost:6379/0" {
		t.Errorf("defaults differ from the SPEC: %+v", cfg)
	}
	if cfg.ConsumerName == "" {
		t.Error("ConsumerName should default to the host name")
	}
}

// A worker's group commits may grow as large as the events it has in
// flight: every consumer's batch, on both transports that batch.
func TestConfigInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		want int
	}{
		{nil, 8 * 256},
		{[]string{"EVENTFLOW_REDIS_READ_BATCH=32", "EVENTFLOW_WORKER_CONCURRENCY=4"}, 4 * 32},
		{[]string{"EVENTFLOW_TRANSPORT=postgres", "EVENTFLOW_POSTGRES_READ_BATCH=16"}, 8 * 16},
		{[]string{"EVENTFLOW_TRANSPORT=memory", "EVENTFLOW_REDIS_READ_BATCH=32"}, 8},
	} {
		cfg, err := LoadConfig(tc.env, "")
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if got := cfg.InFlight(); got != tc.want {
			t.Errorf("%v: InFlight() = %d, want %d", tc.env, got, tc.want)
		}
	}
}

func TestLoadConfigReadsEnvironmentAndDotenv(t *testing.T) {
	t.Parallel()
	dotenv := filepath.Join(t.TempDir(), ".env")
	content := "EVENTFLOW_STREAM=from-file\nEVENTFLOW_API_KEYS=a, b\nEVENTFLOW_HTTP_ADDR=:1111\n"
	if err := os.WriteFile(dotenv, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig([]string{"EVENTFLOW_HTTP_ADDR=:2222", "EVENTFLOW_RETRY_MAX=1", "EVENTFLOW_HANDLER_TIMEOUT=250ms"}, dotenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stream != "from-file" || strings.Join(cfg.APIKeys, "|") != "a|b" {
		t.Errorf(".env values not read: stream %q keys %v", cfg.Stream, cfg.APIKeys)
	}
	if cfg.HTTPAddr != ":2222" {
		t.Errorf("the environment should win over .env: %q", cfg.HTTPAddr)
	}
	if cfg.RetryMax != 1 || cfg.HandlerTimeout != 250*time.Millisecond {
		t.Errorf("numbers and durations: %d %v", cfg.RetryMax, cfg.HandlerTimeout)
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		name string
	}{
		{"EVENTFLOW_TRANSPORT=kafka", "EVENTFLOW_TRANSPORT"},
		{"EVENTFLOW_WORKER_CONCURRENCY=many", "EVENTFLOW_WORKER_CONCURRENCY"},
		{"EVENTFLOW_WORKER_CONCURRENCY=0", "EVENTFLOW_WORKER_CONCURRENCY"},
		{"EVENTFLOW_HANDLER_TIMEOUT=soon", "EVENTFLOW_HANDLER_TIMEOUT"},
		{"EVENTFLOW_AUTO_MIGRATE=perhaps", "EVENTFLOW_AUTO_MIGRATE"},
		{"DATABASE_URL=mysql://x", "DATABASE_URL"},
		{"REDIS_URL=localhost:6379", "REDIS_URL"},
		{"EVENTFLOW_LOG_LEVEL=LOUD", "EVENTFLOW_LOG_LEVEL"},
		{"EVENTFLOW_LOG_FORMAT=xml", "EVENTFLOW_LOG_FORMAT"},
		{"EVENTFLOW_API_KEYS=a,,b", "EVENTFLOW_API_KEYS"},
		{"EVENTFLOW_REDELIVERY_IDLE=10s", "EVENTFLOW_REDELIVERY_IDLE"},
		{"EVENTFLOW_MAX_BATCH_BYTES=-1", "EVENTFLOW_MAX_BATCH_BYTES"},
		{"EVENTFLOW_TRANSPORT=postgres\x00EVENTFLOW_WORKER_CONCURRENCY=16", "EVENTFLOW_DB_MAX_CONNS"},
		{"EVENTFLOW_RELAY_AFTER=5s", "EVENTFLOW_RELAY_AFTER"},
		{"EVENTFLOW_MAX_DELIVERIES=1", "EVENTFLOW_MAX_DELIVERIES"},
		{"EVENTFLOW_PROCESS_COMMITS=0", "EVENTFLOW_PROCESS_COMMITS"},
		{"EVENTFLOW_POSTGRES_READ_BATCH=0", "EVENTFLOW_POSTGRES_READ_BATCH"},
		{"EVENTFLOW_REDIS_TRIM_INTERVAL=-1s", "EVENTFLOW_REDIS_TRIM_INTERVAL"},
	} {
		_, err := LoadConfig(strings.Split(tc.env, "\x00"), "")
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %v, want one naming %s", tc.env, err, tc.name)
		}
	}
}

func TestCommandRejectsBadConfigBeforeStarting(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := Execute(t.Context(), []string{"serve"}, []string{"EVENTFLOW_TRANSPORT=kafka"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "EVENTFLOW_TRANSPORT") {
		t.Fatalf("serve with a bad transport: %v", err)
	}
}
