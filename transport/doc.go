// Package transport is the seam between the ingest handler and the process
// handler: a Transport gives the rest of eventflow a Watermill publisher and
// subscriber for the configured kind, and closes them.
//
// Guarantee: a message published without error is delivered to the process
// handler at least once, and again until the handler acknowledges it; the
// handler deduplicates by event_id, so processed_events holds it once.
//
//   - redis (package transport/redis): Redis Streams with a consumer group;
//     an entry stays pending until acknowledged and is claimed by another
//     consumer when its consumer dies. Durable as far as the Redis server is
//     (run it with AOF for no loss across restarts).
//
// # Failure handling
//
// A message that cannot be decoded is delivered anyway, flagged with
// MalformedMetadataKey, so that it is dead-lettered and never stops
// consumption. A publish error reaches the caller, who answers the client
// 503 and keeps raw_events as the record to publish again.
package transport
