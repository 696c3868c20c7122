package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/transport"
)

// Trim removes exactly the entries every group has been handed and has
// acknowledged: never one still to deliver, nor one pending.
func TestTrimKeepsWhatIsNotFinished(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	tr := newTestTransport(t, Config{})
	ctx := t.Context()
	if n, err := tr.Trim(ctx, topic); err != nil || n != 0 {
		t.Fatalf("Trim of a missing stream: %d, %v", n, err)
	}
	var ids []string
	for range 10 {
		id, err := client.XAdd(ctx, &goredis.XAddArgs{Stream: topic, Values: map[string]any{"v": "x"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if n, err := tr.Trim(ctx, topic); err != nil || n != 0 {
		t.Fatalf("Trim of a stream with no group: %d, %v; want nothing removed", n, err)
	}
	group, other := uniqueName(), uniqueName()
	for _, g := range []string{group, other} {
		if err := client.XGroupCreate(ctx, topic, g, "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(g string, n int64) {
		t.Helper()
		if err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: g, Consumer: "c", Streams: []string{topic, ">"}, Count: n}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// group: 6 delivered, of which entries 0-2 and 4 acknowledged (3 pending).
	read(group, 6)
	if err := client.XAck(ctx, topic, group, ids[0], ids[1], ids[2], ids[4]).Err(); err != nil {
		t.Fatal(err)
	}
	// other has read nothing yet: nothing may go.
	if n, err := tr.Trim(ctx, topic); err != nil || n != 0 {
		t.Fatalf("Trim while a group has read nothing: %d, %v; want 0", n, err)
	}
	// other: 8 delivered and all acknowledged.
	read(other, 8)
	if err := client.XAck(ctx, topic, other, ids[:8]...).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := tr.Trim(ctx, topic)
	if err != nil || n != 3 {
		t.Fatalf("Trim: %d, %v; want the 3 entries before group's oldest pending one", n, err)
	}
	left, err := client.XRange(ctx, topic, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 7 || left[0].ID != ids[3] {
		t.Errorf("%d entries left starting at %v, want 7 from %s", len(left), left[0].ID, ids[3])
	}
	// Once group acknowledges everything it read, what both finished goes;
	// the entries neither group has been handed (8 and 9) stay.
	if err := client.XAck(ctx, topic, group, ids[3], ids[5]).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := tr.Trim(ctx, topic); err != nil || n != 2 {
		t.Fatalf("second Trim: %d, %v; want entries 3 and 4", n, err)
	}
	if l, _ := client.XLen(ctx, topic).Result(); l != 5 {
		t.Errorf("stream length %d, want 5 (entry 5, the last group handed out, and 6-9)", l)
	}
}

// An entry claimed from a dead consumer carries Redis's delivery count, and
// an entry read for the first time carries none.
func TestBatchSubscriberReportsDeliveryCount(t *testing.T) {
	t.Parallel()
	client, topic := setup(t)
	cfg := Config{ConsumerGroup: uniqueName(), Consumers: 1, ReadBatch: 8, MaxIdleTime: 300 * time.Millisecond, ClaimInterval: 100 * time.Millisecond}
	tr := newTestTransport(t, cfg)
	fresh := publish(t, tr, topic, "fresh")
	if err := client.XGroupCreateMkStream(context.Background(), topic, cfg.ConsumerGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// A consumer that dies holding the entry.
	if err := client.XReadGroup(t.Context(), &goredis.XReadGroupArgs{Group: cfg.ConsumerGroup, Consumer: "dead", Streams: []string{topic, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	second := publish(t, tr, topic, "second")
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for range 2 {
		msg := receive(t, msgs)
		seen[msg.UUID] = msg.Metadata.Get(transport.DeliveriesMetadataKey)
		msg.Ack()
	}
	if got := seen[fresh.UUID]; got != "2" {
		t.Errorf("claimed entry: deliveries %q, want \"2\" (read by the dead consumer, then claimed)", got)
	}
	if got, ok := seen[second.UUID]; !ok || got != "" {
		t.Errorf("entry read for the first time: deliveries %q (seen %v), want none", got, ok)
	}
}

// A subscription whose context was cancelled is ending; subscribing to its
// topic again at once waits for it instead of failing.
func TestBatchSubscriberResubscribeAfterCancel(t *testing.T) {
	t.Parallel()
	_, topic := setup(t)
	tr := newTestTransport(t, Config{ConsumerGroup: uniqueName(), Consumers: 2, ReadBatch: 8})
	for range 5 {
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := tr.Subscriber().Subscribe(ctx, topic); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		cancel()
	}
	msgs, err := tr.Subscriber().Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe after the cancelled ones: %v", err)
	}
	sent := publish(t, tr, topic, "after resubscribing")
	if got := receive(t, msgs); got.UUID != sent.UUID {
		t.Errorf("got %s, want %s", got.UUID, sent.UUID)
	}
}
