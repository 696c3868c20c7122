package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxSourceLength is the most characters (Unicode code points) that an
// envelope's source may have.
const MaxSourceLength = 128

// DecodeOptions tells DecodeEvent what to check an envelope against and
// how to fill in what the client left out.
type DecodeOptions struct {
	// Registry holds the accepted event types; nil means DefaultRegistry().
	Registry *Registry
	// Strict also runs the event type's Check at ingestion
	// (EVENTFLOW_STRICT_INGEST); its payload errors join the envelope's in
	// the *ValidationError. Its enrichment is discarded.
	Strict bool
	// Now is when the event was received: the Event's ReceivedAt, and its
	// OccurredAt when the client sent no timestamp. Zero means time.Now().
	Now time.Time
	// NewID assigns an event_id when the client sent none; nil means
	// uuid.New.
	NewID func() uuid.UUID
}

// DecodeEvent decodes and checks one envelope (SPEC §5.1), a single JSON
// object, and returns the Event it describes. It returns a *SyntaxError
// (400) when data is not a JSON object or a top-level field has the wrong
// JSON type, or a *ValidationError (422) with one FieldError per bad field,
// all of them collected, when the envelope breaks a rule:
//
//   - event_id: optional; a UUID in canonical form (any case), not the nil
//     UUID. Assigned with NewID when absent.
//   - event_type: required; a type of the registry.
//   - source: required; 1 to MaxSourceLength characters, not blank, no
//     control characters.
//   - timestamp: optional; RFC 3339. OccurredAt is it in UTC, and
//     HasTimestamp is set.
//   - payload: required; a JSON object, kept byte for byte.
//   - metadata: optional; an object of string values.
//
// Payload and metadata must not contain what Postgres jsonb cannot store:
// the NUL character (\u0000), an unpaired UTF-16 surrogate escape, or a
// number beyond the range of Postgres numeric (such as 1e999999); nor an
// object with a key twice, which JSON readers disagree about (the field
// error names the repeated member, such as payload.items[0].sku).
// Unknown top-level fields are ignored, and null counts as absent.
// CorrelationID is left empty for the caller to fill in.
func DecodeEvent(data []byte, opts DecodeOptions) (Event, error) {
	fields, err := parseObject(data, "an event")
	if err != nil {
		return Event{}, err
	}
	d := envelopeDecoder{fields: fields}
	eventID, hasID := d.string("event_id")
	eventType, hasType := d.string("event_type")
	source, hasSource := d.string("source")
	timestamp, hasTimestamp := d.string("timestamp")
	metadata := d.metadata()
	if len(d.syntax) > 0 {
		return Event{}, &SyntaxError{Errors: d.syntax}
	}

	registry := opts.Registry
	if registry == nil {
		registry = DefaultRegistry()
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	ev := Event{
		Type:         eventType,
		Source:       source,
		ReceivedAt:   now.UTC(),
		OccurredAt:   now.UTC(),
		HasTimestamp: hasTimestamp,
		Metadata:     metadata,
	}

	if hasID {
		ev.ID = d.eventID(eventID)
	}
	typ, typeOK := d.eventType(eventType, hasType, registry)
	d.source(source, hasSource)
	if hasTimestamp {
		ev.OccurredAt = d.timestamp(timestamp)
	}
	ev.Payload = d.payload()
	d.metadataValues(metadata)

	if opts.Strict && typeOK && ev.Payload != nil {
		d.check(typ, ev.Payload)
	}
	if len(d.invalid) > 0 {
		return Event{}, &ValidationError{Errors: d.invalid}
	}
	if !hasID {
		newID := opts.NewID
		if newID == nil {
			newID = uuid.New
		}
		ev.ID = newID()
	}
	return ev, nil
}

const repeatedKeyMessage = "appears twice in its object; send each key once"

// envelopeDecoder reads the fields of one envelope and collects what is
// wrong with them: syntax for wrong JSON types (400), invalid for broken
// rules (422).
type envelopeDecoder struct {
	fields  map[string]json.RawMessage
	syntax  []FieldError
	invalid []FieldError
}

func (d *envelopeDecoder) fail(field, message string) {
	d.invalid = append(d.invalid, FieldError{Field: field, Message: message})
}

// string returns a top-level string field and whether it is present; a
// present value that is not a string is a syntax error.
func (d *envelopeDecoder) string(name string) (string, bool) {
	raw := d.fields[name]
	if isNull(raw) {
		return "", false
	}
	// Most strings have no escape, and copying them costs far less than
	// json.Unmarshal, which runs for every field of every event. raw
	// passed json.Valid in parseObject, as plainString needs.
	if s, ok := plainString(raw); ok {
		return s, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.syntax = append(d.syntax, FieldError{Field: name, Message: "must be a string, got " + jsonKind(raw)})
		return "", false
	}
	return s, true
}

// metadata returns the metadata object, nil when it is absent or empty. A
// value that is not an object, or an entry that is not a string, is a
// syntax error.
func (d *envelopeDecoder) metadata() map[string]string {
	raw := d.fields["metadata"]
	if isNull(raw) {
		return nil
	}
	if metadata, ok := plainMetadata(raw); ok {
		return metadata
	}
	return d.decodeMetadata(raw)
}

// plainMetadata decodes a metadata object in the common case, without
// encoding/json: every value a plain string (see plainString), every key
// valid UTF-8 and different from the others. It returns nil for an empty
// object. ok is false for anything else, which decodeMetadata decodes and
// reports. raw must be valid JSON.
func plainMetadata(raw []byte) (metadata map[string]string, ok bool) {
	if raw[0] != '{' {
		return nil, false
	}
	ok = true
	eachMember(raw, 0, func(key, value []byte) bool {
		s, plain := plainString(value)
		// keyString copies a key without escapes as it is, where
		// encoding/json would replace invalid UTF-8.
		if !plain || !utf8.Valid(key) {
			ok = false
			return false
		}
		name := keyString(key)
		if _, dup := metadata[name]; dup {
			ok = false
			return false
		}
		if metadata == nil {
			metadata = make(map[string]string)
		}
		metadata[name] = s
		return true
	})
	if !ok {
		return nil, false
	}
	return metadata, true
}

// decodeMetadata is metadata with encoding/json, for what plainMetadata
// leaves: it reports what is wrong with the object.
func (d *envelopeDecoder) decodeMetadata(raw json.RawMessage) map[string]string {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		d.syntax = append(d.syntax, FieldError{Field: "metadata", Message: "must be an object of string values, got " + jsonKind(raw)})
		return nil
	}
	if len(entries) == 0 {
		return nil
	}
	if field, dup := repeatedKey(raw, "metadata"); dup {
		d.fail(field, repeatedKeyMessage)
	}
	metadata := make(map[string]string, len(entries))
	for _, key := range sortedKeys(entries) {
		raw := entries[key]
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			d.syntax = append(d.syntax, FieldError{Field: "metadata." + key, Message: "must be a string, got " + jsonKind(raw)})
			continue
		}
		metadata[key] = s
	}
	return metadata
}

// eventID parses a present event_id.
func (d *envelopeDecoder) eventID(s string) uuid.UUID {
	id, err := uuid.Parse(s)
	switch {
	// uuid.Parse also takes the forms {…}, urn:uuid:… and 32 bare hex
	// digits; the contract is the canonical 36-character form.
	case err != nil || len(s) != 36:
		d.fail("event_id", "must be a UUID such as 0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10")
	case id == uuid.Nil:
		d.fail("event_id", "must not be the nil UUID; leave event_id out to have one assigned")
	}
	return id
}

// eventType looks the event_type up in the registry.
func (d *envelopeDecoder) eventType(name string, present bool, registry *Registry) (EventType, bool) {
	switch {
	case !present:
		d.fail("event_type", "is required")
		return EventType{}, false
	case name == "":
		d.fail("event_type", "must not be empty")
		return EventType{}, false
	}
	t, ok := registry.Lookup(name)
	if !ok {
		d.fail("event_type", fmt.Sprintf("unknown event_type %s; registered: %s",
			quoteShort(name), strings.Join(registry.Names(), ", ")))
	}
	return t, ok
}

// source checks the source.
func (d *envelopeDecoder) source(s string, present bool) {
	if !present {
		d.fail("source", "is required")
		return
	}
	if message := nonBlank(s); message != "" {
		d.fail("source", message)
		return
	}
	if n := utf8.RuneCountInString(s); n > MaxSourceLength {
		d.fail("source", fmt.Sprintf("must be at most %d characters, got %d", MaxSourceLength, n))
		return
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		d.fail("source", "must not contain control characters")
	}
}

// timestamp parses a present timestamp. Its offset may carry it out of
// RFC 3339's four-digit years once in UTC (0000-01-01T00:00:00+01:00),
// where it could not be encoded for the transport: that is refused too.
func (d *envelopeDecoder) timestamp(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if year := t.UTC().Year(); err != nil || year < 0 || year > 9999 {
		d.fail("timestamp", "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
		return time.Time{}
	}
	return t.UTC()
}

// payload returns the raw payload when it is a JSON object jsonb can store.
func (d *envelopeDecoder) payload() json.RawMessage {
	raw, present := d.fields["payload"]
	switch kind := jsonKind(raw); {
	case !present:
		d.fail("payload", "is required")
	case kind != "object":
		d.fail("payload", "must be a JSON object, got "+kind)
	default:
		if problem := jsonbProblem(raw); problem != "" {
			d.fail("payload", problem)
		} else if field, dup := repeatedKey(raw, "payload"); dup {
			d.fail(field, repeatedKeyMessage)
		}
		return raw
	}
	return nil
}

// metadataValues checks that jsonb can store the metadata. Decoding has
// turned the escapes into characters already; a lone surrogate became
// U+FFFD, and only NUL is left to refuse.
func (d *envelopeDecoder) metadataValues(metadata map[string]string) {
	for _, key := range sortedKeys(metadata) {
		switch {
		case strings.ContainsRune(key, 0):
			d.fail("metadata", "keys "+nulInJSON)
		case strings.ContainsRune(metadata[key], 0):
			d.fail("metadata."+key, nulInJSON)
		}
	}
}

// check runs the event type's payload rules (strict ingestion).
func (d *envelopeDecoder) check(t EventType, payload json.RawMessage) {
	_, err := t.Check(payload)
	if err == nil {
		return
	}
	if ve, ok := errors.AsType[*ValidationError](err); ok {
		d.invalid = append(d.invalid, ve.Errors...)
		return
	}
	d.fail("payload", err.Error())
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const limit = 64
	if utf8.RuneCountInString(s) <= limit {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…", string([]rune(s)[:limit]))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
