// Package schema holds eventflow's data contracts: the event envelope that
// clients post (SPEC §5.1), its decoding and checking, and the registry of
// event types whose payload rules and enrichment SPEC §6 describes. The SQL
// migrations and the Postgres store live in its subfolders.
//
// # The envelope
//
// [DecodeEvent] turns one posted JSON object into an [Event], or says what is
// wrong with it in a typed error that the HTTP front maps to a status:
//
//   - [*SyntaxError] (400): the body is not JSON, not a JSON object, or a
//     top-level field has the wrong JSON type.
//   - [*ValidationError] (422): well-formed but invalid. It lists every bad
//     field, not just the first, each as a [FieldError] with a path such as
//     "payload.items[0].quantity".
//
// JSON null counts as absent: an optional field sent as null is treated as
// if it were missing, a required one is reported as "is required". The
// payload is kept byte for byte as the client sent it; it is never
// re-encoded. Because Postgres jsonb cannot store the NUL character, an
// unpaired UTF-16 surrogate or a number beyond numeric's range, a payload or
// metadata value that contains one is rejected at ingestion rather than
// failing later in the store.
//
// [DecodeBatch] splits a batch body into its items; each item is then judged
// alone by DecodeEvent.
//
// # Event types
//
// A [Registry] holds the [EventType]s eventflow accepts. An EventType's
// Check validates a payload and returns its [Enrichment]; the process
// handler runs it, and so does ingestion when strict ingest is on
// ([DecodeOptions].Strict). A payload that breaks the rules is a
// [*ValidationError], a permanent failure that no retry can fix.
// [BuiltinTypes] returns the four types of SPEC §6 and [DefaultRegistry] a
// registry of them.
//
// # Adding an event type
//
// Outside this package, build an [EventType] whose Check returns a
// *ValidationError with fields prefixed "payload.", and pass it to
// [NewRegistry] with the built-in types (see the package example).
//
// To add a built-in type, write one file type_<name>.go holding a function
// that returns its EventType, written with the private payload helpers of
// payload.go (requiredString, optionalString, requiredInteger, ...), add it
// to BuiltinTypes, and give it a type_<name>_test.go with a valid and an
// invalid table, like the four that are there.
package schema
