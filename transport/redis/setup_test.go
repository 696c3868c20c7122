package redis

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// testRedisURL is the Redis the integration tests use. Tests share it and
// isolate themselves by stream and group names.
const testRedisURL = "redis://127.0.0.1:6379/0"

// waitTimeout bounds every wait for something to happen in Redis.
const waitTimeout = 15 * time.Second

// requireRedis returns a client of the test Redis, closed when the test
// ends. When Redis does not answer, it skips the test, or fails it under
// CI (CI=true): a green CI must mean the tests ran.
func requireRedis(t *testing.T) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(testRedisURL)
	if err != nil {
		t.Fatalf("parse redis URL: %v", err)
	}
	client := goredis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s is required under CI: %v", testRedisURL, err)
		}
		t.Skipf("redis at %s not reachable, skipping (CI=true fails instead): %v", testRedisURL, err)
	}
	return client
}

// uniqueName returns a stream or group name no other test uses.
func uniqueName() string {
	return "test_" + uuid.NewString()
}

// setup returns a client of the test Redis and a new stream name, deleted
// when the test ends.
func setup(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	client := requireRedis(t)
	topic := uniqueName()
	t.Cleanup(func() {
		if err := client.Del(context.Background(), topic).Err(); err != nil {
			t.Errorf("delete stream %s: %v", topic, err)
		}
	})
	return client, topic
}

// newTestTransport returns a Transport on the test Redis, closed when the
// test ends. Empty ConsumerGroup and ConsumerName get unique names.
func newTestTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	cfg.URL = testRedisURL
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = uniqueName()
	}
	if cfg.ConsumerName == "" {
		cfg.ConsumerName = uniqueName()
	}
	tr, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// publish publishes one message with payload to topic and returns it.
func publish(t *testing.T, tr *Transport, topic, payload string) *message.Message {
	t.Helper()
	msg := message.NewMessage(uuid.NewString(), []byte(payload))
	if err := tr.Publisher().Publish(topic, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return msg
}

// receive returns the next message of msgs, failing the test when none
// comes within waitTimeout or the channel is closed.
func receive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return msg
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %s", waitTimeout)
		return nil
	}
}

// eventually polls cond every 50ms until it returns true, and fails the
// test with what cond last reported if that takes longer than waitTimeout.
func eventually(t *testing.T, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within %s: %s", waitTimeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitClosed waits until msgs is closed, failing the test if a message
// comes instead or nothing happens within waitTimeout.
func waitClosed(t *testing.T, msgs <-chan *message.Message) {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		if ok {
			t.Fatalf("got message %s, want the channel closed", msg.UUID)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("channel not closed within %s", waitTimeout)
	}
}
