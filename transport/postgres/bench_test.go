package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// benchMessages is how many messages one run of BenchmarkConsume consumes.
const benchMessages = 5000

// BenchmarkConsume measures end-to-end throughput from a backlog: it
// publishes benchMessages messages, then times a router handler that does
// what eventflow's process handler does to the database (one small INSERT
// ... ON CONFLICT DO NOTHING, autocommit) until every message is handled
// and its ack committed (the outbox is empty). It reports msg/s for each
// Consumers × BatchSize:
//
//	go test -run '^$' -bench Consume -benchtime 3x ./transport/postgres/
func BenchmarkConsume(b *testing.B) {
	db := newDB(b, 40)
	if _, err := db.Exec(`CREATE TABLE bench_processed (event_id text PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		b.Fatalf("create scratch table: %v", err)
	}
	for _, consumers := range []int{1, 8, 16} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("consumers=%d/batch=%d", consumers, batch), func(b *testing.B) {
				var elapsed time.Duration
				for range b.N {
					b.StopTimer()
					tr := newTestTransport(b, Config{DB: db, Consumers: consumers, BatchSize: batch})
					topic := newTopic()
					publishBacklog(b, tr, topic, benchMessages)
					b.StartTimer()
					elapsed += consume(b, db, tr, topic, benchMessages)
				}
				b.ReportMetric(float64(benchMessages*b.N)/elapsed.Seconds(), "msg/s")
			})
		}
	}
}

// publishBacklog publishes n messages of about 300 bytes, like an event,
// 500 per statement.
func publishBacklog(b *testing.B, tr *Transport, topic string, n int) {
	b.Helper()
	var batch []*message.Message
	for i := range n {
		id := uuid.NewString()
		payload := fmt.Sprintf(`{"event_id":%q,"event_type":"order.placed","source":"bench","timestamp":"2026-11-27T10:00:00Z","payload":{"order_id":"A-%d","user_id":"u-1","currency":"EUR","items":[{"sku":"S-1","quantity":2,"unit_price":9.99}]}}`, id, i)
		msg := message.NewMessage(id, []byte(payload))
		msg.Metadata.Set("correlation_id", id)
		batch = append(batch, msg)
		if len(batch) == 500 || i == n-1 {
			if err := tr.Publisher().Publish(topic, batch...); err != nil {
				b.Fatalf("publish: %v", err)
			}
			batch = batch[:0]
		}
	}
}

// consume runs a router on topic until n messages are handled and the
// outbox is empty, and returns how long that took.
func consume(b *testing.B, db *sql.DB, tr *Transport, topic string, n int64) time.Duration {
	b.Helper()
	var handled atomic.Int64
	allHandled := make(chan struct{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatalf("NewRouter: %v", err)
	}
	router.AddConsumerHandler("process", topic, tr.Subscriber(), func(msg *message.Message) error {
		_, err := db.ExecContext(msg.Context(),
			`INSERT INTO bench_processed (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, msg.UUID)
		if err != nil {
			return err
		}
		if handled.Add(1) == n {
			close(allHandled)
		}
		return nil
	})

	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	select {
	case <-allHandled:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d messages handled within 5 minutes", handled.Load(), n)
	}
	for {
		depth, err := tr.Depth(ctx, topic)
		if err != nil {
			b.Fatalf("Depth: %v", err)
		}
		if depth == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("router: %v", err)
	}
	return elapsed
}

// BenchmarkLatency measures how long a message waits in the outbox when
// the consumers keep up: it publishes 200 messages a second, one per
// statement, for 2 seconds, to DefaultConsumers consumers, and reports the
// median and 99th percentile from Publish returning to the handler
// running (the same handler as BenchmarkConsume), for each PollInterval ×
// BatchSize:
//
//	go test -run '^$' -bench Latency -benchtime 1x ./transport/postgres/
func BenchmarkLatency(b *testing.B) {
	const (
		rate     = 200
		duration = 2 * time.Second
		n        = int(rate * duration / time.Second)
	)
	db := newDB(b, 40)
	if _, err := db.Exec(`CREATE TABLE bench_processed (event_id text PRIMARY KEY)`); err != nil {
		b.Fatalf("create scratch table: %v", err)
	}
	for _, poll := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("poll=%s/batch=%d", poll, batch), func(b *testing.B) {
				var latencies []time.Duration
				for range b.N {
					tr := newTestTransport(b, Config{DB: db, BatchSize: batch, PollInterval: poll})
					topic := newTopic()
					latencies = append(latencies, measureLatency(b, db, tr, topic, n, time.Second/rate)...)
				}
				slices.Sort(latencies)
				b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// measureLatency publishes n messages, one every interval, to a running
// router and returns each one's time from published to handled.
func measureLatency(b *testing.B, db *sql.DB, tr *Transport, topic string, n int, interval time.Duration) []time.Duration {
	b.Helper()
	latencies := make(chan time.Duration, n)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatalf("NewRouter: %v", err)
	}
	router.AddConsumerHandler("process", topic, tr.Subscriber(), func(msg *message.Message) error {
		_, err := db.ExecContext(msg.Context(),
			`INSERT INTO bench_processed (event_id) VALUES ($1) ON CONFLICT DO NOTHING`, msg.UUID)
		if err != nil {
			return err
		}
		published, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get("published_at"))
		if err != nil {
			return err
		}
		latencies <- time.Since(published)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	<-router.Running()

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for range n {
		<-ticker.C
		msg := message.NewMessage(uuid.NewString(), []byte(`{}`))
		msg.Metadata.Set("published_at", time.Now().Format(time.RFC3339Nano))
		if err := tr.Publisher().Publish(topic, msg); err != nil {
			b.Fatalf("publish: %v", err)
		}
	}
	var got []time.Duration
	for range n {
		select {
		case l := <-latencies:
			got = append(got, l)
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d messages handled within a minute", len(got), n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatalf("router: %v", err)
	}
	return got
}
