package redis

import (
	"context"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"
)

// Depth returns how many entries of topic the configured consumer group
// has still to finish: its lag (entries not yet delivered to any of its
// consumers) plus its pending entries (delivered, not yet acknowledged).
// A stream or group that does not exist has depth 0.
//
// The lag comes from XINFO GROUPS and needs Redis 7; Redis 6 does not
// report it, and Depth then counts pending entries only.
func (t *Transport) Depth(ctx context.Context, topic string) (int64, error) {
	groups, err := t.client.XInfoGroups(ctx, topic).Result()
	if goredis.HasErrorPrefix(err, "no such key") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("depth of %s: xinfo groups: %w", topic, err)
	}
	i := slices.IndexFunc(groups, func(g goredis.XInfoGroup) bool {
		return g.Name == t.cfg.ConsumerGroup
	})
	if i < 0 {
		return 0, nil
	}
	group := groups[i]
	lag := group.Lag
	if lag < 0 {
		if lag, err = t.estimateLag(ctx, topic, group); err != nil {
			return 0, fmt.Errorf("depth of %s: %w", topic, err)
		}
	}
	return lag + group.Pending, nil
}

// estimateLag stands in for the lag when Redis cannot compute it and
// reports nil (go-redis: -1). That happens when entries the group has not
// read yet were deleted (XDEL), or when the group was created at an ID in
// the middle of the stream.
//
// The estimate is based on the stream's length (XLEN, here from XINFO
// STREAM) and errs high, never low:
//   - the group has read up to the stream's last ID: 0, exactly;
//   - otherwise entries-added minus the group's entries-read (0 when Redis
//     does not know it either). That also counts the deleted entries, so it
//     is capped at the stream's length: every entry not yet delivered is
//     still in the stream.
func (t *Transport) estimateLag(ctx context.Context, topic string, group goredis.XInfoGroup) (int64, error) {
	stream, err := t.client.XInfoStream(ctx, topic).Result()
	if goredis.HasErrorPrefix(err, "no such key") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("estimate lag: xinfo stream: %w", err)
	}
	if group.LastDeliveredID == stream.LastGeneratedID {
		return 0, nil
	}
	return max(0, min(stream.EntriesAdded-group.EntriesRead, stream.Length)), nil
}
