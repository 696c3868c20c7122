package schema

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The functions here walk JSON that is known to be valid (json.Valid
// passed) without decoding it: they find where strings and values end, so
// that the decoder can split an object into its members and look for
// repeated keys in one pass, allocating nothing for what it only skips.
// encoding/json's Decoder.Token, which did this before, allocates for every
// token and was most of the cost of decoding an event.

// stringEnd returns the index of the quote that closes the string whose
// opening quote is at data[i].
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the escaped byte; \uXXXX's digits are plain bytes
		case '"':
			return j
		}
	}
	return len(data)
}

// valueEnd returns the index just past the value that starts at data[i]
// (i at its first byte, not at white space).
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i) + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j)
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	default: // a number, true, false or null
		j := i
		for j < len(data) && !isDelimiter(data[j]) {
			j++
		}
		return j
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// eachMember calls fn with the raw key (between its quotes, escapes
// undecoded) and the raw value of each member of the object that starts
// at data[i], in order, until fn returns false.
func eachMember(data []byte, i int, fn func(key, value []byte) bool) {
	i = skipSpace(data, i+1) // past {
	for i < len(data) && data[i] == '"' {
		end := stringEnd(data, i)
		key := data[i+1 : end]
		i = skipSpace(data, end+1) + 1 // past :
		i = skipSpace(data, i)
		vend := valueEnd(data, i)
		if !fn(key, data[i:vend]) {
			return
		}
		i = skipSpace(data, vend)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
}

// eachElement calls fn with the raw value of each element of the array
// that starts at data[i], in order.
func eachElement(data []byte, i int, fn func(value []byte)) {
	i = skipSpace(data, i+1) // past [
	for i < len(data) && data[i] != ']' {
		end := valueEnd(data, i)
		fn(data[i:end])
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
}

// plainString decodes the raw JSON value raw when it is a string that
// encoding/json would copy unchanged: no escape, and valid UTF-8 (it would
// turn invalid bytes into U+FFFD). ok is false for any other value, for
// encoding/json to decode, such as a string with white space after it.
// raw must be valid JSON, which rules out control characters and a quote
// inside.
func plainString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// keyString decodes a raw key; only a key with an escape needs decoding.
func keyString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	if err := json.Unmarshal(quoted, &s); err != nil {
		return string(raw)
	}
	return s
}
