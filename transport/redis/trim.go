package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/transport"
)

var _ transport.Trimmer = (*Transport)(nil)

// Trim implements transport.Trimmer: it deletes the entries of topic that
// every consumer group of the stream has been handed and has acknowledged,
// and returns how many went. Without it a stream keeps every event ever
// published, in Redis's memory.
//
// An entry is finished for a group when it is at or before the group's
// last-delivered ID and before its oldest pending entry. Trim removes the
// entries before the lowest such bound over all groups (XTRIM MINID), so an
// entry not yet delivered, or delivered and not acknowledged, to any group
// is never removed. That is what makes it safe, where MAXLEN is not: a
// length cap drops the oldest entries whether or not they were consumed.
// A stream with no group is left alone: nobody has consumed it yet.
func (t *Transport) Trim(ctx context.Context, topic string) (int64, error) {
	groups, err := t.client.XInfoGroups(ctx, topic).Result()
	if goredis.HasErrorPrefix(err, "no such key") {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("trim %s: xinfo groups: %w", topic, err)
	}
	if len(groups) == 0 {
		return 0, nil
	}
	var bound string
	for _, g := range groups {
		b := g.LastDeliveredID
		if g.Pending > 0 {
			p, err := t.client.XPending(ctx, topic, g.Name).Result()
			if err != nil {
				return 0, fmt.Errorf("trim %s: xpending %s: %w", topic, g.Name, err)
			}
			if p.Count > 0 && idLess(p.Lower, b) {
				b = p.Lower
			}
		}
		if bound == "" || idLess(b, bound) {
			bound = b
		}
	}
	if bound == "" || bound == "0-0" {
		return 0, nil
	}
	n, err := t.client.XTrimMinID(ctx, topic, bound).Result()
	if err != nil {
		return 0, fmt.Errorf("trim %s: %w", topic, err)
	}
	return n, nil
}

// idLess reports whether stream ID a sorts before b.
func idLess(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	if am != bm {
		return am < bm
	}
	return as < bs
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
