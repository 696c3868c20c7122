package handlers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/handlers/problem"
	"github.com/eventflow/eventflow/schema/store"
)

// deadLetterJSON is a dead letter as the API shows it.
type deadLetterJSON struct {
	EventID       string               `json:"event_id"`
	EventType     string               `json:"event_type"`
	Source        string               `json:"source"`
	Payload       json.RawMessage      `json:"payload"`
	Metadata      map[string]string    `json:"metadata,omitempty"`
	CorrelationID string               `json:"correlation_id,omitempty"`
	Error         string               `json:"error"`
	ErrorKind     store.ErrorKind      `json:"error_kind"`
	Attempts      int                  `json:"attempts"`
	FailedAt      time.Time            `json:"failed_at"`
	ReplayedAt    *time.Time           `json:"replayed_at,omitempty"`
	History       []store.HistoryEntry `json:"history,omitempty"`
}

// DeadLetterJSON returns d as the API and the CLI show it.
func DeadLetterJSON(d store.DeadLetter) any {
	return deadLetterJSON{
		EventID: d.EventID.String(), EventType: d.EventType, Source: d.Source, Payload: d.Payload,
		Metadata: d.Metadata, CorrelationID: d.CorrelationID, Error: d.Error, ErrorKind: d.Kind,
		Attempts: d.Attempts, FailedAt: d.FailedAt, ReplayedAt: d.ReplayedAt, History: d.History,
	}
}

// EncodeCursor and DecodeCursor turn a listing position into an opaque
// page token and back.
func EncodeCursor(c store.DeadLetterCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.FailedAt.Format(time.RFC3339Nano) + "|" + c.EventID.String()))
}

// DecodeCursor reads a token made by EncodeCursor.
func DecodeCursor(s string) (*store.DeadLetterCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("cursor: not a page token")
	}
	at, id, ok := strings.Cut(string(b), "|")
	t, terr := time.Parse(time.RFC3339Nano, at)
	u, uerr := uuid.Parse(id)
	if !ok || terr != nil || uerr != nil {
		return nil, errors.New("cursor: not a page token")
	}
	return &store.DeadLetterCursor{FailedAt: t, EventID: u}, nil
}

// DeadLetterFilterFromQuery reads a filter from URL query parameters:
// event_type and error_kind (repeatable or comma-separated), since and
// until (RFC 3339), include_replayed, limit (1–1000) and cursor.
func DeadLetterFilterFromQuery(q map[string][]string) (store.DeadLetterFilter, error) {
	var (
		f    store.DeadLetterFilter
		errs []FieldErrorJSON
	)
	list := func(name string) []string {
		var out []string
		for _, v := range q[name] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	first := func(name string) string {
		if v := q[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	f.EventTypes = list("event_type")
	for _, k := range list("error_kind") {
		if k != string(store.Permanent) && k != string(store.RetriesExhausted) {
			errs = append(errs, FieldErrorJSON{"error_kind", "must be permanent or retries_exhausted"})
			continue
		}
		f.Kinds = append(f.Kinds, store.ErrorKind(k))
	}
	for name, dst := range map[string]*time.Time{"since": &f.FailedFrom, "until": &f.FailedTo} {
		if v := first(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				errs = append(errs, FieldErrorJSON{name, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z"})
			}
			*dst = t
		}
	}
	if v := first("include_replayed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, FieldErrorJSON{"include_replayed", "must be true or false"})
		}
		f.IncludeReplayed = b
	}
	if v := first("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, FieldErrorJSON{"limit", "must be a number from 1 to 1000"})
		}
		f.Limit = n
	}
	if v := first("cursor"); v != "" {
		c, err := DecodeCursor(v)
		if err != nil {
			errs = append(errs, FieldErrorJSON{"cursor", "must be a next_cursor from an earlier page"})
		}
		f.After = c
	}
	if len(errs) > 0 {
		return f, &queryError{errs}
	}
	return f, nil
}

// FieldErrorJSON names one bad query parameter.
type FieldErrorJSON struct{ Field, Message string }

// queryError is a bad query string or request body (400).
type queryError struct{ errs []FieldErrorJSON }

func (e *queryError) Error() string {
	parts := make([]string, len(e.errs))
	for i, fe := range e.errs {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return strings.Join(parts, "; ")
}

func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	f, err := DeadLetterFilterFromQuery(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if f.Limit == 0 {
		f.Limit = store.DefaultDeadLetterLimit
	}
	list, err := a.Store.ListDeadLetters(r.Context(), f)
	if err != nil {
		a.fail(w, r, &unavailableError{err})
		return
	}
	out := struct {
		DeadLetters []any  `json:"dead_letters"`
		NextCursor  string `json:"next_cursor,omitempty"`
	}{DeadLetters: make([]any, len(list))}
	for i, d := range list {
		out.DeadLetters[i] = DeadLetterJSON(d)
	}
	if len(list) == f.Limit {
		out.NextCursor = EncodeCursor(list[len(list)-1].Cursor())
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("event_id"))
	if err != nil {
		a.fail(w, r, store.ErrNotFound)
		return
	}
	d, err := a.Store.DeadLetter(r.Context(), id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			err = &unavailableError{err}
		}
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, DeadLetterJSON(d))
}

func (a *API) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("event_id"))
	if err != nil {
		a.fail(w, r, store.ErrNotFound)
		return
	}
	if err := a.Replayer.ReplayOne(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"event_id": id.String(), "status": "replayed"})
}

// bulkReplayRequest is the body of POST /v1/dead-letters/replay.
type bulkReplayRequest struct {
	EventTypes []string  `json:"event_types"`
	ErrorKinds []string  `json:"error_kinds"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	DryRun     bool      `json:"dry_run"`
}

func (a *API) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.Limits.MaxEventBytes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req bulkReplayRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		a.fail(w, r, &queryError{[]FieldErrorJSON{{"body", fmt.Sprintf("must be {\"event_types\", \"error_kinds\", \"since\", \"until\", \"dry_run\"}: %v", err)}}})
		return
	}
	q := map[string][]string{"event_type": req.EventTypes, "error_kind": req.ErrorKinds}
	f, err := DeadLetterFilterFromQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f.FailedFrom, f.FailedTo = req.Since, req.Until
	res, err := a.Replayer.ReplayMatching(r.Context(), f, req.DryRun, a.ReplayRate, nil)
	if err != nil {
		a.fail(w, r, &unavailableError{err})
		return
	}
	status := http.StatusAccepted
	if req.DryRun {
		status = http.StatusOK
	}
	writeJSON(w, status, res)
}

// problemFor's dead-letter cases.
func deadLetterProblem(err error) *problem.Problem {
	var (
		q  *queryError
		nr *NotReplayableError
	)
	switch {
	case errors.As(err, &q):
		p := problem.New(http.StatusBadRequest, "invalid parameters; see errors")
		for _, fe := range q.errs {
			p.Errors = append(p.Errors, problem.FieldError{Field: fe.Field, Message: fe.Message})
		}
		return p
	case errors.Is(err, ErrAlreadyReplayed):
		return problem.New(http.StatusConflict, err.Error())
	case errors.As(err, &nr):
		return problem.New(http.StatusUnprocessableEntity, err.Error())
	}
	return nil
}
