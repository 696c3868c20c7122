// Package redis carries eventflow's events over Redis Streams, with
// Watermill's redisstream Pub/Sub underneath; Transport implements
// transport.Transport.
//
// Delivery is at least once: an entry leaves its consumer group's pending
// entries list only after the handler has acknowledged it; a consumer that
// dies leaves its entries pending until another consumer of the group
// claims them after Config.MaxIdleTime; and a graceful close can drop the
// acks of messages in flight, which then come back after MaxIdleTime.
// Handlers must therefore be idempotent.
//
// A topic is a stream. The publisher appends one entry per message (XADD)
// and never trims the stream: trimming drops entries whether or not a group
// has read them. A job that trims must stay behind the slowest group.
//
// Subscribe creates the stream and the consumer group if they do not exist;
// a new group starts at the beginning of the stream, so it also gets the
// events published before it existed. It then starts Config.Consumers
// consumers, ConsumerName-0 to ConsumerName-(Consumers-1), each with its
// own connection, and merges their messages into the one channel it
// returns. A consumer takes an entry from Redis only once the handler has
// acknowledged the previous one, so one router handler has up to Consumers
// messages in flight, and no entry waits in the process behind another.
// Messages are not kept in order.
//
// # Batched consumption
//
// With Config.ReadBatch above 1 (eventflow's default), each consumer reads
// up to ReadBatch entries per XREADGROUP and hands them all to the handler
// at once; acknowledgements go out in one XACK per burst, and idle entries
// are claimed with XAUTOCLAIM. The guarantee is the same; the round trips
// per message are not. With ReadBatch 0 or 1 each consumer is a
// redisstream subscriber with one message in flight.
//
// # Failure handling
//
//   - The handler returns an error (nack): the same consumer hands the
//     message to the handler again after Config.NackResendSleep, in
//     process; Redis does not see the nack, and the consumer takes no other
//     message meanwhile. Bound the retries with middleware and dead-letter
//     what is left.
//   - The handler takes longer than MaxIdleTime: another consumer claims the
//     message and handles it at the same time. MaxIdleTime must exceed the
//     longest handling of a message, retries included.
//   - A process dies, or loses Redis for good: its pending entries are
//     claimed by a live consumer of the group, which looks every
//     Config.ClaimInterval for entries idle longer than MaxIdleTime. A
//     consumer that restarts under the same name does not read its own
//     pending entries again; they come back by the same claim.
//   - Close, or the router's close, with messages in flight: the consumers
//     stop waiting for acks. An ack that has not reached Redis is lost, and
//     its message is delivered again after MaxIdleTime.
//   - An entry that is not a Watermill message, written by another producer
//     or by hand: it arrives as a message flagged with MalformedMetadataKey,
//     with a new UUID and the entry's fields as a JSON payload (see
//     IsMalformed), for the process handler to dead-letter and acknowledge.
//     redisstream alone would end the subscription on it, and the entry,
//     still pending, would end the next one too.
//   - Redis is unreachable: Publish, Ping and Depth return errors. Consumers
//     log the failed reads, retry every 500 ms and resume when Redis is
//     back; acks are retried every 100 ms until they succeed or the
//     subscription ends.
//   - The stream or the group is deleted while subscribed, for instance by a
//     Redis restart without persistence: the consumers stop, the channel is
//     closed and the router handler ends, instead of failing reads forever.
//     Subscribing again creates them. Run Redis with appendonly and
//     maxmemory-policy noeviction: without them a restart or an eviction
//     loses the events.
//
// Close closes the consumers and then the publisher, with their go-redis
// clients: redisstream closes the client it is given, so no two of them
// share one.
package redis
