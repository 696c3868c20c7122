package schema

import "strings"

// FieldError names one bad field and what is wrong with it, for example
// {Field: "payload.items[0].quantity", Message: "must be an integer ≥ 1"}.
// Field is a path from the top of the envelope: dots between object fields,
// [i] for array elements.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// SyntaxError reports a body that is not JSON, not a JSON object, or whose
// top-level envelope fields have the wrong JSON type (event_id, event_type,
// source or timestamp not a string, metadata not an object of strings).
// The HTTP front answers it with 400.
type SyntaxError struct {
	// Detail explains a fault that belongs to no single field, such as
	// "invalid JSON at offset 17: ...". It is empty when Errors says it all.
	Detail string
	// Errors lists the fields of the wrong JSON type, if any.
	Errors []FieldError
}

// Error returns the detail and the field errors, joined by "; ".
func (e *SyntaxError) Error() string {
	parts := make([]string, 0, len(e.Errors)+1)
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if len(parts) == 0 && len(e.Errors) == 0 {
		return "malformed JSON"
	}
	return joinErrors(parts, e.Errors)
}

// ValidationError reports a well-formed envelope or payload that breaks
// eventflow's rules, one FieldError per bad field. At ingestion the HTTP
// front answers it with 422; in the process handler it is a permanent
// failure that goes to failed_events without retries.
type ValidationError struct {
	Errors []FieldError
}

// Error returns the field errors as "field: message; field: message".
func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "invalid event"
	}
	return joinErrors(nil, e.Errors)
}

func joinErrors(parts []string, errs []FieldError) string {
	for _, fe := range errs {
		parts = append(parts, fe.Field+": "+fe.Message)
	}
	return strings.Join(parts, "; ")
}
