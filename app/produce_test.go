package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventflow/eventflow/schema"
)

// fakeEventflow answers like eventflow run with EVENTFLOW_STRICT_INGEST=true
// (so that invalid payloads show in the answers): 202 "accepted" or
// "duplicate", 409 for an event_id reused with another body, 422 for an
// invalid event, and 202 or 207 for a batch. It records what it received
// and what it answered.
type fakeEventflow struct {
	apiKey string // when set, requests without "Bearer <apiKey>" get 401

	mu         sync.Mutex
	requests   []fakeRequest
	bodies     map[string]string // event_id → body, of every event received
	stored     map[string]bool   // event_ids accepted
	received   []receivedEvent
	byStatus   map[int]int
	byResult   map[string]int
	duplicates int // events repeating an earlier event_id with the same body
	invalid    int // other events that break their type's payload rules
	conflicts  int // events reusing an earlier event_id with another body
}

type fakeRequest struct {
	path, auth string
	events     int
}

type receivedEvent struct {
	Type    string
	invalid bool
}

func newFakeEventflow(t *testing.T) (*fakeEventflow, *httptest.Server) {
	f := &fakeEventflow{bodies: map[string]string{}, stored: map[string]bool{}, byStatus: map[int]int{}, byResult: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeEventflow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body struct {
		Events []json.RawMessage `json:"events"`
	}
	raw := new(bytes.Buffer)
	raw.ReadFrom(r.Body)
	if r.URL.Path == "/v1/events" {
		body.Events = []json.RawMessage{raw.Bytes()}
	} else if err := json.Unmarshal(raw.Bytes(), &body); err != nil || r.URL.Path != "/v1/events/batch" {
		f.answer(w, http.StatusBadRequest, map[string]any{"status": 400})
		return
	}
	f.requests = append(f.requests, fakeRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"), events: len(body.Events)})
	if f.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		f.byResult["rejected"] += len(body.Events)
		f.answer(w, http.StatusUnauthorized, map[string]any{"status": 401})
		return
	}

	type item struct {
		Index  int    `json:"index"`
		Status string `json:"status"`
	}
	var items []item
	status := http.StatusAccepted
	for i, e := range body.Events {
		result, itemStatus := f.judge(e)
		f.byResult[result]++
		items = append(items, item{Index: i, Status: result})
		if r.URL.Path == "/v1/events" {
			status = itemStatus
		} else if result == "rejected" {
			status = http.StatusMultiStatus
		}
	}
	if r.URL.Path == "/v1/events" {
		f.answer(w, status, items[0])
		return
	}
	f.answer(w, status, map[string]any{"results": items})
}

// judge returns the result of one event and the status of a request of it
// alone.
func (f *fakeEventflow) judge(e json.RawMessage) (result string, status int) {
	event, err := schema.DecodeEvent(e, schema.DecodeOptions{Strict: true})
	var fields struct {
		ID   string `json:"event_id"`
		Type string `json:"event_type"`
	}
	json.Unmarshal(e, &fields)
	earlier, seen := f.bodies[fields.ID]
	switch {
	case seen && earlier != string(e):
		f.conflicts++
	case seen:
		f.duplicates++
	default:
		f.bodies[fields.ID] = string(e)
		f.received = append(f.received, receivedEvent{Type: fields.Type, invalid: err != nil})
		if err != nil {
			f.invalid++
		}
	}
	switch {
	case err != nil:
		return "rejected", http.StatusUnprocessableEntity
	case seen && earlier != string(e):
		return "rejected", http.StatusConflict
	case f.stored[event.ID.String()]:
		return "duplicate", http.StatusAccepted
	}
	f.stored[event.ID.String()] = true
	return "accepted", http.StatusAccepted
}

func (f *fakeEventflow) answer(w http.ResponseWriter, status int, body any) {
	f.byStatus[status]++
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// runProduce runs "eventflow produce" against srv with args and returns
// its output.
func runProduce(t *testing.T, srv *httptest.Server, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newProduceCommand(&out)
	cmd.SetArgs(append([]string{"--url", srv.URL}, args...))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// summaryLine returns the line of the summary that starts with prefix.
func summaryLine(t *testing.T, out, prefix string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("no line %q in output:\n%s", prefix, out)
	return ""
}

func TestProduce_SendsCountEventsWithUniqueIDs(t *testing.T) {
	t.Parallel()
	f, srv := newFakeEventflow(t)
	out, err := runProduce(t, srv, "--count", "137", "--rate", "0", "--api-key", "k-1", "--duplicates", "0.1", "--seed", "3")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 137 {
		t.Errorf("%d requests, want 137", len(f.requests))
	}
	for _, r := range f.requests {
		if r.path != "/v1/events" || r.events != 1 || r.auth != "Bearer k-1" {
			t.Fatalf("request %+v, want one event to /v1/events with Authorization: Bearer k-1", r)
		}
	}
	if got := len(f.bodies) + f.duplicates; got != 137 || f.conflicts != 0 {
		t.Errorf("%d distinct event ids + %d duplicates = %d, %d conflicts; want 137 events, every repeated id with the same body",
			len(f.bodies), f.duplicates, got, f.conflicts)
	}
	if !strings.HasPrefix(out, "sent 137 events in 137 requests to "+srv.URL+"/v1/events in ") {
		t.Errorf("summary does not start with the count:\n%s", out)
	}
}

func TestProduce_SharesOfInvalidAndDuplicateEvents(t *testing.T) {
	t.Parallel()
	f, srv := newFakeEventflow(t)
	const n = 2000
	out, err := runProduce(t, srv, "--count", strconv.Itoa(n), "--rate", "0", "--invalid", "0.1", "--duplicates", "0.05", "--seed", "42")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conflicts != 0 {
		t.Errorf("%d events reused an event_id with another body, want 0", f.conflicts)
	}
	if share := float64(f.invalid) / n; share < 0.07 || share > 0.13 {
		t.Errorf("%d of %d events invalid (%.3f), want about 0.10", f.invalid, n, share)
	}
	if share := float64(f.duplicates) / n; share < 0.03 || share > 0.07 {
		t.Errorf("%d of %d events duplicates (%.3f), want about 0.05", f.duplicates, n, share)
	}
	byType := map[string]int{}
	for _, e := range f.received {
		byType[e.Type]++
	}
	if len(byType) != 4 {
		t.Errorf("fresh events by type %v, want all four built-in types", byType)
	}
	// What produce says it sent is what the server saw.
	want := fmt.Sprintf("invalid=%d duplicate=%d", f.invalid, f.duplicates)
	if line := summaryLine(t, out, "sent:"); !strings.HasSuffix(line, want) {
		t.Errorf("summary %q, want it to end in %q", line, want)
	}
}

func TestProduce_SeedMakesTheSequenceReproducible(t *testing.T) {
	t.Parallel()
	sequence := func() []receivedEvent {
		f, srv := newFakeEventflow(t)
		out, err := runProduce(t, srv, "--count", "300", "--rate", "0", "--concurrency", "1", "--invalid", "0.2", "--duplicates", "0", "--seed", "7")
		if err != nil {
			t.Fatalf("produce: %v\n%s", err, out)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.received
	}
	if a, b := sequence(), sequence(); !slices.Equal(a, b) {
		t.Errorf("two runs with --seed 7 sent different sequences of types and invalid events")
	}
}

func TestProduce_BatchesOfTheRequestedSize(t *testing.T) {
	t.Parallel()
	f, srv := newFakeEventflow(t)
	out, err := runProduce(t, srv, "--count", "110", "--batch", "25", "--rate", "0")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var sizes []int
	for _, r := range f.requests {
		if r.path != "/v1/events/batch" {
			t.Errorf("request to %s, want /v1/events/batch", r.path)
		}
		sizes = append(sizes, r.events)
	}
	slices.Sort(sizes)
	if want := []int{10, 25, 25, 25, 25}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
}

func TestProduce_SummaryCountsWhatTheServerAnswered(t *testing.T) {
	t.Parallel()
	for _, batch := range []string{"1", "20"} {
		t.Run("batch="+batch, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeEventflow(t)
			out, err := runProduce(t, srv, "--count", "500", "--batch", batch, "--rate", "0", "--invalid", "0.2", "--duplicates", "0.1", "--seed", "5")
			if err != nil {
				t.Fatalf("produce: %v\n%s", err, out)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			wantStatus := "by status:"
			for _, status := range slices.Sorted(maps.Keys(f.byStatus)) {
				wantStatus += fmt.Sprintf(" %d=%d", status, f.byStatus[status])
			}
			if got := summaryLine(t, out, "by status:"); got != wantStatus {
				t.Errorf("summary %q, server answered %q", got, wantStatus)
			}
			wantResult := fmt.Sprintf("by result: accepted=%d duplicate=%d rejected=%d", f.byResult["accepted"], f.byResult["duplicate"], f.byResult["rejected"])
			if got := summaryLine(t, out, "by result:"); got != wantResult {
				t.Errorf("summary %q, server answered %q", got, wantResult)
			}
			if f.byResult["rejected"] == 0 || f.byResult["duplicate"] == 0 {
				t.Errorf("server answered %v, want some rejected and some duplicate events", f.byResult)
			}
		})
	}
}

func TestProduce_HonoursTheRate(t *testing.T) {
	t.Parallel()
	_, srv := newFakeEventflow(t)
	start := time.Now()
	out, err := runProduce(t, srv, "--count", "20", "--rate", "200", "--concurrency", "8")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	// The 20th event's turn is 19/200 s = 95ms after the first's.
	if elapsed := time.Since(start); elapsed < 90*time.Millisecond {
		t.Errorf("20 events at 200/s took %v, want at least 90ms", elapsed)
	}
}

func TestProduce_PrintsProgressWhileRunning(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("takes 1.5s")
	}
	_, srv := newFakeEventflow(t)
	out, err := runProduce(t, srv, "--count", "1500", "--rate", "1000")
	if err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	t.Logf("output:\n%s", out)
	if !strings.HasPrefix(out, "progress: ") || !strings.Contains(out, "/1500 events sent") {
		t.Errorf("no progress line before the summary:\n%s", out)
	}
}

func TestProduce_FailsWhenNoRequestSucceeds(t *testing.T) {
	t.Parallel()
	f, srv := newFakeEventflow(t)
	f.apiKey = "right"
	out, err := runProduce(t, srv, "--count", "5", "--rate", "0", "--api-key", "wrong")
	if err == nil {
		t.Fatalf("produce succeeded with every request answered 401:\n%s", out)
	}
	if got := summaryLine(t, out, "by status:"); got != "by status: 401=5" {
		t.Errorf("summary %q, want by status: 401=5", got)
	}
}

func TestProduce_UsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--url", "localhost:8080"},
		{"--rate", "-1"},
		{"--count", "0"},
		{"--invalid", "1.5"},
		{"--duplicates", "-0.1"},
		{"--invalid", "0.6", "--duplicates", "0.5"},
		{"--batch", "0"},
		{"--concurrency", "0"},
		{"--timeout", "0s"},
		{"--count", "many"},
		{"extra-argument"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeEventflow(t)
			out, err := runProduce(t, srv, args...)
			if err == nil {
				t.Errorf("produce %v succeeded, want a usage error:\n%s", args, out)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.requests) != 0 {
				t.Errorf("produce %v sent %d requests, want none", args, len(f.requests))
			}
		})
	}
}

func TestProduce_SampleEventsAreValidUnlessMeantNot(t *testing.T) {
	t.Parallel()
	gen := newSampler(1, 0.3, 0)
	var sent sentEvents
	for range 500 {
		e := gen.next(&sent)
		_, err := schema.DecodeEvent(e.Body, schema.DecodeOptions{Strict: true})
		var invalid *schema.ValidationError
		switch {
		case e.Invalid && !errors.As(err, &invalid):
			t.Errorf("event meant to be invalid: %v, want a *schema.ValidationError\n%s", err, e.Body)
		case !e.Invalid && err != nil:
			t.Errorf("sample event invalid: %v\n%s", err, e.Body)
		}
	}
}
