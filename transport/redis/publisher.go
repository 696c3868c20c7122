package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
)

// publisher sends all the messages of one Publish call in one pipelined
// round trip: an XADD each, in order, encoded as redisstream's default
// marshaller does, so redisstream subscribers read them as usual.
// redisstream's own publisher sends one XADD and waits for it per message,
// which caps a batch of events at one round trip each.
//
// Entries are never trimmed (no MAXLEN): trimming drops entries whether or
// not a group has read them.
type publisher struct {
	client     *goredis.Client
	marshaller redisstream.Marshaller
	closed     atomic.Bool
}

var errPublisherClosed = errors.New("redis publisher is closed")

// Publish implements message.Publisher. The messages go out together on
// the first message's context. Like redisstream's publisher it is not
// atomic: if the pipeline fails part-way, some entries may have been added
// — the caller publishes them all again, and processing deduplicates.
func (p *publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return errPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx := msgs[0].Context()
	if ctx == nil {
		ctx = context.Background()
	}
	pipe := p.client.Pipeline()
	for _, msg := range msgs {
		values, err := p.marshaller.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
		}
		pipe.XAdd(ctx, &goredis.XAddArgs{Stream: topic, Values: values})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("xadd %d entries to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// Close closes the publisher's go-redis client, which Ping and Depth
// share.
func (p *publisher) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.client.Close()
}
