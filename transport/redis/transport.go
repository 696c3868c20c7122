package redis

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/transport"
)

var _ transport.Transport = (*Transport)(nil)

// Transport is the Redis Streams transport. Create it with New and close
// it with Close.
type Transport struct {
	cfg        Config
	client     *goredis.Client // the publisher's; Ping and Depth use it too
	publisher  *publisher
	subscriber message.Subscriber // *subscriber, or *batchSubscriber when ReadBatch > 1
}

// New validates cfg, after filling in its defaults, and returns a
// Transport. It does not connect: the first command does. A nil logger
// logs nothing.
func New(cfg Config, logger watermill.LoggerAdapter) (*Transport, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	client := goredis.NewClient(opts)
	publisher := &publisher{client: client, marshaller: redisstream.DefaultMarshallerUnmarshaller{}}
	return &Transport{
		cfg:        cfg,
		client:     client,
		publisher:  publisher,
		subscriber: newTransportSubscriber(cfg, logger),
	}, nil
}

// Publisher returns the publisher: the messages of one call go out in one
// pipelined round trip, an XADD each (see publisher). Publishing several
// messages is not atomic.
func (t *Transport) Publisher() message.Publisher {
	return t.publisher
}

// Subscriber returns the subscriber of the configured consumer group. See
// the package documentation for what Subscribe does.
func (t *Transport) Subscriber() message.Subscriber {
	return t.subscriber
}

// Ping sends PING on the publisher's connection.
func (t *Transport) Ping(ctx context.Context) error {
	if err := t.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close closes the subscriber and then the publisher, with their go-redis
// clients. The subscriber goes first so that no consumer is left reading
// while the rest shuts down; acks of messages in flight may be lost (see the
// package documentation). Close is safe to call more than once.
func (t *Transport) Close() error {
	var errs []error
	if err := t.subscriber.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close subscriber: %w", err))
	}
	// Closing the publisher closes the client, which Ping and Depth share:
	// they fail with redis.ErrClosed from now on.
	if err := t.publisher.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	return errors.Join(errs...)
}

func newTransportSubscriber(cfg Config, logger watermill.LoggerAdapter) message.Subscriber {
	if cfg.ReadBatch > 1 {
		return newBatchSubscriber(cfg, logger)
	}
	return newSubscriber(cfg, logger)
}
