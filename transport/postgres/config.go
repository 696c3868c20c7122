package postgres

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Defaults for the zero fields of Config.
const (
	// DefaultConsumers is 8, eventflow's default worker concurrency.
	DefaultConsumers = 8
	// DefaultBatchSize is 256. A consumer hands its whole batch out at
	// once, so a handler has Consumers × BatchSize messages in flight, and
	// eventflow's group commits of processed_events carry as many rows as
	// are in flight. With 8 consumers, batches of 100 events posted at
	// about 9,000/s were processed at 6,600/s with batches of 64, 8,000/s
	// with 128 and 8,900/s with 256 (`eventflow bench`, BENCHMARKS.md).
	// A batch costs in other ways, which argue against huge ones: its rows
	// are deleted only when its last message is acked, so a slow message
	// (retrying, say) keeps the acked ones in the table and locked until
	// then; and a crashed consumer hands its whole batch back.
	DefaultBatchSize = 256
	// DefaultPollInterval is 100ms. With jittered polls (see jitter), 8
	// idle consumers run about 80 polls a second
	// (BEGIN, one indexed SELECT, COMMIT; no disk writes), and at 200
	// msg/s an event waits 9ms in the median and 50ms at the 99th
	// percentile (BenchmarkLatency). 10ms gets that down to 3ms and 8ms
	// for ten times the idle polls; 1s makes it 120-180ms and 600-700ms.
	DefaultPollInterval   = 100 * time.Millisecond
	DefaultAckDeadline    = 30 * time.Second
	DefaultResendInterval = time.Second
)

// retryInterval is how long a consumer waits after a failed poll, such as
// when the database does not answer, before it polls again.
const retryInterval = time.Second

// Config configures the Postgres outbox transport. Zero fields take the
// defaults above; New fills them in and then validates the result.
type Config struct {
	// DB is eventflow's connection pool (lib/pq, driver "postgres"), with
	// migration 00002_outbox.sql applied. Close does not close it.
	// Required.
	//
	// A consumer holds a connection for as long as its batch is out, and
	// the handlers of its messages need others for their own writes,
	// waiting for one when the pool has fewer free connections than
	// messages in flight (eventflow's process handler writes through a
	// few group commits instead). New refuses a pool capped at Consumers
	// or fewer, in which the handlers could wait forever; give it
	// Consumers plus what the handlers and the API use at once.
	DB *sql.DB
	// Consumers is how many batches of a topic this process handles at
	// once: each Subscribe runs this many consumers, each with one batch
	// in flight. Default DefaultConsumers.
	Consumers int
	// BatchSize is how many rows a consumer locks per poll and hands to
	// the handler all at once, in one transaction. The rows acked are
	// deleted when the batch ends, after its last ack or its AckDeadline,
	// and the consumer locks no new batch before: one slow message (in
	// retries, say) idles its consumer and keeps the acked rows of its
	// batch in the table until then. A crash hands the whole batch back.
	// A larger batch lets the handler group more, a smaller one lets a
	// slow message hold back less. Default DefaultBatchSize.
	BatchSize int
	// PollInterval is how long a consumer waits after a poll that found
	// nothing. Default DefaultPollInterval.
	PollInterval time.Duration
	// AckDeadline is how long a batch may stay out, counted from the
	// poll that locked it, nacks and resends included: then the contexts
	// of its messages not yet acked are cancelled and their rows
	// released, to be delivered again by the next poll. It must exceed
	// the longest handling of a message, in-process retries included (a
	// message resent late in the batch gets what is left). Default
	// DefaultAckDeadline.
	AckDeadline time.Duration
	// ResendInterval is how long a consumer waits before it hands a nacked
	// message to the handler again; it keeps the row locked meanwhile.
	// Default DefaultResendInterval.
	ResendInterval time.Duration
	// SkipDeliveryCounts turns off counting deliveries
	// (eventflow_outbox_deliveries): messages then never carry
	// transport.DeliveriesMetadataKey, and rows delivered before come back
	// in whole batches. Counting costs one record per batch, 7–11 % of the
	// outbox's processing rate (BENCHMARKS.md); eventflow skips it
	// when EVENTFLOW_MAX_DELIVERIES is 0, since nothing reads the counts.
	SkipDeliveryCounts bool
}

func (c *Config) setDefaults() {
	if c.Consumers == 0 {
		c.Consumers = DefaultConsumers
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = DefaultAckDeadline
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
}

// Validate reports every invalid field of c, each error naming its field.
// Zero fields with a default are invalid until the default is set: New
// sets the defaults before it validates.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("DB is required"))
	}
	if c.Consumers < 1 {
		errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", "Consumers", c.Consumers))
	} else if c.DB != nil {
		if limit := c.DB.Stats().MaxOpenConnections; limit > 0 && limit <= c.Consumers {
			errs = append(errs, fmt.Errorf(
				"DB allows %d open connections, but its %d Consumers can hold that many while their handlers need more: allow at least %d",
				limit, c.Consumers, 2*c.Consumers))
		}
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", "BatchSize", c.BatchSize))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"PollInterval", c.PollInterval},
		{"AckDeadline", c.AckDeadline},
		{"ResendInterval", c.ResendInterval},
	} {
		if d.value <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.name, d.value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid postgres transport config: %w", err)
	}
	return nil
}
