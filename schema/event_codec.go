package schema

import "encoding/json"

// UnmarshalEvent decodes an Event from its JSON encoding (json.Marshal's,
// as the transports carry it) with the result of json.Unmarshal, without
// its reflection: a worker decodes every event it processes, and
// json.Unmarshal was the largest part of that.
//
// It walks the members of the object with the scanner, and hands anything
// off the well-trodden path to json.Unmarshal: a key it does not know (or
// knows only up to case, which json.Unmarshal matches), a key that
// repeats, a string with an escape, a payload that is not an object. The
// Payload shares data's memory.
func UnmarshalEvent(data []byte) (Event, error) {
	var e Event
	if !json.Valid(data) || !decodeEventFast(data, &e) {
		e = Event{}
		if err := json.Unmarshal(data, &e); err != nil {
			return Event{}, err
		}
	}
	return e, nil
}

// Bits of the members decodeEventFast has seen, to send repeated ones to
// json.Unmarshal.
const (
	seenID = 1 << iota
	seenType
	seenSource
	seenTimestamp
	seenPayload
	seenMetadata
	seenReceivedAt
	seenCorrelationID
)

// decodeEventFast decodes valid JSON data into e, and reports false when
// data needs json.Unmarshal instead.
func decodeEventFast(data []byte, e *Event) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	seen, ok := 0, true
	eachMember(data, i, func(key, value []byte) bool {
		var bit int
		switch string(key) {
		case "event_id":
			bit = seenID
			s, plain := plainString(value)
			ok = plain && e.ID.UnmarshalText([]byte(s)) == nil
		case "event_type":
			bit = seenType
			e.Type, ok = plainString(value)
		case "source":
			bit = seenSource
			e.Source, ok = plainString(value)
		case "correlation_id":
			bit = seenCorrelationID
			e.CorrelationID, ok = plainString(value)
		case "timestamp":
			bit = seenTimestamp
			ok = e.OccurredAt.UnmarshalJSON(value) == nil
		case "received_at":
			bit = seenReceivedAt
			ok = e.ReceivedAt.UnmarshalJSON(value) == nil
		case "payload":
			bit = seenPayload
			ok = value[0] == '{'
			e.Payload = value
		case "metadata":
			bit = seenMetadata
			if !isNull(value) {
				e.Metadata, ok = plainMetadata(value)
				if e.Metadata == nil {
					e.Metadata = map[string]string{} // json.Unmarshal's {}, where plainMetadata gives nil
				}
			}
		default:
			ok = false
		}
		if seen&bit != 0 {
			ok = false
		}
		seen |= bit
		return ok
	})
	return ok
}
