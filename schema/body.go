package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	fields := make(map[string]json.RawMessage, 8)
	var dup string
	eachMember(value, 0, func(key, raw []byte) bool {
		name := keyString(key)
		if _, ok := fields[name]; ok {
			dup = name
			return false
		}
		fields[name] = raw
		return true
	})
	if dup != "" {
		return nil, &SyntaxError{Errors: []FieldError{{Field: dup, Message: "appears twice; send each field once"}}}
	}
	return fields, nil
}

// repeatedKey finds the first member of an object, anywhere in the JSON
// value data, whose key its object already has, and returns its path below
// prefix, such as "payload.items[0].sku". Keys compare as strings, after
// their escapes are decoded: {"a":1,"\u0061":2} repeats "a". data must be
// valid JSON.
//
// Such a payload is ambiguous: encoding/json and Postgres jsonb keep the
// last member, other JSON readers the first or both. DecodeEvent refuses it,
// as it refuses a repeated envelope field.
//
// It runs on every event, so it is one pass over the bytes that allocates
// only for escaped keys and for objects of many keys.
func repeatedKey(data []byte, prefix string) (string, bool) {
	type container struct {
		object    bool
		expectKey bool                // the next string of the object is a key
		index     int                 // the array's current element
		keys      int                 // the object's keys start here in seen
		many      map[string]struct{} // the object's keys, once it has many
	}
	var (
		stack []container
		seen  [][]byte // the keys of the open objects, innermost last
	)
	// path is where the innermost container's member key sits.
	path := func(key []byte) string {
		var b strings.Builder
		b.WriteString(prefix)
		for i, c := range stack {
			switch {
			case i == len(stack)-1:
				b.WriteString("." + string(key))
			case c.object:
				// The key of the member being read is the last one seen.
				next := len(seen)
				if i+1 < len(stack) {
					next = stack[i+1].keys
				}
				b.WriteString("." + string(seen[next-1]))
			default:
				fmt.Fprintf(&b, "[%d]", c.index)
			}
		}
		return b.String()
	}
	// value notes that a value starts in the innermost container.
	value := func() {
		if n := len(stack); n > 0 {
			if top := &stack[n-1]; top.object {
				top.expectKey = true
			} else {
				top.index++
			}
		}
	}
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case '{', '[':
			value()
			stack = append(stack, container{object: c == '{', expectKey: true, index: -1, keys: len(seen)})
			i++
		case '}', ']':
			top := stack[len(stack)-1]
			if top.object {
				seen = seen[:top.keys]
			}
			stack = stack[:len(stack)-1]
			i++
		case '"':
			end := stringEnd(data, i) + 1 // past the closing quote
			top := (*container)(nil)
			if n := len(stack); n > 0 {
				top = &stack[n-1]
			}
			if top == nil || !top.object || !top.expectKey {
				value()
				i = end
				continue
			}
			top.expectKey = false
			key := data[i+1 : end-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				key = []byte(keyString(key))
			}
			keys := seen[top.keys:]
			if top.many == nil {
				for _, k := range keys {
					if bytes.Equal(k, key) {
						return path(key), true
					}
				}
				// A map from 16 keys on: 5,000 keys cost no 12.5 million
				// comparisons.
				if len(keys) >= 16 {
					top.many = make(map[string]struct{}, 2*len(keys))
					for _, k := range keys {
						top.many[string(k)] = struct{}{}
					}
				}
			} else if _, dup := top.many[string(key)]; dup {
				return path(key), true
			}
			if top.many != nil {
				top.many[string(key)] = struct{}{}
			}
			seen = append(seen, key)
			i = end
		case ' ', '\t', '\r', '\n', ':', ',':
			i++
		default: // a number, true, false or null
			value()
			for i < len(data) && !isDelimiter(data[i]) {
				i++
			}
		}
	}
	return "", false
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
