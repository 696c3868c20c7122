package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
)

var (
	// ErrClosed is returned by Subscribe after Close.
	ErrClosed = errors.New("redis transport is closed")
	// ErrAlreadySubscribed is returned by Subscribe for a topic that already
	// has a subscription: its consumers would have the same names as the
	// running ones. Subscribe again once the first channel is closed.
	ErrAlreadySubscribed = errors.New("topic already has a subscription")
)

// subscriber runs, for each subscribed topic, Config.Consumers redisstream
// subscribers in one consumer group and merges their messages into one
// channel. Each of them holds one message at a time (see gatedClient), so
// the merged channel has up to Config.Consumers messages in flight.
type subscriber struct {
	cfg    Config
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	active map[string]*subscription // by topic
	// closeDone is closed when the first Close has finished.
	closeDone chan struct{}
}

// subscription is one Subscribe call: its consumers and the goroutines
// that merge their channels.
type subscription struct {
	cancel context.CancelFunc
	// done is closed after the consumers are closed and the merged channel
	// is closed; closeErr is set before.
	done     chan struct{}
	closeErr error
}

func newSubscriber(cfg Config, logger watermill.LoggerAdapter) *subscriber {
	return &subscriber{
		cfg:       cfg,
		logger:    logger,
		active:    make(map[string]*subscription),
		closeDone: make(chan struct{}),
	}
}

// Subscribe starts Config.Consumers consumers of topic, named
// ConsumerName-0 to ConsumerName-(Consumers-1), and returns the channel
// that carries the messages of all of them. It creates the stream and the
// consumer group if they do not exist; a new group starts at the beginning
// of the stream.
//
// The channel is closed when ctx is cancelled, when Close is called, or
// when a consumer stops reading because the stream or the group was
// deleted. A topic has one subscription at a time: Subscribe returns
// ErrAlreadySubscribed while a channel of the topic is open.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
	}
	if _, ok := s.active[topic]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrAlreadySubscribed)
	}
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{cancel: cancel, done: make(chan struct{})}
	s.active[topic] = sub
	s.mu.Unlock()

	consumers, err := s.startConsumers(ctx, topic)
	if err != nil {
		cancel()
		err = errors.Join(err, closeConsumers(consumers))
		s.release(topic)
		close(sub.done)
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}

	out := make(chan *message.Message)
	go func() {
		var wg sync.WaitGroup
		for _, c := range consumers {
			wg.Go(func() {
				// One consumer stopping, for instance because the stream was
				// deleted, stops them all: the handler sees its channel
				// closed rather than a subscription quietly running short.
				defer cancel()
				c.forward(ctx, out)
			})
		}
		wg.Wait()
		sub.closeErr = closeConsumers(consumers)
		// Release the topic before closing the channel, so that whoever
		// sees the channel closed can subscribe again.
		s.release(topic)
		close(out)
		close(sub.done)
	}()

	s.logger.Info("Subscribed to redis stream", watermill.LogFields{
		"topic":          topic,
		"consumer_group": s.cfg.ConsumerGroup,
		"consumers":      s.cfg.Consumers,
	})
	return out, nil
}

// consumer is one redisstream subscriber of a subscription, with the
// client it reads through and its channel.
type consumer struct {
	*redisstream.Subscriber
	client *gatedClient
	in     <-chan *message.Message
}

// startConsumers creates and subscribes the consumers of topic. On error it
// returns the consumers created so far, for the caller to close.
func (s *subscriber) startConsumers(ctx context.Context, topic string) ([]*consumer, error) {
	var consumers []*consumer
	for i := range s.cfg.Consumers {
		name := fmt.Sprintf("%s-%d", s.cfg.ConsumerName, i)
		c, err := s.newConsumer(ctx, name)
		if err != nil {
			return consumers, fmt.Errorf("create consumer %s: %w", name, err)
		}
		consumers = append(consumers, c)
		if c.in, err = c.Subscribe(ctx, topic); err != nil {
			return consumers, fmt.Errorf("start consumer %s: %w", name, err)
		}
	}
	return consumers, nil
}

// newConsumer creates a redisstream subscriber with a go-redis client of
// its own: its Close closes the client.
func (s *subscriber) newConsumer(ctx context.Context, name string) (*consumer, error) {
	opts, err := goredis.ParseURL(s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", err)
	}
	client := newGatedClient(goredis.NewClient(opts))
	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:          client,
		Unmarshaller:    tolerantUnmarshaller{},
		ConsumerGroup:   s.cfg.ConsumerGroup,
		Consumer:        name,
		NackResendSleep: s.cfg.NackResendSleep,
		BlockTime:       s.cfg.BlockTime,
		ClaimInterval:   s.cfg.ClaimInterval,
		MaxIdleTime:     s.cfg.MaxIdleTime,
		// Without it the first XREADGROUP blocks with no timeout and ignores
		// the context, so a consumer of an idle stream never stops
		// (go-redis#2556).
		DisableIndefiniteInitialBlock: true,
		ShouldStopOnReadErrors: func(err error) bool {
			return ctx.Err() != nil || stopReading(err)
		},
	}, newShutdownLogger(ctx, s.logger))
	if err != nil {
		return nil, errors.Join(err, client.Close())
	}
	return &consumer{Subscriber: sub, client: client}, nil
}

// stopReading tells which read errors end a consumer instead of being
// logged and retried every 500 ms. NOGROUP means the stream or the group
// was deleted, by hand or by a Redis restart without persistence: no read
// can succeed until Subscribe creates them again.
func stopReading(err error) bool {
	return goredis.HasErrorPrefix(err, "NOGROUP") || errors.Is(err, goredis.ErrClosed)
}

// forward copies the messages of c to the merged channel until c's channel
// is closed, and lets c read its next entry when the handler acks one.
// Once ctx is done c has stopped waiting for acks, so a message it still
// hands over is dropped: it stays pending and comes back after MaxIdleTime.
func (c *consumer) forward(ctx context.Context, out chan<- *message.Message) {
	for msg := range c.in {
		if ctx.Err() != nil {
			continue
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			continue
		}
		select {
		case <-msg.Acked():
			c.client.release()
		case <-msg.Nacked():
			// redisstream hands a copy of msg over again: c keeps the entry.
		case <-ctx.Done():
		}
	}
}

func (s *subscriber) release(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, topic)
}

func closeConsumers(consumers []*consumer) error {
	var errs []error
	for _, c := range consumers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every subscription and closes their consumers and clients,
// and returns once all channels are closed. Acks of messages still in
// flight may be lost (see the package documentation). Close is safe to
// call more than once and from several goroutines; later calls wait for
// the first and return nil.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.active))
	for _, sub := range s.active {
		subs = append(subs, sub)
	}
	s.mu.Unlock()

	for _, sub := range subs {
		sub.cancel()
	}
	var errs []error
	for _, sub := range subs {
		<-sub.done
		errs = append(errs, sub.closeErr)
	}
	close(s.closeDone)
	return errors.Join(errs...)
}
