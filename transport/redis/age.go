package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/transport"
)

var _ transport.AgeReporter = (*Transport)(nil)

// OldestAge implements transport.AgeReporter: the age of the older of the
// group's oldest pending entry (delivered, not acknowledged) and the first
// entry not yet delivered. Stream IDs start with the millisecond time the
// entry was added, so no entry is read to learn its age.
func (t *Transport) OldestAge(ctx context.Context, topic string) (time.Duration, error) {
	groups, err := t.client.XInfoGroups(ctx, topic).Result()
	if goredis.HasErrorPrefix(err, "no such key") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("oldest age of %s: xinfo groups: %w", topic, err)
	}
	i := slices.IndexFunc(groups, func(g goredis.XInfoGroup) bool { return g.Name == t.cfg.ConsumerGroup })
	if i < 0 {
		return 0, nil
	}
	var oldest time.Time
	if groups[i].Pending > 0 {
		p, err := t.client.XPending(ctx, topic, t.cfg.ConsumerGroup).Result()
		if err != nil {
			return 0, fmt.Errorf("oldest age of %s: xpending: %w", topic, err)
		}
		oldest = idTime(p.Lower)
	}
	next, err := t.client.XRangeN(ctx, topic, "("+groups[i].LastDeliveredID, "+", 1).Result()
	if err != nil {
		return 0, fmt.Errorf("oldest age of %s: xrange: %w", topic, err)
	}
	if len(next) == 1 {
		if at := idTime(next[0].ID); oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	if oldest.IsZero() {
		return 0, nil
	}
	return max(time.Since(oldest), 0), nil
}

// idTime reads the time part of a stream ID ("1700000000000-0").
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}
