package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// parseObject reads data as one JSON object and returns its fields, raw.
// what names the object in error details ("an event", "a batch"). Every
// failure is a *SyntaxError: invalid UTF-8, empty, malformed JSON, or valid
// JSON of another kind than an object.
func parseObject(data []byte, what string) (map[string]json.RawMessage, error) {
	if !utf8.Valid(data) {
		// encoding/json would quietly replace the bad bytes with U+FFFD,
		// and the raw payload kept for the store would not be valid jsonb.
		return nil, &SyntaxError{Detail: "body is not valid UTF-8"}
	}
	value := bytes.TrimLeft(data, " \t\r\n")
	if len(value) == 0 {
		return nil, &SyntaxError{Detail: fmt.Sprintf("body is empty; %s must be a JSON object", what)}
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, &SyntaxError{Detail: fmt.Sprintf("invalid JSON at offset %d: %v", se.Offset, se)}
		}
		return nil, &SyntaxError{Detail: "invalid JSON"}
	}
	if value[0] != '{' { // valid JSON of another kind: an array, a string, null ...
		return nil, &SyntaxError{Detail: fmt.Sprintf("%s must be a JSON object, got %s", what, jsonKind(value))}
	}
	// Walk the object's members rather than unmarshal into a map, which
	// would silently keep the last of two members with the same name: a
	// repeated envelope field is ambiguous, so it is refused.
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return nil, &SyntaxError{Detail: "invalid JSON"}
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &SyntaxError{Detail: "invalid JSON"}
		}
		name, _ := tok.(string) // valid JSON: object keys are strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &SyntaxError{Detail: "invalid JSON"}
		}
		if _, dup := fields[name]; dup {
			return nil, &SyntaxError{Errors: []FieldError{{Field: name, Message: "appears twice; send each field once"}}}
		}
		fields[name] = raw
	}
	return fields, nil
}

// jsonKind names the kind of a valid JSON value by its first byte, for
// messages such as "must be a string, got number".
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// isNull reports whether a raw JSON value is absent or null; eventflow
// treats both alike.
func isNull(raw json.RawMessage) bool {
	return raw == nil || jsonKind(raw) == "null"
}
