package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// This file holds the private helpers that the built-in event types are
// written with, so that each type's Check reads like its rules:
//
//	checkPayload(func(p object) Enrichment {
//		p.requiredString("user_id")
//		p.optionalString("plan")
//		...
//	})
//
// Each helper records what is wrong with its field and goes on, so one
// Check reports every bad field at once.

// checkPayload turns a function that reads a payload's fields into an
// EventType.Check. It decodes the payload as a JSON object, numbers kept as
// json.Number so nothing is rounded, and calls read. When read recorded any
// error, Check returns them all in a *ValidationError and no enrichment.
func checkPayload(read func(p object) Enrichment) func(json.RawMessage) (Enrichment, error) {
	return func(payload json.RawMessage) (Enrichment, error) {
		fields, problem := decodePayload(payload)
		if problem != "" {
			return nil, &ValidationError{Errors: []FieldError{{Field: "payload", Message: problem}}}
		}
		var errs []FieldError
		enrichment := read(object{path: "payload", fields: fields, errs: &errs})
		if len(errs) > 0 {
			return nil, &ValidationError{Errors: errs}
		}
		return enrichment, nil
	}
}

// decodePayload decodes one JSON object, or says why it cannot.
func decodePayload(payload json.RawMessage) (map[string]any, string) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return nil, "is required"
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "must be valid JSON"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "must be a single JSON object"
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return nil, "must be a JSON object, got " + kindOf(v)
	}
	return fields, ""
}

// object is one JSON object inside a payload being checked: its path for
// error messages ("payload", "payload.items[2]"), its fields, and the list
// that all the payload's errors go to.
type object struct {
	path   string
	fields map[string]any
	errs   *[]FieldError
}

// fail records that the field name of o is bad.
func (o object) fail(name, message string) {
	*o.errs = append(*o.errs, FieldError{Field: o.path + "." + name, Message: message})
}

// failed reports whether any error was recorded for the payload so far.
func (o object) failed() bool {
	return len(*o.errs) > 0
}

// lookup returns the value of a field; null counts as absent.
func (o object) lookup(name string) (any, bool) {
	v, ok := o.fields[name]
	return v, ok && v != nil
}

// stringRule checks a string and returns what is wrong with it, as a
// message such as "must be ...", or "" when nothing is.
type stringRule func(string) string

// requiredString returns the field as a string that is not empty or blank
// and passes every rule. It records an error and returns "" otherwise.
func (o object) requiredString(name string, rules ...stringRule) string {
	if _, ok := o.lookup(name); !ok {
		o.fail(name, "is required")
		return ""
	}
	s, _ := o.optionalString(name, append([]stringRule{nonBlank}, rules...)...)
	return s
}

// optionalString returns the field as a string and true when it is present
// (not absent, not null). A present value must be a string passing every
// rule; otherwise an error is recorded and the result is "", false.
func (o object) optionalString(name string, rules ...stringRule) (string, bool) {
	v, ok := o.lookup(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		o.fail(name, "must be a string, got "+kindOf(v))
		return "", false
	}
	for _, rule := range rules {
		if message := rule(s); message != "" {
			o.fail(name, message)
			return "", false
		}
	}
	return s, true
}

// nonBlank is the rule of every required string.
func nonBlank(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case strings.TrimFunc(s, unicode.IsSpace) == "":
		return "must not be blank"
	}
	return ""
}

// requiredInteger returns the field as an integer ≥ minimum. Any JSON
// number with no fractional part counts (2, 2.0, 2e0); 1.5 and "2" do not.
func (o object) requiredInteger(name string, minimum int64) (int64, bool) {
	rule := fmt.Sprintf("must be an integer ≥ %d", minimum)
	r, ok := o.requiredNumber(name, rule)
	if !ok {
		return 0, false
	}
	if !r.IsInt() || r.Cmp(new(big.Rat).SetInt64(minimum)) < 0 {
		o.fail(name, rule)
		return 0, false
	}
	if !r.Num().IsInt64() {
		o.fail(name, "is too large")
		return 0, false
	}
	return r.Num().Int64(), true
}

// requiredDecimal returns the field as an exact number ≥ minimum.
func (o object) requiredDecimal(name string, minimum int64) (*big.Rat, bool) {
	rule := fmt.Sprintf("must be a number ≥ %d", minimum)
	r, ok := o.requiredNumber(name, rule)
	if !ok {
		return nil, false
	}
	if r.Cmp(new(big.Rat).SetInt64(minimum)) < 0 {
		o.fail(name, rule)
		return nil, false
	}
	return r, true
}

// requiredNumber returns the field as an exact rational number. rule is the
// message for a value that is not a number at all.
func (o object) requiredNumber(name, rule string) (*big.Rat, bool) {
	v, ok := o.lookup(name)
	if !ok {
		o.fail(name, "is required")
		return nil, false
	}
	n, ok := v.(json.Number)
	if !ok {
		o.fail(name, rule+", got "+kindOf(v))
		return nil, false
	}
	r, ok := exactNumber(n)
	if !ok {
		o.fail(name, "is out of range")
		return nil, false
	}
	return r, true
}

// exactNumber converts a JSON number to an exact rational. It refuses an
// exponent beyond ±maxJSONBExponent, on which big.Rat would spend time and
// memory: DecodeEvent refuses such payloads already, but a Check may be
// handed a payload that did not come through it.
func exactNumber(n json.Number) (*big.Rat, bool) {
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		if err != nil || exp > maxJSONBExponent || exp < -maxJSONBExponent {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// requiredObjects returns the field as a non-empty array of objects, one
// object per element that is one; other elements are recorded as errors.
func (o object) requiredObjects(name string) []object {
	v, ok := o.lookup(name)
	if !ok {
		o.fail(name, "is required")
		return nil
	}
	elems, ok := v.([]any)
	switch {
	case !ok:
		o.fail(name, "must be an array, got "+kindOf(v))
		return nil
	case len(elems) == 0:
		o.fail(name, "must not be empty")
		return nil
	}
	objects := make([]object, 0, len(elems))
	for i, elem := range elems {
		elemName := fmt.Sprintf("%s[%d]", name, i)
		fields, ok := elem.(map[string]any)
		if !ok {
			o.fail(elemName, "must be a JSON object, got "+kindOf(elem))
			continue
		}
		objects = append(objects, object{path: o.path + "." + elemName, fields: fields, errs: o.errs})
	}
	return objects
}

// kindOf names the JSON kind of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
