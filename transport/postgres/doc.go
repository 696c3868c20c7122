// Package postgres carries eventflow's events through a Postgres outbox
// table, eventflow_outbox, from which the workers consume directly: no
// broker besides the database. Transport implements transport.Transport
// and transport.TxPublisher, with watermill-sql's publisher over a schema
// of its own and a subscriber of its own.
//
// An event is queued in the same transaction that stores it (PublishTx),
// so it is stored if and only if it is queued; it is delivered at least
// once, because a row leaves the outbox only when the transaction that
// deletes it on ack commits, and a consumer that crashes or does not
// finish its batch rolls back and leaves the rows for the next poll.
// Handlers must therefore be idempotent.
//
// # How it works
//
// All topics share one table, created by migration 00002_outbox.sql. A
// publish inserts one row per message, with one statement. Subscribe runs
// Config.Consumers consumers and sends their messages to one channel; each
// consumer, in a READ COMMITTED transaction, locks the next
// Config.BatchSize rows of the topic that nobody else holds,
//
//	SELECT ... WHERE topic = $1 ORDER BY "offset" LIMIT $2 FOR UPDATE SKIP LOCKED
//
// hands all of them to the handler at once, waits for their acks, then
// deletes the acked rows and commits. So one router handler has up to
// Consumers × BatchSize messages in flight, which its group commits of
// processed_events need to keep up with ingestion, and the consumers of
// every process of a deployment work side by side on disjoint batches:
// all subscribers of a topic compete for its messages, each message goes
// to one of them. There are no consumer groups (eventflow has one group
// of workers). Messages are roughly in publish order, not strictly:
// consumers run concurrently, Watermill's router handles the messages of
// a batch side by side, and redeliveries come back late.
//
// (watermill-sql's own subscriber, used here before, hands a batch out
// one message at a time, waiting for each ack: one message in flight per
// consumer, and a handler that commits in groups finds nothing to group.
// With 8 consumers it processed about 1,200 events/s of a 3,500/s
// ingest; see BENCHMARKS.md.)
//
// Why not watermill-sql's DefaultPostgreSQLSchema: it keeps a read
// position per consumer group and, so as not to skip a row that a slower
// transaction commits later with a lower offset, only reads rows whose
// transaction ID (xid8) is below the oldest transaction still open in the
// database. Any open transaction with an ID, anywhere in the database,
// stalls delivery until it ends; the offset row is locked FOR UPDATE, so
// one group has a single message in flight; and a restored dump restarts
// transaction IDs below the stored position (watermill#576). Its
// PostgreSQLQueueSchema has no position, but locks without SKIP LOCKED, so
// its subscribers wait for each other. Here no position is kept: a row is
// in the table until it is acked, so a row committed late is simply found
// by the next poll, SKIP LOCKED lets the consumers take disjoint batches
// instead of queueing behind each other's locks, and deleting on ack keeps
// the table as small as the backlog, so each poll reads a few index
// entries and Depth is a count.
//
// # Failure handling
//
//   - The handler returns an error (nack): the same consumer hands the
//     message to the handler again after Config.ResendInterval, keeping
//     the row locked. Bound the retries with middleware and dead-letter
//     what is left. The rest of the batch goes on meanwhile, but its rows
//     are deleted only when the whole batch has ended.
//   - A message of the batch is not acked within Config.AckDeadline of
//     the batch being locked (nacks included): the batch ends, the
//     contexts of its messages still in flight are cancelled, the acked
//     rows are deleted, and the others are unlocked and delivered again
//     by the next poll, perhaps to another consumer. AckDeadline must
//     exceed the longest handling of a message, retries included.
//   - A process dies or loses its connection: Postgres rolls back its
//     transactions, and the rows of its batches, acked or not, are
//     delivered again. At most Consumers × BatchSize messages per process
//     come twice. Each batch was recorded in eventflow_outbox_deliveries
//     before it went out (unless Config.SkipDeliveryCounts), so those
//     messages carry transport.DeliveriesMetadataKey when they come
//     again, for the handler to quarantine a message that crashes every
//     worker it reaches, and they come one at a time per process, so
//     that the innocent ones do not share the guilty one's crashes. The
//     first consumer of each subscription sweeps records left behind
//     once a minute. A consumer whose process lives on finds its
//     transaction gone at its next heartbeat (it pings the transaction
//     every 5s, or four times within AckDeadline, while a batch is out)
//     and ends the batch there, cancelling the contexts of its messages,
//     which other consumers may be handling by then.
//   - Close, the router's close, or the cancellation of Subscribe's
//     context, with messages in flight: their contexts are cancelled, the
//     acks already given are committed, and the messages in flight, the
//     ones waiting for a resend and the rest of their batches are
//     delivered again: up to Consumers × BatchSize messages, which a
//     graceful restart therefore hands to the next process (as the Redis
//     transport does). Close waits up to 10s for the consumers' commits,
//     then cancels their queries.
//   - A row that is not a valid message (metadata that is not a JSON
//     object of strings, or an empty uuid, written by hand, say): it
//     arrives as a message flagged with transport.MalformedMetadataKey,
//     with the row's payload, for the process handler to dead-letter and
//     acknowledge. Refusing it would roll back its batch on every poll and
//     stop its consumer.
//   - Postgres is unreachable: Publish, PublishTx, Ping and Depth return
//     errors; consumers log the failed poll, retry every second and
//     resume when Postgres is back.
//   - The outbox table is missing (migration 00002 not applied): Ping
//     fails, so /readyz reports it; publishes fail; consumers log their
//     failed polls and start consuming once the table is there.
//
// Postgres settings: a consumer keeps its transaction open, and so a
// connection, for as long as its batch is out, and the handlers need
// connections of their own for their writes (see Config.DB; New refuses
// a pool capped at Consumers or fewer). The server sees such a consumer
// as idle in transaction between its heartbeats, so an
// idle_in_transaction_session_timeout must exceed 5s; a shorter one ends
// every batch that takes longer. Transactions elsewhere do not delay
// delivery.
package postgres
