package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

func TestOldestAge(t *testing.T) {
	t.Parallel()
	_, topic := setup(t)
	tr := newTestTransport(t, Config{})
	ctx := context.Background()
	if age, err := tr.OldestAge(ctx, topic); err != nil || age != 0 {
		t.Fatalf("no stream: %v %v, want 0", age, err)
	}
	// An entry added 90 s ago (its ID carries the time) waits undelivered.
	old := time.Now().Add(-90 * time.Second)
	if err := tr.client.XGroupCreateMkStream(ctx, topic, tr.cfg.ConsumerGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := tr.client.XAdd(ctx, &goredis.XAddArgs{Stream: topic, ID: idOf(old), Values: map[string]any{"k": "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	publish(t, tr, topic, "{}")
	age, err := tr.OldestAge(ctx, topic)
	if err != nil || age < 89*time.Second || age > 120*time.Second {
		t.Errorf("undelivered entry from 90 s ago: age %v (%v)", age, err)
	}
	// Delivered but not acknowledged: still the oldest.
	if err := tr.client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: tr.cfg.ConsumerGroup, Consumer: "c", Streams: []string{topic, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	if age, err := tr.OldestAge(ctx, topic); err != nil || age < 89*time.Second {
		t.Errorf("pending entry from 90 s ago: age %v (%v)", age, err)
	}
}

func idOf(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) + "-0" }
