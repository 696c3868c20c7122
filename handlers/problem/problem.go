// Package problem writes RFC 9457 problem details
// (application/problem+json), the body of every error eventflow's HTTP API
// returns.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// FieldError names one bad field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem details object with eventflow's extensions.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// New returns a problem of the given status, its type and title derived
// from the status.
func New(status int, detail string) *Problem {
	return &Problem{Type: TypeURI(status), Title: http.StatusText(status), Status: status, Detail: detail}
}

// TypeURI names a problem type; eventflow's types are relative URIs that
// the README documents, one per status.
func TypeURI(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "/problems/malformed-request"
	case http.StatusUnauthorized:
		return "/problems/unauthorized"
	case http.StatusNotFound:
		return "/problems/not-found"
	case http.StatusRequestTimeout:
		return "/problems/request-timeout"
	case http.StatusConflict:
		return "/problems/event-id-conflict"
	case http.StatusRequestEntityTooLarge:
		return "/problems/too-large"
	case http.StatusUnsupportedMediaType:
		return "/problems/unsupported-media-type"
	case http.StatusUnprocessableEntity:
		return "/problems/invalid-event"
	case http.StatusServiceUnavailable:
		return "/problems/unavailable"
	case http.StatusMethodNotAllowed:
		return "/problems/method-not-allowed"
	case http.StatusTooManyRequests:
		return "/problems/rate-limited"
	}
	return "about:blank"
}

// Error lets a *Problem travel as an error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// Write sends p with the request id the request was given.
func Write(w http.ResponseWriter, requestID string, p *Problem) {
	body := *p
	if body.RequestID == "" {
		body.RequestID = requestID
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}
