package schema

import "encoding/json"

// DecodeBatch splits a batch body, {"events": [ ... ]} (SPEC §5.2), into
// its raw items without judging them; each is meant for DecodeEvent. It
// returns a *SyntaxError when data is not a JSON object with an "events"
// array, and a *ValidationError when the array is empty. Other top-level
// fields are ignored. The caller checks the number of items against its
// limit. The items share data's memory.
func DecodeBatch(data []byte) ([]json.RawMessage, error) {
	fields, err := parseObject(data, "a batch")
	if err != nil {
		return nil, err
	}
	raw, present := fields["events"]
	if !present {
		return nil, &SyntaxError{Errors: []FieldError{{Field: "events", Message: "is required: a batch is {\"events\": [ ... ]}"}}}
	}
	if jsonKind(raw) != "array" {
		return nil, &SyntaxError{Errors: []FieldError{{Field: "events", Message: "must be an array, got " + jsonKind(raw)}}}
	}
	// parseObject checked data with json.Valid, so the array can be split
	// by scanning it rather than by decoding it again with json.Unmarshal,
	// which also copied every item.
	var items []json.RawMessage
	eachElement(raw, 0, func(item []byte) {
		// Capped, so that appending to an item cannot write over the next.
		items = append(items, item[:len(item):len(item)])
	})
	if len(items) == 0 {
		return nil, &ValidationError{Errors: []FieldError{{Field: "events", Message: "must contain at least one event"}}}
	}
	return items, nil
}
