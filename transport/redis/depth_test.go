package redis

import (
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	goredis "github.com/redis/go-redis/v9"
)

func TestDepth(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{})
	if err := client.XGroupCreateMkStream(t.Context(), topic, tr.cfg.ConsumerGroup, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	assertDepth(t, tr, topic, 0)

	for i := range 5 {
		publish(t, tr, topic, fmt.Sprint(i))
	}
	assertDepth(t, tr, topic, 5)

	// Delivered and not acked: pending instead of lag, still 5.
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	var received []*message.Message
	for range 5 {
		received = append(received, receive(t, msgs))
	}
	if n := pendingCount(t, client, topic, tr.cfg.ConsumerGroup); n != 5 {
		t.Errorf("%d entries pending, want 5", n)
	}
	assertDepth(t, tr, topic, 5)

	for _, msg := range received {
		msg.Ack()
	}
	// The subscriber sends XACK after Ack returns.
	eventually(t, depthIs(t, tr, topic, 0))
}

func TestDepthWithoutStreamOrGroup(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{})

	assertDepth(t, tr, topic, 0)

	publish(t, tr, topic, "no group reads this")
	if err := client.XGroupCreate(t.Context(), topic, "another_group", "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	assertDepth(t, tr, topic, 0)
}

func TestDepthEstimatesUnknownLag(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{})
	if err := client.XGroupCreateMkStream(t.Context(), topic, tr.cfg.ConsumerGroup, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	var ids []string
	for i := range 4 {
		id, err := client.XAdd(t.Context(), &goredis.XAddArgs{
			Stream: topic,
			Values: map[string]any{"n": i},
		}).Result()
		if err != nil {
			t.Fatalf("XADD: %v", err)
		}
		ids = append(ids, id)
	}
	// Deleting an entry the group has not read makes its lag unknown.
	if err := client.XDel(t.Context(), topic, ids[1]).Err(); err != nil {
		t.Fatalf("XDEL: %v", err)
	}
	groups, err := client.XInfoGroups(t.Context(), topic).Result()
	if err != nil {
		t.Fatalf("XINFO GROUPS: %v", err)
	}
	if len(groups) != 1 || groups[0].Lag != -1 {
		t.Fatalf("XINFO GROUPS = %+v, want one group with unknown lag (-1)", groups)
	}
	// Nothing read yet: the estimate is the stream's length, here exact.
	assertDepth(t, tr, topic, 3)

	// The group reads one entry and acks it. 2 entries are left, but Redis
	// no longer knows how many the group has read, and the estimate errs
	// high: the stream's length.
	readAndAck(t, client, topic, tr.cfg.ConsumerGroup, 1)
	assertDepth(t, tr, topic, 3)

	// All read and acked: exact again.
	readAndAck(t, client, topic, tr.cfg.ConsumerGroup, 2)
	assertDepth(t, tr, topic, 0)
}

// readAndAck reads n entries of topic as a consumer of group and acks them.
func readAndAck(t *testing.T, client *goredis.Client, topic, group string, n int64) {
	t.Helper()
	streams, err := client.XReadGroup(t.Context(), &goredis.XReadGroupArgs{
		Group:    group,
		Consumer: "reader",
		Streams:  []string{topic, ">"},
		Count:    n,
		Block:    -1,
	}).Result()
	if err != nil {
		t.Fatalf("XREADGROUP: %v", err)
	}
	if got := len(streams[0].Messages); int64(got) != n {
		t.Fatalf("XREADGROUP read %d entries, want %d", got, n)
	}
	for _, m := range streams[0].Messages {
		if err := client.XAck(t.Context(), topic, group, m.ID).Err(); err != nil {
			t.Fatalf("XACK: %v", err)
		}
	}
}

func assertDepth(t *testing.T, tr *Transport, topic string, want int64) {
	t.Helper()
	got, err := tr.Depth(t.Context(), topic)
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	if got != want {
		t.Errorf("Depth = %d, want %d", got, want)
	}
}
