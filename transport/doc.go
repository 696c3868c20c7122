// Package transport is the seam between the ingest handler and the process
// handler: a Transport gives the rest of eventflow a Watermill publisher and
// subscriber for the configured kind, and closes them.
//
// Guarantee: a message published without error is delivered to the process
// handler at least once, and again until the handler acknowledges it; the
// handler deduplicates by event_id, so processed_events holds it once.
//
// Each transport, in one sentence:
//
//   - redis (transport/redis, the default): an event is queued once Redis
//     accepted it (XADD) after raw_events committed, and stays pending in
//     the consumer group until a worker acknowledges it — durable as far as
//     Redis is (run it with AOF).
//   - postgres (transport/postgres, the outbox): an event is queued in the
//     same transaction that stores it in raw_events, so it is stored and
//     queued or neither, and workers consume it from Postgres with nothing
//     else running.
//   - memory (transport/memory): an event lives in the process until its
//     handler acknowledged it; nothing survives the process (tests and the
//     dev mode).
//
// Adding a transport (NATS JetStream, RabbitMQ …) is one package here that
// implements Transport, and one case in app/transport.go.
//
// # Failure handling
//
// A message that cannot be decoded is delivered anyway, flagged with
// MalformedMetadataKey, so that it is dead-lettered and never stops
// consumption. A publish error reaches the ingest handler, which answers
// the client 503: with redis and memory the event stays in raw_events,
// recorded as unpublished, and the client's retry (or the relay) publishes
// it; with postgres the
// transaction rolls back and nothing is stored.
package transport
