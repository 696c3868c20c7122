package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrClosed is returned by Subscribe, Publish and PublishTx after Close.
var ErrClosed = errors.New("postgres transport is closed")

// closeGrace is how long a closing subscription lets its consumers finish
// the batch under way (commit what was acked) before it cancels their
// queries, which only a database that stopped answering makes necessary.
const closeGrace = 10 * time.Second

// subscriber runs, for each Subscribe call, Config.Consumers watermill-sql
// subscribers of the topic and merges their messages into one channel.
// Each of them has one message in flight, so the merged channel has up to
// Config.Consumers.
type subscriber struct {
	cfg     Config
	db      wsql.Beginner
	schema  schemaAdapter
	offsets offsetsAdapter
	logger  watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	active map[*subscription]struct{}
	// closeDone is closed when the first Close has finished.
	closeDone chan struct{}
}

// subscription is one Subscribe call: its consumers and the goroutines
// that merge their channels.
type subscription struct {
	stopping chan struct{} // closed by stop
	stopOnce sync.Once
	// done is closed after the consumers are closed and the merged channel
	// is closed; closeErr is set before.
	done     chan struct{}
	closeErr error
}

func (s *subscription) stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

func newSubscriber(cfg Config, schema schemaAdapter, logger watermill.LoggerAdapter) *subscriber {
	return &subscriber{
		cfg:       cfg,
		db:        wsql.BeginnerFromStdSQL(cfg.DB),
		schema:    schema,
		logger:    logger,
		active:    make(map[*subscription]struct{}),
		closeDone: make(chan struct{}),
	}
}

// Subscribe starts Config.Consumers consumers of topic and returns the
// channel that carries the messages of all of them. Every subscription of
// a topic, in this process or another, shares its messages: each message
// goes to one of them.
//
// The channel is closed when ctx is cancelled or Close is called. The
// consumers then stop waiting for acks: what was acked in their batches is
// deleted, the rest is unlocked and delivered again.
func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
	}
	sub := &subscription{stopping: make(chan struct{}), done: make(chan struct{})}
	s.active[sub] = struct{}{}
	s.mu.Unlock()

	// The consumers' queries do not end with ctx, but when the consumers
	// are closed: cancelling them would roll back the acks of the batches
	// under way, and those messages would be handled twice. runCancel
	// stops them only when closing takes longer than closeGrace. Values of
	// ctx stay visible in the messages' contexts.
	runCtx, runCancel := context.WithCancel(context.WithoutCancel(ctx))
	consumers, err := s.startConsumers(runCtx, topic)
	if err != nil {
		err = errors.Join(err, closeConsumers(consumers))
		runCancel()
		s.release(sub)
		close(sub.done)
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}

	out := make(chan *message.Message)
	go func() {
		var wg sync.WaitGroup
		for _, c := range consumers {
			wg.Go(func() { c.forward(out, sub.stopping) })
		}
		select {
		case <-ctx.Done():
		case <-sub.stopping:
		}
		sub.stop()
		sub.closeErr = closeWithin(consumers, closeGrace, runCancel)
		runCancel()
		wg.Wait()
		s.release(sub)
		close(out)
		close(sub.done)
	}()

	s.logger.Info("Subscribed to postgres outbox", watermill.LogFields{
		"topic":      topic,
		"consumers":  s.cfg.Consumers,
		"batch_size": s.cfg.BatchSize,
	})
	return out, nil
}

// consumer is one watermill-sql subscriber of a subscription, with its
// channel.
type consumer struct {
	*wsql.Subscriber
	in <-chan *message.Message
}

// startConsumers creates and subscribes the consumers of topic. On error it
// returns the consumers created so far, for the caller to close.
func (s *subscriber) startConsumers(ctx context.Context, topic string) ([]*consumer, error) {
	ackDeadline := s.cfg.AckDeadline
	var consumers []*consumer
	for i := range s.cfg.Consumers {
		sub, err := wsql.NewSubscriber(s.db, wsql.SubscriberConfig{
			AckDeadline:    &ackDeadline,
			PollInterval:   s.cfg.PollInterval,
			ResendInterval: s.cfg.ResendInterval,
			RetryInterval:  retryInterval,
			BackoffManager: newJitteredPolls(s.cfg.PollInterval),
			SchemaAdapter:  s.schema,
			OffsetsAdapter: s.offsets,
		}, s.logger)
		if err != nil {
			return consumers, fmt.Errorf("create consumer %d: %w", i, err)
		}
		c := &consumer{Subscriber: sub}
		consumers = append(consumers, c)
		if c.in, err = sub.Subscribe(ctx, topic); err != nil {
			return consumers, fmt.Errorf("start consumer %d: %w", i, err)
		}
	}
	return consumers, nil
}

// forward copies the messages of c to the merged channel until c's channel
// is closed. Once the subscription is stopping it drops them instead: c
// sees it is closed rather than an ack, and keeps the row for redelivery.
func (c *consumer) forward(out chan<- *message.Message, stopping <-chan struct{}) {
	for msg := range c.in {
		// Checked first, because a select picks at random among ready
		// cases: a row that a closing consumer released and another
		// consumer took again must not be handed out after the stop.
		select {
		case <-stopping:
			continue
		default:
		}
		select {
		case out <- msg:
		case <-stopping:
		}
	}
}

// closeWithin closes the consumers, which finish their batches, and calls
// cancel if that takes longer than grace.
func closeWithin(consumers []*consumer, grace time.Duration, cancel context.CancelFunc) error {
	closed := make(chan error, 1)
	go func() { closed <- closeConsumers(consumers) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case err := <-closed:
		return err
	case <-timer.C:
		cancel()
		return <-closed
	}
}

// closeConsumers closes the consumers side by side: each Close waits for
// its consumer's batch to end.
func closeConsumers(consumers []*consumer) error {
	errs := make([]error, len(consumers))
	var wg sync.WaitGroup
	for i, c := range consumers {
		wg.Go(func() { errs[i] = c.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *subscriber) release(sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, sub)
}

// Close stops every subscription and returns once all their channels are
// closed. Close is safe to call more than once and from several
// goroutines; later calls wait for the first and return nil.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	subs := make([]*subscription, 0, len(s.active))
	for sub := range s.active {
		subs = append(subs, sub)
	}
	s.mu.Unlock()

	for _, sub := range subs {
		sub.stop()
	}
	var errs []error
	for _, sub := range subs {
		<-sub.done
		errs = append(errs, sub.closeErr)
	}
	close(s.closeDone)
	return errors.Join(errs...)
}
