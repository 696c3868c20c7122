package schema

import (
	"fmt"
	"strconv"
)

// Limits that a jsonb number must respect. maxJSONBExponent is stricter
// than recent Postgres versions need (older ones refused exponents beyond
// ±1000) and comfortably wide for real data. maxJSONBIntegerDigits holds
// numbers written out in full to the same magnitude (below 1e1001):
// Postgres numeric would take 131072 digits, but a 10,000-digit integer is
// no measurement, only a load on every reader (Python, for one, refuses to
// parse integers of more than 4300 digits).
const (
	maxJSONBExponent      = 1000
	maxJSONBDecimalPlaces = 16383                // NUMERIC_DSCALE_MAX
	maxJSONBIntegerDigits = maxJSONBExponent + 1 // digits before the decimal point
)

// MaxNesting is how deeply objects and arrays may nest in a payload or
// metadata value. Real events need a handful of levels; thousands would
// exhaust Postgres's parser stack and turn hostile input into a 5xx.
const MaxNesting = 64

var tooDeep = fmt.Sprintf("must not nest objects and arrays deeper than %d levels", MaxNesting)

const (
	nulInJSON         = "must not contain the NUL character (\\u0000)"
	unpairedSurrogate = "must not contain an unpaired UTF-16 surrogate escape such as \\ud800"
)

var numberOutOfRange = fmt.Sprintf(
	"must not contain a number with an exponent beyond ±%d, more than %d digits before the decimal point or more than %d decimal places",
	maxJSONBExponent, maxJSONBIntegerDigits, maxJSONBDecimalPlaces)

// jsonbProblem returns what Postgres jsonb would refuse in the raw JSON
// text data, or "" when it can store it:
//
//   - the escape \u0000, because jsonb cannot hold the NUL character;
//   - a UTF-16 surrogate escape that is not part of a high-low pair, such
//     as a lone \ud800;
//   - a number beyond Postgres numeric's range, such as 1e999999, or
//     beyond 1e1001 written out in full;
//   - objects and arrays nested deeper than MaxNesting.
//
// Checking here turns what would be a store failure into a 422 naming the
// field. data must be valid JSON. The scan is one pass that walks escapes
// from left to right, so an escaped backslash followed by "u0000" (the
// JSON text \\u0000, a harmless six-character string) is not taken for a
// NUL.
func jsonbProblem(data []byte) string {
	inString := false
	pendingHigh := false // the previous escape was a high surrogate
	depth := 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !inString {
			switch {
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				if depth++; depth > MaxNesting {
					return tooDeep
				}
			case c == '}' || c == ']':
				depth--
			case c == '-' || (c >= '0' && c <= '9'):
				end := i + 1
				for end < len(data) && isNumberByte(data[end]) {
					end++
				}
				if !storableNumber(data[i:end]) {
					return numberOutOfRange
				}
				i = end - 1
			}
			continue
		}
		if c != '\\' {
			if pendingHigh {
				return unpairedSurrogate
			}
			if c == '"' {
				inString = false
			}
			continue
		}
		i++ // data[i] is the escape's letter: " \ / b f n r t or u
		if data[i] != 'u' {
			if pendingHigh {
				return unpairedSurrogate
			}
			continue
		}
		r := hex4(data[i+1 : i+5])
		i += 4
		switch {
		case r == 0:
			return nulInJSON
		case r >= 0xD800 && r <= 0xDBFF:
			if pendingHigh {
				return unpairedSurrogate
			}
			pendingHigh = true
		case r >= 0xDC00 && r <= 0xDFFF:
			if !pendingHigh {
				return unpairedSurrogate
			}
			pendingHigh = false
		case pendingHigh:
			return unpairedSurrogate
		}
	}
	return ""
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// storableNumber reports whether a valid JSON number fits Postgres numeric.
func storableNumber(n []byte) bool {
	var intDigits, fracDigits, exp int
	i := 0
	if n[i] == '-' {
		i++
	}
	for ; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
		intDigits++
	}
	if i < len(n) && n[i] == '.' {
		for i++; i < len(n) && n[i] >= '0' && n[i] <= '9'; i++ {
			fracDigits++
		}
	}
	if i < len(n) { // e or E
		var err error
		if exp, err = strconv.Atoi(string(n[i+1:])); err != nil {
			return false // beyond int: far out of range
		}
	}
	return exp >= -maxJSONBExponent && exp <= maxJSONBExponent &&
		fracDigits-exp <= maxJSONBDecimalPlaces &&
		intDigits+exp <= maxJSONBIntegerDigits
}

// hex4 decodes four hex digits, which valid JSON guarantees after \u.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
