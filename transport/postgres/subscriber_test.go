package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/eventflow/eventflow/transport"
)

// With at least Consumers × BatchSize messages waiting, every consumer
// locks a full batch and hands all of it out at once: the handler has
// Consumers × BatchSize messages in flight, and never more.
func TestSubscriberHasConsumersMessagesInFlight(t *testing.T) {
	t.Parallel()
	const consumers, batch = 4, 5
	tr := newTestTransport(t, Config{Consumers: consumers, BatchSize: batch})
	topic := newTopic()
	const inFlightWant = consumers * batch
	total := 2 * inFlightWant
	for i := range total {
		publish(t, tr, topic, fmt.Sprint(i))
	}

	var (
		mu                    sync.Mutex
		inFlight, maxInFlight int
	)
	started := make(chan struct{}, total)
	release := make(chan struct{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	router.AddConsumerHandler("blocking", topic, tr.Subscriber(), func(*message.Message) error {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		started <- struct{}{}
		<-release
		return nil
	})
	runRouter(t, router)

	for range inFlightWant {
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatalf("fewer than %d handlers started within %s", inFlightWant, waitTimeout)
		}
	}
	nothingStarted(t, started, 200*time.Millisecond)
	mu.Lock()
	if inFlight != inFlightWant {
		t.Errorf("with all handlers blocked, %d messages in flight, want %d", inFlight, inFlightWant)
	}
	mu.Unlock()

	close(release)
	for range total - inFlightWant {
		select {
		case <-started:
		case <-time.After(waitTimeout):
			t.Fatalf("the other %d messages were not handled within %s", total-inFlightWant, waitTimeout)
		}
	}
	eventually(t, depthIs(t, tr, topic, 0))
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight != inFlightWant {
		t.Errorf("at most %d messages in flight, want %d", maxInFlight, inFlightWant)
	}
}

// nothingStarted fails the test if a handler starts within d.
func nothingStarted(t *testing.T, started <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-started:
		t.Error("a handler started while all were blocked: more in flight than the batches hold")
	case <-time.After(d):
	}
}

// Two processes share a topic: while one holds a message, the other gets
// the next one instead of waiting for the lock.
func TestSubscribersOfTwoProcessesShareATopic(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	cfg := Config{DB: db, Consumers: 1, BatchSize: 1}
	first, second := newTestTransport(t, cfg), newTestTransport(t, cfg)
	topic := newTopic()
	sent1 := publish(t, first, topic, "one")
	sent2 := publish(t, first, topic, "two")

	held := receive(t, subscribe(t, first, topic))
	if held.UUID != sent1.UUID {
		t.Fatalf("first process got %s, want the first message %s", held.UUID, sent1.UUID)
	}
	got := receive(t, subscribe(t, second, topic))
	if got.UUID != sent2.UUID {
		t.Errorf("second process got %s, want the second message %s", got.UUID, sent2.UUID)
	}
	got.Ack()
	held.Ack()
	eventually(t, depthIs(t, first, topic, 0))
}

func TestSubscriberRedeliversNackedMessage(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Consumers: 1, ResendInterval: 10 * time.Millisecond})
	topic := newTopic()
	sent := publish(t, tr, topic, "nack me")
	msgs := subscribe(t, tr, topic)

	receive(t, msgs).Nack()
	got := receive(t, msgs)
	if got.UUID != sent.UUID || string(got.Payload) != "nack me" {
		t.Errorf("after a nack got %s %q, want %s %q", got.UUID, got.Payload, sent.UUID, sent.Payload)
	}
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

// A nacked message waits ResendInterval with its row locked, but the rest
// of its batch does not wait for it.
func TestSubscriberNackDoesNotHoldUpTheBatch(t *testing.T) {
	t.Parallel()
	const resend = time.Second
	tr := newTestTransport(t, Config{Consumers: 1, BatchSize: 10, ResendInterval: resend})
	topic := newTopic()
	first := publish(t, tr, topic, "nacked")
	publish(t, tr, topic, "two")
	publish(t, tr, topic, "three")
	msgs := subscribe(t, tr, topic)

	nacked := receive(t, msgs)
	if nacked.UUID != first.UUID {
		t.Fatalf("got %s first, want %s", nacked.UUID, first.UUID)
	}
	start := time.Now()
	nacked.Nack()
	for range 2 {
		receive(t, msgs).Ack()
	}
	if elapsed := time.Since(start); elapsed >= resend {
		t.Errorf("the rest of the batch came %s after the nack, not before the resend (%s)", elapsed, resend)
	}
	// The acked rows are deleted when the batch ends, with the nacked one.
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 3 {
		t.Errorf("Depth while the batch is under way = %d, %v; want 3", n, err)
	}
	again := receive(t, msgs)
	if again.UUID != first.UUID {
		t.Errorf("got %s after the resend interval, want %s again", again.UUID, first.UUID)
	}
	if elapsed := time.Since(start); elapsed < resend {
		t.Errorf("resent %s after the nack, before ResendInterval %s", elapsed, resend)
	}
	again.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

// A batch whose messages are acked out of order, one never, deletes the
// acked rows, whatever their place, and hands the other back.
func TestSubscriberDeletesOnlyTheAckedRows(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	tr := newTestTransport(t, Config{Consumers: 1, BatchSize: 10, AckDeadline: deadline, PollInterval: 10 * time.Millisecond})
	topic := newTopic()
	for i := range 4 {
		publish(t, tr, topic, fmt.Sprint(i))
	}
	msgs := subscribe(t, tr, topic)
	batch := make([]*message.Message, 4)
	for i := range batch {
		batch[i] = receive(t, msgs)
	}
	batch[3].Ack()
	batch[0].Ack()
	batch[2].Ack()
	// batch[1] is never acked: its context ends with the ack deadline.
	select {
	case <-batch[1].Context().Done():
	case <-time.After(waitTimeout):
		t.Fatalf("context of the unacked message not cancelled within %s", waitTimeout)
	}
	for _, i := range []int{0, 2, 3} {
		select {
		case <-batch[i].Context().Done():
		default:
			t.Errorf("context of acked message %d not cancelled", i)
		}
	}
	got := receive(t, msgs)
	if got.UUID != batch[1].UUID {
		t.Errorf("got %s %q again, want the unacked %s %q", got.UUID, got.Payload, batch[1].UUID, batch[1].Payload)
	}
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 1 {
		t.Errorf("Depth with the unacked message delivered again = %d, %v; want 1", n, err)
	}
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

// Every delivery that ends without an ack counts, durably: the message
// carries the count from its second delivery on, for the process handler
// to quarantine it, and the ack deletes the count with the row.
func TestSubscriberCountsDeliveries(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 1, AckDeadline: 200 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	topic := newTopic()
	sent := publish(t, tr, topic, "never acked in time")
	msgs := subscribe(t, tr, topic)

	for want := 1; want <= 3; want++ {
		got := receive(t, msgs)
		if got.UUID != sent.UUID {
			t.Fatalf("delivery %d: got %s, want %s", want, got.UUID, sent.UUID)
		}
		wantKey := ""
		if want > 1 {
			wantKey = fmt.Sprint(want)
		}
		if n := got.Metadata.Get(transport.DeliveriesMetadataKey); n != wantKey {
			t.Errorf("delivery %d: %s = %q, want %q", want, transport.DeliveriesMetadataKey, n, wantKey)
		}
		if want == 3 {
			got.Ack()
		}
	}
	eventually(t, depthIs(t, tr, topic, 0))
	var counts int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM eventflow_outbox_deliveries`).Scan(&counts); err != nil || counts != 0 {
		t.Errorf("%d delivery counts left after the ack (%v), want 0", counts, err)
	}
}

// With SkipDeliveryCounts nothing is recorded, and a redelivered message
// carries no count.
func TestSubscriberSkipDeliveryCounts(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 1, AckDeadline: 200 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		SkipDeliveryCounts: true})
	topic := newTopic()
	publish(t, tr, topic, "never acked in time")
	msgs := subscribe(t, tr, topic)
	receive(t, msgs)
	got := receive(t, msgs)
	if n := got.Metadata.Get(transport.DeliveriesMetadataKey); n != "" {
		t.Errorf("second delivery carries %s %q, want none", transport.DeliveriesMetadataKey, n)
	}
	var records int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM eventflow_outbox_deliveries`).Scan(&records); err != nil || records != 0 {
		t.Errorf("%d delivery records (%v), want 0", records, err)
	}
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

// After a crash (here: batches whose acks never came), the rows delivered
// before come back one at a time per process, each alone in flight, even
// with several consumers, so that the innocent ones do not share every
// later crash with a guilty one; the batch after them is whole again.
func TestSubscriberHandsOutRedeliveriesOneAtATime(t *testing.T) {
	t.Parallel()
	const deadline = time.Second
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 2, BatchSize: 2, AckDeadline: deadline, PollInterval: 10 * time.Millisecond})
	topic := newTopic()
	sent := map[string]bool{}
	for i := range 4 {
		sent[publish(t, tr, topic, fmt.Sprint(i)).UUID] = true
	}
	msgs := subscribe(t, tr, topic)
	for range 4 {
		receive(t, msgs) // and never acked: both batches end at their deadline
	}

	for range 4 {
		got := receive(t, msgs)
		if !sent[got.UUID] || got.Metadata.Get(transport.DeliveriesMetadataKey) != "2" {
			t.Errorf("got %s (deliveries %q), want one of the 4 delivered a second time", got.UUID,
				got.Metadata.Get(transport.DeliveriesMetadataKey))
		}
		delete(sent, got.UUID)
		select {
		case other := <-msgs:
			t.Fatalf("%s handed out beside the redelivered %s", other.UUID, got.UUID)
		case <-time.After(deadline / 3):
		}
		got.Ack()
	}
	// Fresh messages go out as a batch again. (Published in one statement,
	// so that one consumer finds both in one poll.)
	var fresh2 []*message.Message
	for i := range 2 {
		fresh2 = append(fresh2, message.NewMessage(uuid.NewString(), []byte(fmt.Sprint("fresh ", i))))
	}
	if err := tr.Publisher().Publish(topic, fresh2...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	fresh := []*message.Message{receive(t, msgs), receive(t, msgs)}
	for _, m := range fresh {
		if n := m.Metadata.Get(transport.DeliveriesMetadataKey); n != "" {
			t.Errorf("fresh message %s has %s %q", m.UUID, transport.DeliveriesMetadataKey, n)
		}
		m.Ack()
	}
	eventually(t, depthIs(t, tr, topic, 0))
	eventually(t, func() (bool, string) {
		var records int
		err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM eventflow_outbox_deliveries`).Scan(&records)
		return err == nil && records == 0, fmt.Sprintf("%d delivery records left (%v), want 0", records, err)
	})
}

// A close says nothing against the messages it interrupts: their
// delivery does not count, and they come back as a batch.
func TestSubscriberCloseDoesNotCountTheBatch(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	cfg := Config{DB: db, Consumers: 1, BatchSize: 10}
	first := newTestTransport(t, cfg)
	topic := newTopic()
	for i := range 3 {
		publish(t, first, topic, fmt.Sprint(i))
	}
	msgs := subscribe(t, first, topic)
	receive(t, msgs)
	receive(t, msgs)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	msgs = subscribe(t, newTestTransport(t, cfg), topic)
	batch := []*message.Message{receive(t, msgs), receive(t, msgs), receive(t, msgs)}
	for _, m := range batch {
		if n := m.Metadata.Get(transport.DeliveriesMetadataKey); n != "" {
			t.Errorf("%s after a close has %s %q, want none", m.UUID, transport.DeliveriesMetadataKey, n)
		}
		m.Ack()
	}
	eventually(t, depthIs(t, first, topic, 0))
}

func TestJitter(t *testing.T) {
	t.Parallel()
	const poll = 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 100 {
		d := jitter(poll)
		if d < poll/2 || d >= 3*poll/2 {
			t.Fatalf("jitter(%s) = %s, want within [%s, %s)", poll, d, poll/2, 3*poll/2)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("%d distinct waits in 100: not spread", len(seen))
	}
}

func TestSubscriberRedeliversAfterAckDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	tr := newTestTransport(t, Config{Consumers: 1, AckDeadline: deadline, PollInterval: 10 * time.Millisecond})
	topic := newTopic()
	sent := publish(t, tr, topic, "too slow")
	msgs := subscribe(t, tr, topic)

	first := receive(t, msgs)
	start := time.Now()
	select {
	case <-first.Context().Done():
	case <-time.After(waitTimeout):
		t.Fatalf("message context not cancelled within %s of an ack deadline of %s", waitTimeout, deadline)
	}
	got := receive(t, msgs)
	if elapsed := time.Since(start); elapsed < deadline/2 {
		t.Errorf("delivered again after %s, long before the ack deadline %s", elapsed, deadline)
	}
	if got.UUID != sent.UUID {
		t.Errorf("got %s, want %s again", got.UUID, sent.UUID)
	}
	first.Ack() // too late: ignored
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

// A subscriber closed in the middle of a batch keeps the acks it was given
// and hands the rest of the batch back: nothing is lost, nothing acked
// comes again.
func TestSubscriberClosedMidBatchHandsTheRestBack(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	cfg := Config{DB: db, Consumers: 1, BatchSize: 10}
	first := newTestTransport(t, cfg)
	topic := newTopic()
	var sent []*message.Message
	for i := range 5 {
		sent = append(sent, publish(t, first, topic, fmt.Sprint(i)))
	}

	msgs := subscribe(t, first, topic)
	receive(t, msgs).Ack()
	inFlight := receive(t, msgs)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-inFlight.Context().Done():
	default:
		t.Error("context of the message in flight not cancelled by Close")
	}
	inFlight.Ack() // after Close: lost, so the message comes again
	if n, err := first.Depth(t.Context(), topic); err != nil || n != 4 {
		t.Fatalf("Depth after Close = %d, %v; want 4 (one acked of five)", n, err)
	}

	second := newTestTransport(t, cfg)
	msgs = subscribe(t, second, topic)
	for _, want := range sent[1:] {
		got := receive(t, msgs)
		if got.UUID != want.UUID {
			t.Errorf("got %s %q, want %s %q", got.UUID, got.Payload, want.UUID, want.Payload)
		}
		got.Ack()
	}
	eventually(t, depthIs(t, second, topic, 0))
}

// A consumer that dies without closing (its connection is gone, as in a
// crash of its process) leaves its batch, acked or not, to the others:
// its transaction rolls back.
func TestSubscriberCrashHandsTheBatchBack(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	cfg := Config{DB: db, Consumers: 1, BatchSize: 10}
	crashing := newTestTransport(t, cfg)
	topic := newTopic()
	for i := range 3 {
		publish(t, crashing, topic, fmt.Sprint(i))
	}
	msgs := subscribe(t, crashing, topic)
	receive(t, msgs).Ack()
	inFlight := receive(t, msgs)

	var killed int
	err := db.QueryRowContext(t.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND state = 'idle in transaction'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the consumer's backend: killed %d, %v; want 1", killed, err)
	}
	// The consumer finds its transaction gone at its next heartbeat, long
	// before the ack deadline, and ends the batch: the handler stops
	// working on a message that others may be handling by now.
	start := time.Now()
	select {
	case <-inFlight.Context().Done():
		if elapsed := time.Since(start); elapsed >= DefaultAckDeadline/2 {
			t.Errorf("batch ended %s after its connection died, not at a heartbeat", elapsed)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("context of the message in flight not cancelled within %s of its connection dying", waitTimeout)
	}

	// Well before the crashed consumer's ack deadline.
	msgs = subscribe(t, newTestTransport(t, cfg), topic)
	seen := map[string]bool{}
	for range 3 {
		got := receive(t, msgs)
		seen[string(got.Payload)] = true
		got.Ack()
	}
	if len(seen) != 3 {
		t.Errorf("got payloads %v, want the 3 messages of the batch", seen)
	}
	eventually(t, depthIs(t, crashing, topic, 0))
}

// A nacked message waiting for its resend when the subscriber closes is
// not handed out again, and the close does not wait out the resend.
func TestSubscriberCloseDuringResend(t *testing.T) {
	t.Parallel()
	const resend = 10 * time.Second
	tr := newTestTransport(t, Config{Consumers: 1, ResendInterval: resend})
	topic := newTopic()
	publish(t, tr, topic, "nacked")
	msgs := subscribe(t, tr, topic)
	receive(t, msgs).Nack()

	start := time.Now()
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if elapsed := time.Since(start); elapsed >= resend/2 {
		t.Errorf("Close took %s: it waited for the resend (%s)", elapsed, resend)
	}
	waitClosed(t, msgs)
	if n, err := tr.Depth(t.Context(), topic); err != nil || n != 1 {
		t.Errorf("Depth after Close = %d, %v; want 1, the nacked message kept", n, err)
	}
}

func TestSubscriberDeliversMalformedRowsFlagged(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db, Consumers: 1, BatchSize: 10})
	topic := newTopic()
	for _, row := range []struct{ uuid, metadata string }{
		{"not-a-uuid", `["not", "an", "object"]`},
		{"", `{"a": "b"}`},
		{"b1c0a3c4-6f0e-4a84-9b0c-3f1f2f7f0a01", `{"n": 1}`},
	} {
		_, err := db.ExecContext(t.Context(),
			`INSERT INTO eventflow_outbox (topic, uuid, payload, metadata) VALUES ($1, $2, '\xff00', $3)`,
			topic, row.uuid, row.metadata)
		if err != nil {
			t.Fatalf("insert garbage: %v", err)
		}
	}
	good := publish(t, tr, topic, "fine")
	msgs := subscribe(t, tr, topic)

	for i := range 3 {
		got := receive(t, msgs)
		reason, ok := got.Metadata[transport.MalformedMetadataKey]
		if !ok {
			t.Errorf("garbage row %d delivered without %s: %s %v", i, transport.MalformedMetadataKey, got.UUID, got.Metadata)
		}
		if string(got.Payload) != "\xff\x00" || got.UUID == "" {
			t.Errorf("garbage row %d: uuid %q payload %q (reason %q), want a uuid and the row's payload", i, got.UUID, got.Payload, reason)
		}
		got.Ack()
	}
	got := receive(t, msgs)
	if got.UUID != good.UUID || got.Metadata[transport.MalformedMetadataKey] != "" {
		t.Errorf("after the garbage got %s %v, want %s unflagged", got.UUID, got.Metadata, good.UUID)
	}
	got.Ack()
	eventually(t, depthIs(t, tr, topic, 0))
}

func TestSubscriberContextCancelClosesChannel(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Consumers: 2})
	topic := newTopic()
	ctx, cancel := context.WithCancel(t.Context())
	msgs, err := tr.Subscriber().Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	publish(t, tr, topic, "in flight at cancel")
	inFlight := receive(t, msgs)
	cancel()
	waitClosed(t, msgs)
	select {
	case <-inFlight.Context().Done():
	default:
		t.Error("context of the message in flight not cancelled")
	}

	// The transport goes on: a new subscription gets the message again.
	got := receive(t, subscribe(t, tr, topic))
	if got.UUID != inFlight.UUID {
		t.Errorf("got %s, want %s again", got.UUID, inFlight.UUID)
	}
	got.Ack()
}

func TestSubscriberCloseClosesEveryChannel(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Consumers: 2})
	topic := newTopic()
	a, b := subscribe(t, tr, topic), subscribe(t, tr, topic+"-other")

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = tr.Subscriber().Close() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, msgs := range []<-chan *message.Message{a, b} {
		select {
		case _, ok := <-msgs:
			if ok {
				t.Error("message after Close")
			}
		default:
			t.Error("channel still open after Close returned")
		}
	}
	if _, err := tr.Subscriber().Subscribe(t.Context(), topic); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close: got %v, want ErrClosed", err)
	}
}

func TestSubscriberInvalidTopic(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{})
	if _, err := tr.Subscriber().Subscribe(t.Context(), "no spaces"); err == nil {
		t.Error("Subscribe to an invalid topic returned nil")
	}
	// The failed subscription is gone: Close does not wait for it.
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// sweep strikes the rows that left the outbox from the old records and
// deletes the records it empties; records of batches that may still be
// out are left alone.
func TestSweepDeliveryRecords(t *testing.T) {
	t.Parallel()
	db := newDB(t, testPoolSize)
	tr := newTestTransport(t, Config{DB: db})
	topic := newTopic()
	publish(t, tr, topic, "still queued")
	var kept int64
	if err := db.QueryRowContext(t.Context(), `SELECT "offset" FROM eventflow_outbox`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	const gone = 1 << 40
	for _, r := range []struct {
		offsets string
		age     string
	}{
		{fmt.Sprintf("{%d}", gone), "1 hour"},          // deleted
		{fmt.Sprintf("{%d,%d}", kept, gone), "1 hour"}, // shrunk
		{fmt.Sprintf("{%d}", gone), "0 seconds"},       // too young: left
	} {
		if _, err := db.ExecContext(t.Context(), `INSERT INTO eventflow_outbox_deliveries (offsets, created_at) VALUES ($1, now() - $2::interval)`,
			r.offsets, r.age); err != nil {
			t.Fatal(err)
		}
	}
	c := &consumer{cfg: Config{DB: db, AckDeadline: time.Minute}}
	if err := c.sweep(t.Context()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	rows, err := db.QueryContext(t.Context(), `SELECT offsets::text FROM eventflow_outbox_deliveries ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var got []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		got = append(got, o)
	}
	want := []string{fmt.Sprintf("{%d}", kept), fmt.Sprintf("{%d}", gone)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records after the sweep %v, want %v", got, want)
	}
}
