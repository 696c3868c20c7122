package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// gatedClient is the go-redis client of one consumer. It lets the consumer
// take an entry from Redis only once the handler is done with the previous
// one.
//
// redisstream alone reads ahead: while the handler works on one message,
// its read loop has already taken up to two more entries, which wait in
// the process behind that message. They count toward MaxIdleTime, so a
// slow message gets the ones queued behind it claimed and handled twice;
// they are held while other consumers sit idle; and, with a small backlog,
// a few consumers take every entry and the rest get none.
//
// redisstream takes entries with XREADGROUP and XCLAIM; gatedClient
// overrides both to wait for its slot first, and keeps the slot while they
// return an entry. The subscriber frees the slot when the handler acks the
// message (release); a nack keeps it, as redisstream hands the same entry
// to the handler again.
type gatedClient struct {
	*goredis.Client
	// slot is full while the consumer holds an entry the handler has not
	// acked.
	slot chan struct{}
}

func newGatedClient(client *goredis.Client) *gatedClient {
	return &gatedClient{Client: client, slot: make(chan struct{}, 1)}
}

func (c *gatedClient) XReadGroup(ctx context.Context, a *goredis.XReadGroupArgs) *goredis.XStreamSliceCmd {
	if err := c.acquire(ctx); err != nil {
		return goredis.NewXStreamSliceCmdResult(nil, err)
	}
	cmd := c.Client.XReadGroup(ctx, a)
	if !holdsEntry(cmd.Val()) {
		c.release()
	}
	return cmd
}

func (c *gatedClient) XClaim(ctx context.Context, a *goredis.XClaimArgs) *goredis.XMessageSliceCmd {
	if err := c.acquire(ctx); err != nil {
		return goredis.NewXMessageSliceCmdResult(nil, err)
	}
	cmd := c.Client.XClaim(ctx, a)
	if len(cmd.Val()) == 0 {
		c.release()
	}
	return cmd
}

func (c *gatedClient) acquire(ctx context.Context) error {
	select {
	case c.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release frees the slot; it does nothing if the slot is free.
func (c *gatedClient) release() {
	select {
	case <-c.slot:
	default:
	}
}

func holdsEntry(streams []goredis.XStream) bool {
	for _, s := range streams {
		if len(s.Messages) > 0 {
			return true
		}
	}
	return false
}
