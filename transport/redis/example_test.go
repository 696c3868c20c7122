package redis_test

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/eventflow/eventflow/transport/redis"
)

// A worker process: one router handler gets up to Consumers messages at
// once, and dead-letters the entries that are not Watermill messages.
func Example() {
	logger := watermill.NewSlogLogger(slog.Default())
	tr, err := redis.New(redis.Config{
		URL:           "redis://127.0.0.1:6379/0",
		ConsumerGroup: "eventflow-workers",
		ConsumerName:  "worker-1", // the hostname, in a deployment
	}, logger)
	if err != nil {
		slog.Error("create transport", "err", err)
		return
	}
	// After the router: it closes the subscriber on its way out.
	defer tr.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		slog.Error("create router", "err", err)
		return
	}
	router.AddConsumerHandler("process", "events", tr.Subscriber(), func(msg *message.Message) error {
		if reason, ok := redis.IsMalformed(msg); ok {
			// Dead-letter msg as a permanent failure, then ack it.
			slog.Warn("malformed entry", "reason", reason, "payload", string(msg.Payload))
			return nil
		}
		// Process the event idempotently: it may come more than once.
		return nil
	})
	if err := router.Run(context.Background()); err != nil {
		slog.Error("run router", "err", err)
	}
}
