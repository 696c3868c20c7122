package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/handlers/problem"
	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/store"
)

// Limits bound what one request may carry (SPEC §5.1).
type Limits struct {
	MaxEventBytes  int64
	MaxBatchEvents int
	MaxBatchBytes  int64
	// IngestTimeout bounds storing and publishing one request's events.
	IngestTimeout time.Duration
}

// API is eventflow's public HTTP API (SPEC §5).
type API struct {
	Front    *Front
	Store    store.Store
	Registry *schema.Registry
	Strict   bool
	Limits   Limits
	APIKeys  []string
	Metrics  *middleware.Metrics
	Logger   *slog.Logger
	// Checks back /readyz: each named dependency's ping.
	Checks map[string]func(context.Context) error
	// Replayer serves the dead-letter replay endpoints.
	Replayer *Replayer
	// ReplayRate caps bulk replays over HTTP, in events per second (0: none).
	ReplayRate float64
	// RateLimit caps each client's requests per second (0: none), with
	// bursts of RateBurst.
	RateLimit float64
	RateBurst int
	// Shed, if set, wraps the ingestion routes behind auth and the rate
	// limit: it refuses them with 503 while the service sheds load (see
	// middleware.Shedder).
	Shed func(http.Handler) http.Handler

	shuttingDown atomic.Bool
}

// ShutDown turns /readyz to 503, for load balancers to stop sending.
func (a *API) ShutDown() { a.shuttingDown.Store(true) }

// Handler returns the API's routes wrapped in its HTTP middleware.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	// Authenticate first, so that invalid keys are refused before they get
	// a rate limiter of their own.
	limit := middleware.RateLimit(a.RateLimit, a.RateBurst, func() { a.Metrics.Rejected.WithLabelValues("429").Inc() })
	keys := middleware.APIKeys(a.APIKeys)
	auth := func(h http.Handler) http.Handler { return keys(limit(h)) }
	ingest := auth
	if a.Shed != nil {
		ingest = func(h http.Handler) http.Handler { return auth(a.Shed(h)) }
	}
	mux.Handle("POST /v1/events", ingest(http.HandlerFunc(a.postEvent)))
	mux.Handle("POST /events", ingest(http.HandlerFunc(a.postEvent)))
	mux.Handle("POST /v1/events/batch", ingest(http.HandlerFunc(a.postBatch)))
	mux.Handle("GET /v1/events/{event_id}", auth(http.HandlerFunc(a.getEvent)))
	mux.Handle("GET /v1/dead-letters", auth(http.HandlerFunc(a.listDeadLetters)))
	mux.Handle("GET /v1/dead-letters/{event_id}", auth(http.HandlerFunc(a.getDeadLetter)))
	mux.Handle("POST /v1/dead-letters/{event_id}/replay", auth(http.HandlerFunc(a.replayDeadLetter)))
	mux.Handle("POST /v1/dead-letters/replay", auth(http.HandlerFunc(a.replayDeadLetters)))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("GET /readyz", a.Readyz())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, middleware.RequestIDFrom(r.Context()), problem.New(http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path))
	})
	return middleware.RequestID(middleware.Recover(a.Logger)(mux))
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	a.Metrics.Rejected.WithLabelValues(fmt.Sprint(p.Status)).Inc()
	if p.Status >= 500 {
		a.Logger.Error("request failed", "error", err, "status", p.Status,
			"path", r.URL.Path, "correlation_id", middleware.RequestIDFrom(r.Context()))
	}
	problem.Write(w, middleware.RequestIDFrom(r.Context()), p)
}

// readBody checks the media type and reads at most limit bytes. A body that
// announces more than limit is refused before a byte of it is read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, errUnsupportedMediaType
	}
	if r.ContentLength > limit {
		// Not reading the body means the connection cannot be reused.
		w.Header().Set("Connection", "close")
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); err != nil && !tooLarge {
		// Too slow (the server's read timeout) or cut short: the rest of
		// the body cannot be told from the next request.
		w.Header().Set("Connection", "close")
		return nil, &bodyReadError{err}
	}
	return body, err
}

func (a *API) decodeOptions() schema.DecodeOptions {
	return schema.DecodeOptions{Registry: a.Registry, Strict: a.Strict, Now: time.Now().UTC()}
}

// submit runs events through the ingest handler. The work is detached from
// the HTTP request: a client that hangs up mid-way leaves no event
// half-stored, and one that retries finds the outcome.
func (a *API) submit(r *http.Request, events []schema.Event) (*IngestRequest, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.Limits.IngestTimeout)
	defer cancel()
	req := &IngestRequest{Events: events}
	if err := a.Front.Submit(ctx, req, middleware.RequestIDFrom(r.Context())); err != nil {
		return nil, &unavailableError{err}
	}
	return req, nil
}

type eventAnswer struct {
	EventID string `json:"event_id"`
	Status  string `json:"status"`
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.Limits.MaxEventBytes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, err := schema.DecodeEvent(body, a.decodeOptions())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e.CorrelationID = middleware.RequestIDFrom(r.Context())
	req, err := a.submit(r, []schema.Event{e})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res := req.Results[0]
	if res.Outcome == store.Conflict {
		a.fail(w, r, errConflict)
		return
	}
	w.Header().Set("Location", "/v1/events/"+e.ID.String())
	writeJSON(w, http.StatusAccepted, eventAnswer{EventID: e.ID.String(), Status: answerStatus(res.Outcome)})
}

func answerStatus(o store.Outcome) string {
	if o == store.Duplicate {
		return "duplicate"
	}
	return "accepted"
}

// batchItem is one entry of a batch answer (SPEC §5.2).
type batchItem struct {
	Index   int              `json:"index"`
	EventID string           `json:"event_id,omitempty"`
	Status  string           `json:"status"`
	Error   *problem.Problem `json:"error,omitempty"`
}

type batchAnswer struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Results    []batchItem `json:"results"`
}

func (a *API) postBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.Limits.MaxBatchBytes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items, err := schema.DecodeBatch(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(items) > a.Limits.MaxBatchEvents {
		a.fail(w, r, &tooLargeError{fmt.Sprintf("a batch holds at most %d events, this one has %d", a.Limits.MaxBatchEvents, len(items))})
		return
	}
	answer := batchAnswer{Results: make([]batchItem, len(items))}
	var (
		events  []schema.Event
		indexes []int
	)
	opts := a.decodeOptions()
	for i, raw := range items {
		answer.Results[i].Index = i
		var e schema.Event
		if int64(len(raw)) > a.Limits.MaxEventBytes {
			err = &tooLargeError{fmt.Sprintf("the event is over the limit of %d bytes", a.Limits.MaxEventBytes)}
		} else {
			e, err = schema.DecodeEvent(raw, opts)
		}
		if err != nil {
			answer.Results[i].Status, answer.Results[i].Error = "rejected", itemProblem(err)
			continue
		}
		e.CorrelationID = middleware.RequestIDFrom(r.Context())
		events = append(events, e)
		indexes = append(indexes, i)
	}
	if len(events) > 0 {
		req, err := a.submit(r, events)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		for j, res := range req.Results {
			item := &answer.Results[indexes[j]]
			item.EventID = res.ID.String()
			if res.Outcome == store.Conflict {
				item.Status, item.Error = "rejected", itemProblem(errConflict)
				continue
			}
			item.Status = answerStatus(res.Outcome)
		}
	}
	for _, item := range answer.Results {
		switch item.Status {
		case "accepted":
			answer.Accepted++
		case "duplicate":
			answer.Duplicates++
		default:
			answer.Rejected++
			a.Metrics.Rejected.WithLabelValues(fmt.Sprint(item.Error.Status)).Inc()
		}
	}
	status := http.StatusAccepted
	if answer.Rejected > 0 {
		status = http.StatusMultiStatus
	}
	writeJSON(w, status, answer)
}

// itemProblem is a batch item's error: the problem without a request id,
// which the whole response carries in its header.
func itemProblem(err error) *problem.Problem {
	p := problemFor(err)
	p.RetryAfter = 0
	return p
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("event_id"))
	if err != nil {
		a.fail(w, r, store.ErrNotFound)
		return
	}
	st, err := a.Store.Status(r.Context(), id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			err = &unavailableError{err}
		}
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz answers 200 when every check passes, else 503 naming the failed
// ones; it answers 503 from the moment shutdown begins.
func (a *API) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.shuttingDown.Load() {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting_down"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := make(map[string]string, len(a.Checks))
		ready := true
		for name, check := range a.Checks {
			checks[name] = "ok"
			if err := check(ctx); err != nil {
				checks[name], ready = err.Error(), false
			}
		}
		if !ready {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
