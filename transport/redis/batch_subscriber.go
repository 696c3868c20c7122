package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/transport"
)

// batchSubscriber consumes a stream in batches (Config.ReadBatch > 1): each
// of Config.Consumers readers takes up to ReadBatch entries per
// XREADGROUP, hands every one of them to the handler at once, and frees a
// slot per acknowledged message; acknowledgements go out together, one
// XACK per batch of ids. Entries idle longer than MaxIdleTime (their
// consumer died) are claimed with XAUTOCLAIM and delivered the same way.
//
// redisstream's subscriber reads COUNT 1 and acknowledges each message in
// its own round trip, which caps a consumer at a few thousand messages per
// second; this one spends a round trip per batch instead.
type batchSubscriber struct {
	cfg    Config
	logger watermill.LoggerAdapter

	mu     sync.Mutex
	closed bool
	active map[string]*batchSubscription
}

type batchSubscription struct {
	client *goredis.Client
	topic  string
	out    chan *message.Message
	acks   chan string
	cancel context.CancelFunc
	// ended and callerDone are closed when the subscription starts
	// ending: by Close or a lost group, or by its caller's context (whose
	// cancellation reaches ended a moment later).
	ended, callerDone <-chan struct{}
	done              chan struct{}
}

func newBatchSubscriber(cfg Config, logger watermill.LoggerAdapter) *batchSubscriber {
	return &batchSubscriber{cfg: cfg, logger: logger, active: map[string]*batchSubscription{}}
}

// Subscribe implements message.Subscriber: one subscription per topic at a
// time, as with the one-message subscriber.
//
// A subscription whose context was cancelled is ending: a new Subscribe to
// its topic waits for it to end rather than fail.
func (s *batchSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
		}
		old, ok := s.active[topic]
		if !ok {
			break
		}
		select {
		case <-old.ended:
		case <-old.callerDone:
		default:
			return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrAlreadySubscribed)
		}
		s.mu.Unlock()
		<-old.done
		s.mu.Lock()
	}
	opts, err := goredis.ParseURL(s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	opts.PoolSize = max(opts.PoolSize, s.cfg.Consumers+4)
	client := goredis.NewClient(opts)
	err = client.XGroupCreateMkStream(ctx, topic, s.cfg.ConsumerGroup, "0").Err()
	if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
		_ = client.Close()
		return nil, fmt.Errorf("create consumer group %s on %s: %w", s.cfg.ConsumerGroup, topic, err)
	}
	callerCtx := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(callerCtx, cancel)
	sub := &batchSubscription{client: client, topic: topic, out: make(chan *message.Message),
		acks: make(chan string, s.cfg.Consumers*s.cfg.ReadBatch), cancel: cancel, ended: ctx.Done(), callerDone: callerCtx.Done(), done: make(chan struct{})}
	s.active[topic] = sub

	var readers, deliveries sync.WaitGroup
	for i := range s.cfg.Consumers {
		slots := make(chan struct{}, s.cfg.ReadBatch)
		name := s.cfg.ConsumerName + "-" + strconv.Itoa(i)
		readers.Go(func() { s.read(ctx, sub, name, slots, &deliveries) })
		if i == 0 {
			readers.Go(func() { s.claim(ctx, sub, name, slots, &deliveries) })
		}
	}
	ackDone := make(chan struct{})
	go func() { s.ackLoop(sub); close(ackDone) }()
	go func() {
		<-ctx.Done() // cancelled by the caller, Close, or a lost group
		readers.Wait()
		deliveries.Wait()
		close(sub.acks)
		<-ackDone
		close(sub.out)
		stop()
		_ = client.Close()
		s.mu.Lock()
		delete(s.active, topic)
		s.mu.Unlock()
		close(sub.done)
	}()
	return sub.out, nil
}

// read takes entries for consumer name while it has free slots.
func (s *batchSubscriber) read(ctx context.Context, sub *batchSubscription, name string, slots chan struct{}, deliveries *sync.WaitGroup) {
	for ctx.Err() == nil {
		// Wait for at least one free slot, then ask for as many as are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		<-slots
		n := cap(slots) - len(slots)
		streams, err := sub.client.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: s.cfg.ConsumerGroup, Consumer: name, Streams: []string{sub.topic, ">"},
			Count: int64(n), Block: s.cfg.BlockTime,
		}).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			continue
		case err != nil && ctx.Err() != nil:
			return
		case goredis.HasErrorPrefix(err, "NOGROUP"):
			s.logger.Error("consumer group or stream gone; stopping the subscription", err, watermill.LogFields{"topic": sub.topic})
			sub.cancel()
			return
		case err != nil:
			s.logger.Error("read stream", err, watermill.LogFields{"topic": sub.topic, "consumer": name})
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		for _, st := range streams {
			for _, entry := range st.Messages {
				s.deliver(ctx, sub, entry, 1, slots, deliveries)
			}
		}
	}
}

// claim takes over entries left idle by dead consumers.
//
// It claims them one at a time and hands each to the handler only once the
// one before is finished. An entry left by a dead consumer may be what
// killed it: handled beside others, it would crash or hang them too, and
// each would gain a delivery with every crash until all of them reached
// the quarantine (EVENTFLOW_MAX_DELIVERIES) together. Claimed one by one,
// in stream order, only the poison keeps coming back; the entries claimed
// after it were never handed out with it. Claims happen after crashes, so
// the round trip per entry costs little.
func (s *batchSubscriber) claim(ctx context.Context, sub *batchSubscription, name string, slots chan struct{}, deliveries *sync.WaitGroup) {
	for sleep(ctx, s.cfg.ClaimInterval) {
		start := "0-0"
		for ctx.Err() == nil {
			entries, next, err := sub.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
				Stream: sub.topic, Group: s.cfg.ConsumerGroup, Consumer: name,
				MinIdle: s.cfg.MaxIdleTime, Start: start, Count: 1,
			}).Result()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, goredis.Nil) {
					s.logger.Error("claim idle entries", err, watermill.LogFields{"topic": sub.topic})
				}
				break
			}
			counts := s.deliveryCounts(ctx, sub, entries)
			for i, entry := range entries {
				// A handler that never returns (it ignores its context)
				// holds its entry; after MaxIdleTime another consumer may
				// claim it, and this one goes on.
				wait := time.NewTimer(s.cfg.MaxIdleTime)
				select {
				case <-s.deliver(ctx, sub, entry, counts[i], slots, deliveries):
				case <-wait.C:
				case <-ctx.Done():
				}
				wait.Stop()
			}
			if next == "0-0" || len(entries) == 0 {
				break
			}
			start = next
		}
	}
}

// deliveryCounts asks Redis how many times each claimed entry has been
// delivered (XAUTOCLAIM counts the claim as a delivery but does not say
// so), in one round trip. An entry whose count cannot be read gets 0:
// unknown, and so never quarantined for it.
func (s *batchSubscriber) deliveryCounts(ctx context.Context, sub *batchSubscription, entries []goredis.XMessage) []int64 {
	counts := make([]int64, len(entries))
	if len(entries) == 0 {
		return counts
	}
	cmds := make([]*goredis.XPendingExtCmd, len(entries))
	pipe := sub.client.Pipeline()
	for i, e := range entries {
		cmds[i] = pipe.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: sub.topic, Group: s.cfg.ConsumerGroup, Start: e.ID, End: e.ID, Count: 1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		s.logger.Error("read delivery counts of claimed entries", err, watermill.LogFields{"topic": sub.topic})
	}
	for i, cmd := range cmds {
		if p, err := cmd.Result(); err == nil && len(p) == 1 {
			counts[i] = p[0].RetryCount
		}
	}
	return counts
}

// deliver takes a slot and hands the entry to the handler in its own
// goroutine, until it is acknowledged (a nack hands it over again after
// NackResendSleep) or the subscription ends (it then stays pending and
// comes back after MaxIdleTime).
//
// times is how many times Redis has delivered the entry, this time
// included; above 1 it travels in the message's metadata.
//
// The returned channel is closed when the entry is acknowledged or left
// for redelivery.
func (s *batchSubscriber) deliver(ctx context.Context, sub *batchSubscription, entry goredis.XMessage, times int64, slots chan struct{}, deliveries *sync.WaitGroup) <-chan struct{} {
	finished := make(chan struct{})
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		close(finished)
		return finished
	}
	msg, _ := tolerantUnmarshaller{}.Unmarshal(entry.Values)
	if times > 1 {
		msg.Metadata.Set(transport.DeliveriesMetadataKey, strconv.FormatInt(times, 10))
	}
	deliveries.Go(func() {
		defer close(finished)
		defer func() { <-slots }()
		for {
			msgCtx, cancel := context.WithCancel(ctx)
			msg.SetContext(msgCtx)
			select {
			case sub.out <- msg:
			case <-ctx.Done():
				cancel()
				return
			}
			select {
			case <-msg.Acked():
				cancel()
				sub.acks <- entry.ID
				return
			case <-msg.Nacked():
				cancel()
				msg = msg.Copy()
				if !sleep(ctx, s.cfg.NackResendSleep) {
					return
				}
			case <-ctx.Done():
				cancel()
				return
			}
		}
	})
	return finished
}

// ackLoop sends acknowledgements in batches until acks is closed, then
// sends what is left.
func (s *batchSubscriber) ackLoop(sub *batchSubscription) {
	batch := make([]string, 0, cap(sub.acks))
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// An ack that fails leaves the entry pending: it is claimed and
		// handled again after MaxIdleTime, and deduplicated.
		if err := sub.client.XAck(ctx, sub.topic, s.cfg.ConsumerGroup, batch...).Err(); err != nil {
			s.logger.Error("acknowledge entries", err, watermill.LogFields{"topic": sub.topic, "entries": len(batch)})
		}
		batch = batch[:0]
	}
	for id := range sub.acks {
		batch = append(batch, id)
		// Take whatever else is ready, then send: one XACK per burst.
	more:
		for len(batch) < cap(batch) {
			select {
			case id, ok := <-sub.acks:
				if !ok {
					break more
				}
				batch = append(batch, id)
			default:
				break more
			}
		}
		flush()
	}
	flush()
}

// Close ends every subscription and waits for them.
func (s *batchSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	subs := make([]*batchSubscription, 0, len(s.active))
	for _, sub := range s.active {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.cancel()
		<-sub.done
	}
	return nil
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
