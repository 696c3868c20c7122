package app

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// Config is eventflow's whole configuration, read from the environment
// (and a .env file, whose values the real environment overrides) in one
// place: LoadConfig. Each field's env tag names its variable and envDefault
// its default; the README's configuration table lists them all.
type Config struct {
	// Transport carries events from ingest to processing: redis, postgres
	// or memory.
	Transport string `env:"EVENTFLOW_TRANSPORT" envDefault:"redis"`
	// DatabaseURL is the Postgres connection URL.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@localhost:5432/eventflow?sslmode=disable"`
	// RedisURL is the Redis connection URL.
	RedisURL string `env:"REDIS_URL" envDefault:"redis://localhost:6379/0"`
	// HTTPAddr is the public API's listen address.
	HTTPAddr string `env:"EVENTFLOW_HTTP_ADDR" envDefault:":8080"`
	// HTTPReadTimeout bounds reading one API request, headers and body: a
	// client that trickles its body slower gets a 408 and the connection
	// closes.
	HTTPReadTimeout time.Duration `env:"EVENTFLOW_HTTP_READ_TIMEOUT" envDefault:"30s"`
	// MetricsAddr is where /metrics is served, apart from the API.
	MetricsAddr string `env:"EVENTFLOW_METRICS_ADDR" envDefault:":9091"`
	// Stream is the topic (Redis stream) events are published to.
	Stream string `env:"EVENTFLOW_STREAM" envDefault:"events"`
	// ConsumerGroup is the transport's consumer group of the workers.
	ConsumerGroup string `env:"EVENTFLOW_CONSUMER_GROUP" envDefault:"eventflow-workers"`
	// APIKeys, when set, are the keys that may call /v1 and /events.
	APIKeys []string `env:"EVENTFLOW_API_KEYS" envSeparator:","`
	// AutoMigrate applies pending migrations when serve, api or worker start.
	AutoMigrate bool `env:"EVENTFLOW_AUTO_MIGRATE" envDefault:"true"`
	// StrictIngest also checks payload rules at ingestion (422).
	StrictIngest bool `env:"EVENTFLOW_STRICT_INGEST" envDefault:"false"`

	// ConsumerName is this process's stable name in the consumer group;
	// its consumers are named <ConsumerName>-0 … -N. Default: the host name.
	ConsumerName string `env:"EVENTFLOW_CONSUMER_NAME"`
	// WorkerConcurrency is how many events one worker process handles at once.
	WorkerConcurrency int `env:"EVENTFLOW_WORKER_CONCURRENCY" envDefault:"8"`
	// RedisReadBatch is how many entries each Redis consumer reads at once
	// and keeps in flight; acknowledgements go out in batches too. 1 reads
	// and acknowledges one message per round trip.
	//
	// The default keeps 8 × 256 events in flight per worker: processed rows
	// are written in group commits, and a worker keeps up with ingestion
	// only when enough events wait for each commit. With 8 × 32 in
	// flight (the former default) processing fell behind batched ingestion
	// by a third; see BENCHMARKS.md.
	RedisReadBatch int `env:"EVENTFLOW_REDIS_READ_BATCH" envDefault:"256"`
	// PostgresReadBatch is how many outbox rows each consumer of the
	// postgres transport locks at once and keeps in flight; the acked rows
	// are deleted in one statement when the last of them is acknowledged.
	// As with Redis, 8 × 256 in flight keep processing level with batched
	// ingestion, where 8 × 64 fell behind by a quarter; see BENCHMARKS.md.
	PostgresReadBatch int `env:"EVENTFLOW_POSTGRES_READ_BATCH" envDefault:"256"`
	// RetryMax is how many times a transient failure is retried in-process
	// before the event is dead-lettered as retries_exhausted.
	RetryMax int `env:"EVENTFLOW_RETRY_MAX" envDefault:"3"`
	// RetryInitialInterval is the first retry's base wait; waits grow
	// exponentially with ±20 % jitter up to RetryMaxInterval.
	RetryInitialInterval time.Duration `env:"EVENTFLOW_RETRY_INITIAL_INTERVAL" envDefault:"100ms"`
	// RetryMaxInterval caps one retry's wait.
	RetryMaxInterval time.Duration `env:"EVENTFLOW_RETRY_MAX_INTERVAL" envDefault:"2s"`
	// MaxDeliveries quarantines an event the transport has delivered more
	// often than this, each time without an outcome (its worker crashed,
	// hung or was killed): it goes to failed_events as retries_exhausted
	// instead of being handled again. The redis transport counts
	// deliveries in the stream's pending entries list, so the count
	// survives the crashes. 0 turns it off.
	MaxDeliveries int `env:"EVENTFLOW_MAX_DELIVERIES" envDefault:"5"`
	// RedisTrimInterval is how often workers delete stream entries that
	// every consumer group has acknowledged (XTRIM MINID; never an entry
	// still to deliver or pending). 0 keeps every entry.
	RedisTrimInterval time.Duration `env:"EVENTFLOW_REDIS_TRIM_INTERVAL" envDefault:"10s"`
	// HandlerTimeout bounds one processing attempt.
	HandlerTimeout time.Duration `env:"EVENTFLOW_HANDLER_TIMEOUT" envDefault:"5s"`
	// RedeliveryIdle is how long a delivered, unacknowledged message waits
	// before another consumer claims it (a crashed worker's messages).
	RedeliveryIdle time.Duration `env:"EVENTFLOW_REDELIVERY_IDLE" envDefault:"60s"`

	// MaxEventBytes limits one event's JSON.
	MaxEventBytes int64 `env:"EVENTFLOW_MAX_EVENT_BYTES" envDefault:"65536"`
	// MaxBatchEvents limits the events of one batch request.
	MaxBatchEvents int `env:"EVENTFLOW_MAX_BATCH_EVENTS" envDefault:"500"`
	// MaxBatchBytes limits a batch request's body.
	MaxBatchBytes int64 `env:"EVENTFLOW_MAX_BATCH_BYTES" envDefault:"4194304"`
	// IngestBatchWindow is how long the ingest handler may wait to gather
	// concurrent requests into one insert and one publish (group commit).
	// With 0 a request is committed as soon as a commit slot is free, and
	// the requests arriving while every slot is busy share the next
	// commit: batches grow with the load without a fixed wait.
	IngestBatchWindow time.Duration `env:"EVENTFLOW_INGEST_BATCH_WINDOW" envDefault:"0"`
	// IngestBatchRequests caps the requests one group commit carries.
	IngestBatchRequests int `env:"EVENTFLOW_INGEST_BATCH_REQUESTS" envDefault:"256"`
	// IngestCommits caps the ingest group commits in flight at once; the
	// requests that arrive meanwhile form the next batch.
	IngestCommits int `env:"EVENTFLOW_INGEST_COMMITS" envDefault:"4"`
	// ProcessCommits caps the processed_events group commits in flight per
	// worker. Fewer commits carry more rows each, which spares Postgres:
	// with batches of 100 events per request, 1 processed 10.5k events/s,
	// 2 9.7k/s and 4 8.7k/s on a 2-core box, with no difference for
	// single events except latency (1 doubled the median).
	ProcessCommits int `env:"EVENTFLOW_PROCESS_COMMITS" envDefault:"2"`
	// ProcessBatchWindow is how long the process handler waits to gather
	// concurrent events into one write of processed_events (group commit).
	ProcessBatchWindow time.Duration `env:"EVENTFLOW_PROCESS_BATCH_WINDOW" envDefault:"0"`
	// IngestTimeout bounds storing and publishing one request's events.
	IngestTimeout time.Duration `env:"EVENTFLOW_INGEST_TIMEOUT" envDefault:"10s"`
	// RelayAfter is how long an event may stay stored but unpublished
	// before the relay publishes it (redis and memory transports).
	RelayAfter time.Duration `env:"EVENTFLOW_RELAY_AFTER" envDefault:"30s"`
	// RelayInterval is the pause between relay passes.
	RelayInterval time.Duration `env:"EVENTFLOW_RELAY_INTERVAL" envDefault:"5s"`
	// DeadLetterRetention is how long dead letters are kept before they are
	// deleted; 0 keeps them forever.
	DeadLetterRetention time.Duration `env:"EVENTFLOW_DEAD_LETTER_RETENTION" envDefault:"720h"`
	// ReplayRate caps bulk replays of dead letters, in events per second.
	ReplayRate float64 `env:"EVENTFLOW_REPLAY_RATE" envDefault:"200"`
	// RateLimit caps each client's API requests per second (a client is
	// its API key, or its address when auth is off); 0 turns it off.
	RateLimit float64 `env:"EVENTFLOW_RATE_LIMIT" envDefault:"0"`
	// RateBurst is how many requests a client may send at once above the
	// rate; 0 means the rate rounded up.
	RateBurst int `env:"EVENTFLOW_RATE_BURST" envDefault:"0"`
	// DBMaxConns caps the Postgres connection pool.
	DBMaxConns int `env:"EVENTFLOW_DB_MAX_CONNS" envDefault:"20"`
	// ShedBacklog sheds ingestion (503) while more messages than this wait
	// in the transport, until fewer than 9/10 of it do; 0 turns it off.
	ShedBacklog int64 `env:"EVENTFLOW_SHED_BACKLOG" envDefault:"1000000"`
	// ShedDBWait sheds ingestion while every database connection is in use
	// and callers waited longer than this per second for one (averaged
	// over a second), until the wait falls below half of it; 0 turns it off.
	ShedDBWait time.Duration `env:"EVENTFLOW_SHED_DB_WAIT" envDefault:"1s"`
	// ShedMemory sheds ingestion while the live Go heap is over this many
	// bytes, until it falls below 9/10 of it; 0 turns it off. Default: 70 %
	// of GOMEMLIMIT when that is set, else off.
	ShedMemory int64 `env:"EVENTFLOW_SHED_MEMORY"`

	// ShutdownTimeout bounds the graceful drain after SIGTERM.
	ShutdownTimeout time.Duration `env:"EVENTFLOW_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// Pprof serves Go's profiler under /debug/pprof/ on the metrics port.
	Pprof bool `env:"EVENTFLOW_PPROF" envDefault:"false"`
	// LogLevel is DEBUG, INFO, WARN or ERROR.
	LogLevel string `env:"EVENTFLOW_LOG_LEVEL" envDefault:"INFO"`
	// LogFormat is json or text.
	LogFormat string `env:"EVENTFLOW_LOG_FORMAT" envDefault:"json"`

	// Dev is the one-process dev mode (eventflow dev): the memory transport
	// and the in-memory store, so DATABASE_URL and REDIS_URL are not used.
	Dev bool `env:"-"`
}

// Transports eventflow knows.
const (
	TransportRedis    = "redis"
	TransportPostgres = "postgres"
	TransportMemory   = "memory"
)

// LoadConfig reads the configuration from environ (KEY=VALUE pairs, as
// os.Environ returns them) and, if dotenv names a readable file, from it,
// environ winning, and validates it. The error names the offending
// variable.
func LoadConfig(environ []string, dotenv string) (Config, error) {
	cfg, err := readConfig(environ, dotenv)
	if err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// readConfig is LoadConfig without the validation.
func readConfig(environ []string, dotenv string) (Config, error) {
	vars := map[string]string{}
	if dotenv != "" {
		fileVars, err := godotenv.Read(dotenv)
		switch {
		case err == nil:
			vars = fileVars
		case !errors.Is(err, os.ErrNotExist):
			return Config{}, fmt.Errorf("read %s: %w", dotenv, err)
		}
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return Config{}, configError(err)
	}
	for i, k := range cfg.APIKeys {
		cfg.APIKeys[i] = strings.TrimSpace(k) // "k1, k2" means k1 and k2
	}
	if cfg.ConsumerName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "eventflow"
		}
		cfg.ConsumerName = host
	}
	if vars["EVENTFLOW_SHED_MEMORY"] == "" {
		cfg.ShedMemory = defaultShedMemory(debug.SetMemoryLimit(-1))
	}
	return cfg, nil
}

// configError rewrites the env library's errors, which name struct fields,
// to name the environment variable instead.
func configError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
				msgs = append(msgs, fmt.Sprintf("%s: invalid value: %v", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New("configuration: " + strings.Join(msgs, "; "))
}

// Validate checks every value and names the variable of each bad one.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if c.MaxDeliveries < 0 || c.MaxDeliveries == 1 {
		bad("EVENTFLOW_MAX_DELIVERIES", "must be 0 (off) or at least 2, not %d: 1 would quarantine every redelivered event", c.MaxDeliveries)
	}
	if c.RedisTrimInterval < 0 {
		bad("EVENTFLOW_REDIS_TRIM_INTERVAL", "must not be negative")
	}
	switch c.Transport {
	case TransportRedis, TransportPostgres, TransportMemory:
	default:
		bad("EVENTFLOW_TRANSPORT", "must be redis, postgres or memory, not %q", c.Transport)
	}
	if u, err := url.Parse(c.DatabaseURL); !c.Dev && (err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql")) {
		bad("DATABASE_URL", "must be a postgres:// URL")
	}
	if u, err := url.Parse(c.RedisURL); c.Transport == TransportRedis && (err != nil || (u.Scheme != "redis" && u.Scheme != "rediss")) {
		bad("REDIS_URL", "must be a redis:// or rediss:// URL")
	}
	if c.Stream == "" {
		bad("EVENTFLOW_STREAM", "must not be empty")
	}
	if c.ConsumerGroup == "" {
		bad("EVENTFLOW_CONSUMER_GROUP", "must not be empty")
	}
	for _, k := range c.APIKeys {
		if strings.TrimSpace(k) == "" {
			bad("EVENTFLOW_API_KEYS", "must not contain empty keys")
			break
		}
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"EVENTFLOW_WORKER_CONCURRENCY", int64(c.WorkerConcurrency)},
		{"EVENTFLOW_REDIS_READ_BATCH", int64(c.RedisReadBatch)},
		{"EVENTFLOW_POSTGRES_READ_BATCH", int64(c.PostgresReadBatch)},
		{"EVENTFLOW_MAX_EVENT_BYTES", c.MaxEventBytes},
		{"EVENTFLOW_MAX_BATCH_EVENTS", int64(c.MaxBatchEvents)},
		{"EVENTFLOW_MAX_BATCH_BYTES", c.MaxBatchBytes},
		{"EVENTFLOW_DB_MAX_CONNS", int64(c.DBMaxConns)},
		{"EVENTFLOW_RETRY_INITIAL_INTERVAL", int64(c.RetryInitialInterval)},
		{"EVENTFLOW_RETRY_MAX_INTERVAL", int64(c.RetryMaxInterval)},
		{"EVENTFLOW_HANDLER_TIMEOUT", int64(c.HandlerTimeout)},
		{"EVENTFLOW_REDELIVERY_IDLE", int64(c.RedeliveryIdle)},
		{"EVENTFLOW_INGEST_TIMEOUT", int64(c.IngestTimeout)},
		{"EVENTFLOW_HTTP_READ_TIMEOUT", int64(c.HTTPReadTimeout)},
		{"EVENTFLOW_INGEST_BATCH_REQUESTS", int64(c.IngestBatchRequests)},
		{"EVENTFLOW_INGEST_COMMITS", int64(c.IngestCommits)},
		{"EVENTFLOW_PROCESS_COMMITS", int64(c.ProcessCommits)},
		{"EVENTFLOW_SHUTDOWN_TIMEOUT", int64(c.ShutdownTimeout)},
		{"EVENTFLOW_RELAY_INTERVAL", int64(c.RelayInterval)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.name, "must be positive")
		}
	}
	if c.RelayAfter <= c.IngestTimeout {
		bad("EVENTFLOW_RELAY_AFTER", "must be longer than EVENTFLOW_INGEST_TIMEOUT (%v), or the relay races requests still publishing", c.IngestTimeout)
	}
	if c.DeadLetterRetention < 0 {
		bad("EVENTFLOW_DEAD_LETTER_RETENTION", "must not be negative (0 keeps dead letters forever)")
	}
	if c.IngestBatchWindow < 0 || c.IngestBatchWindow > time.Second {
		bad("EVENTFLOW_INGEST_BATCH_WINDOW", "must be between 0 and 1s (every request waits up to this long)")
	}
	if c.ProcessBatchWindow < 0 || c.ProcessBatchWindow > time.Second {
		bad("EVENTFLOW_PROCESS_BATCH_WINDOW", "must be between 0 and 1s (every event waits up to this long)")
	}
	if c.RateLimit < 0 {
		bad("EVENTFLOW_RATE_LIMIT", "must not be negative (0 turns it off)")
	}
	if c.ShedBacklog < 0 {
		bad("EVENTFLOW_SHED_BACKLOG", "must not be negative (0 turns it off)")
	}
	if c.ShedDBWait < 0 {
		bad("EVENTFLOW_SHED_DB_WAIT", "must not be negative (0 turns it off)")
	}
	if c.ShedMemory != 0 && c.ShedMemory < minShedMemory {
		bad("EVENTFLOW_SHED_MEMORY", "must be 0 (off) or at least %d (16 MiB): it counts bytes of live heap", minShedMemory)
	}
	if c.RateBurst < 0 {
		bad("EVENTFLOW_RATE_BURST", "must not be negative")
	}
	if c.ReplayRate < 0 {
		bad("EVENTFLOW_REPLAY_RATE", "must not be negative (0 means no limit)")
	}
	if c.RetryMax < 0 {
		bad("EVENTFLOW_RETRY_MAX", "must not be negative")
	}
	if c.Transport == TransportPostgres && c.DBMaxConns <= 2*c.WorkerConcurrency {
		bad("EVENTFLOW_DB_MAX_CONNS", "must be more than twice EVENTFLOW_WORKER_CONCURRENCY (%d) with the postgres transport: each consumer holds a connection while its handler uses another, and the API needs some too", c.WorkerConcurrency)
	}
	if c.RetryMaxInterval < c.RetryInitialInterval {
		bad("EVENTFLOW_RETRY_MAX_INTERVAL", "must not be below EVENTFLOW_RETRY_INITIAL_INTERVAL")
	}
	// In-process retries sleep inside the handler while the message stays
	// pending; if they outlast the redelivery idle time another consumer
	// claims the message and processes it concurrently.
	if budget := c.RetryBudget(); budget >= c.RedeliveryIdle/2 {
		bad("EVENTFLOW_REDELIVERY_IDLE", "must be more than twice the worst-case retry time %v (EVENTFLOW_RETRY_MAX × EVENTFLOW_HANDLER_TIMEOUT plus backoff)", budget)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		bad("EVENTFLOW_LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("EVENTFLOW_LOG_FORMAT", "must be json or text, not %q", c.LogFormat)
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return nil
}

// InFlight is how many events one worker process handles at once.
func (c Config) InFlight() int {
	switch c.Transport {
	case TransportRedis:
		return c.WorkerConcurrency * c.RedisReadBatch
	case TransportPostgres:
		return c.WorkerConcurrency * c.PostgresReadBatch
	}
	return c.WorkerConcurrency
}

// RetryBudget is the longest one delivery can spend in the process
// handler: every attempt timing out, with the longest backoff between them.
func (c Config) RetryBudget() time.Duration {
	attempts := time.Duration(c.RetryMax + 1)
	return attempts*c.HandlerTimeout + time.Duration(c.RetryMax)*c.RetryMaxInterval*12/10
}

// minShedMemory is the lowest EVENTFLOW_SHED_MEMORY: below it a process
// would shed from the start.
const minShedMemory = 16 << 20

// defaultShedMemory is EVENTFLOW_SHED_MEMORY's default under the memory
// limit limit (GOMEMLIMIT; math.MaxInt64 when unset): 70 % of it, or off
// without a limit. With the live heap that close to the limit the garbage
// collector runs almost without pause to stay under it, and a burst of
// requests away from running out; without a limit the process cannot know
// what is too much.
func defaultShedMemory(limit int64) int64 {
	if limit <= 0 || limit == math.MaxInt64 || limit/10*7 < minShedMemory {
		return 0
	}
	return limit / 10 * 7
}

// ParseLogLevel reads DEBUG, INFO, WARN or ERROR (any case).
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("must be DEBUG, INFO, WARN or ERROR, not %q", s)
	}
	return l, nil
}
