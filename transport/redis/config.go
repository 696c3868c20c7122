package redis

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults for the zero fields of Config.
const (
	DefaultConsumers       = 8
	DefaultMaxIdleTime     = 60 * time.Second
	DefaultClaimInterval   = 5 * time.Second
	DefaultNackResendSleep = time.Second
	DefaultBlockTime       = 100 * time.Millisecond
)

// Config configures the Redis Streams transport. Zero fields take the
// defaults above; New fills them in and then validates the result.
type Config struct {
	// URL of the Redis server, redis://host:port/db (see redis.ParseURL).
	// Required.
	URL string
	// ConsumerGroup is the Redis consumer group the subscribers join.
	// Every process of one group shares the work; each group gets every
	// message. Required.
	ConsumerGroup string
	// ConsumerName is the stable name of this process, such as its
	// hostname. Consumer i of a subscription is named ConsumerName-i, so two
	// processes must not share a name. Required.
	ConsumerName string
	// Consumers is how many messages of a topic this process handles at
	// once. Default DefaultConsumers.
	Consumers int
	// MaxIdleTime is how long an entry may stay delivered and unacknowledged
	// before another consumer of the group claims it. It must exceed the
	// longest handling of a message, retries included: a message held
	// longer is handled twice. Default DefaultMaxIdleTime.
	MaxIdleTime time.Duration
	// ClaimInterval is how often each consumer looks for entries idle longer
	// than MaxIdleTime. Default DefaultClaimInterval.
	ClaimInterval time.Duration
	// NackResendSleep is how long a consumer waits before it hands a nacked
	// message to the handler again. Default DefaultNackResendSleep; it
	// cannot be negative (redisstream's NoSleep is a hot loop).
	NackResendSleep time.Duration
	// BlockTime is how long one XREADGROUP waits for new entries. It also
	// bounds how long a closing consumer waits for its last read.
	// Default DefaultBlockTime.
	BlockTime time.Duration
	// ReadBatch, when above 1, switches to batched consumption: each of the
	// Consumers reads up to ReadBatch entries per XREADGROUP, hands them
	// all to the handler at once and acknowledges them in batched XACKs,
	// so that up to Consumers × ReadBatch messages are in flight. At 0 or
	// 1, each consumer is a redisstream subscriber holding one message.
	ReadBatch int
}

func (c *Config) setDefaults() {
	if c.Consumers == 0 {
		c.Consumers = DefaultConsumers
	}
	if c.MaxIdleTime == 0 {
		c.MaxIdleTime = DefaultMaxIdleTime
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = DefaultClaimInterval
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = DefaultNackResendSleep
	}
	if c.BlockTime == 0 {
		c.BlockTime = DefaultBlockTime
	}
}

// Validate reports every invalid field of c, each error naming its field.
// Zero fields with a default are invalid until the default is set: New
// sets the defaults before it validates.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	} else if _, err := goredis.ParseURL(c.URL); err != nil {
		// A *url.Error quotes the URL, which may hold a password: keep only
		// its cause.
		if urlErr, ok := errors.AsType[*url.Error](err); ok {
			err = urlErr.Err
		}
		errs = append(errs, fmt.Errorf("URL: %w", err))
	}
	if c.ConsumerGroup == "" {
		errs = append(errs, errors.New("ConsumerGroup is required"))
	}
	if c.ConsumerName == "" {
		errs = append(errs, errors.New("ConsumerName is required"))
	}
	if c.Consumers < 1 {
		errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", "Consumers", c.Consumers))
	}
	if c.ReadBatch < 0 {
		errs = append(errs, fmt.Errorf("ReadBatch must not be negative, got %d", c.ReadBatch))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"MaxIdleTime", c.MaxIdleTime},
		{"ClaimInterval", c.ClaimInterval},
		{"NackResendSleep", c.NackResendSleep},
		{"BlockTime", c.BlockTime},
	} {
		if d.value <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.name, d.value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid redis transport config: %w", err)
	}
	return nil
}
