package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func TestGatedClientHoldsOneEntryUntilReleased(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	const group = "gated"
	if err := client.XGroupCreateMkStream(t.Context(), topic, group, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	var ids []string
	for range 2 {
		id, err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: topic, Values: map[string]any{"k": "v"}}).Result()
		if err != nil {
			t.Fatalf("XADD: %v", err)
		}
		ids = append(ids, id)
	}
	gated := newGatedClient(client)
	read := func(ctx context.Context) ([]goredis.XStream, error) {
		return gated.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    group,
			Consumer: "c",
			Streams:  []string{topic, ">"},
			Count:    1,
			Block:    -1,
		}).Result()
	}

	streams, err := read(t.Context())
	if err != nil || streams[0].Messages[0].ID != ids[0] {
		t.Fatalf("first read = %v, %v; want entry %s", streams, err, ids[0])
	}

	// Holding an entry, the consumer does not read another.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read while holding an entry: got %v, want it to wait until the deadline", err)
	}
	if n := pendingCount(t, client, topic, group); n != 1 {
		t.Errorf("%d entries pending, want 1", n)
	}

	// A claim that gets nothing (the entry is not idle long enough) frees
	// the slot it took.
	gated.release()
	claimed, err := gated.XClaim(t.Context(), &goredis.XClaimArgs{
		Stream:   topic,
		Group:    group,
		Consumer: "other",
		MinIdle:  time.Hour,
		Messages: []string{ids[0]},
	}).Result()
	if err != nil || len(claimed) != 0 {
		t.Fatalf("XCLAIM = %v, %v; want nothing claimed", claimed, err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	streams, err = read(ctx)
	if err != nil || streams[0].Messages[0].ID != ids[1] {
		t.Fatalf("read after release = %v, %v; want entry %s", streams, err, ids[1])
	}
}
