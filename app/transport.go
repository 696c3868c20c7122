package app

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
	"github.com/eventflow/eventflow/transport/memory"
	pgtransport "github.com/eventflow/eventflow/transport/postgres"
	redistransport "github.com/eventflow/eventflow/transport/redis"
)

// openTransport opens the configured transport. A new transport is one
// package under transport/ and one case here.
func openTransport(cfg Config, st store.Store, logger watermill.LoggerAdapter) (transport.Transport, error) {
	switch cfg.Transport {
	case TransportRedis:
		t, err := redistransport.New(redistransport.Config{
			URL:           cfg.RedisURL,
			ConsumerGroup: cfg.ConsumerGroup,
			ConsumerName:  cfg.ConsumerName,
			Consumers:     cfg.WorkerConcurrency,
			MaxIdleTime:   cfg.RedeliveryIdle,
			ReadBatch:     cfg.RedisReadBatch,
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("redis transport (REDIS_URL): %w", err)
		}
		return t, nil
	case TransportPostgres:
		pg, ok := st.(*store.Postgres)
		if !ok {
			return nil, errors.New("EVENTFLOW_TRANSPORT=postgres needs the Postgres store")
		}
		t, err := pgtransport.New(pgtransport.Config{
			DB:          pg.DB().DB,
			Consumers:   cfg.WorkerConcurrency,
			BatchSize:   cfg.PostgresReadBatch,
			AckDeadline: cfg.RedeliveryIdle,
			// Only the quarantine reads the counts.
			SkipDeliveryCounts: cfg.MaxDeliveries == 0,
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("postgres transport: %w", err)
		}
		return t, nil
	case TransportMemory:
		return memory.New(memory.Config{}, logger), nil
	}
	return nil, fmt.Errorf("EVENTFLOW_TRANSPORT: unknown transport %q", cfg.Transport)
}
