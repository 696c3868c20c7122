// Package handlers holds eventflow's Watermill handlers — ingest and
// process — and the HTTP front that feeds ingest.
//
// Guarantee: the API answers 202 only after the ingest handler has
// committed the event to raw_events and the transport has accepted its
// publish; the process handler acknowledges a message only after its
// processed_events row (or its dead letter) is committed.
//
// # The HTTP front
//
// Ingestion is a handler on the Watermill router like processing, but
// watermill-http's subscriber can only answer a request with a status code,
// never a body, so eventflow has its own small front:
//
//  1. API decodes and checks the request (400, 413, 415, 422 are answered
//     here, before anything is stored).
//  2. Front.Submit wraps the request's events in a message whose context
//     carries an IngestRequest, sends it to the router through Front (a
//     message.Subscriber) and waits for the message to be acked or nacked.
//  3. The ingest handler stores the events in raw_events, publishes the new
//     ones (and duplicates whose first publish was never confirmed) to the
//     transport, records them as published, writes each event's outcome
//     into the IngestRequest, and returns. The router acks the message.
//  4. Submit returns; the API answers 202 (accepted or duplicate) or 409
//     per event. A nack — the store or the transport failed — becomes 503
//     with Retry-After.
//
// The handler's work runs on a context detached from the HTTP request and
// bounded by the ingest timeout, so a client that hangs up never leaves an
// event half-stored, and its retry with the same event_id finds the
// outcome. A batch request is one message: its events are stored in one
// statement and published in one call.
//
// # Failure handling
//
//   - Store down at ingest: nothing is stored; 503.
//   - Transport down at ingest: the events stay in raw_events, recorded
//     in eventflow_unpublished; 503. The client's retry with the same event_id is
//     answered "duplicate" and publishes them.
//   - Payload rules broken, unknown type, undecodable message: the process
//     handler returns a permanent error; the dead-letter middleware records
//     it in failed_events and acks it.
//   - Store down at processing: a transient error, retried with backoff,
//     then dead-lettered as retries_exhausted.
//   - Redelivery of a processed event: RecordProcessed inserts nothing; the
//     message is acked.
package handlers
