package middleware

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventflow/eventflow/handlers/problem"
)

// These tests are inside the package: they sample the signals one at a
// time (sampleOnce) and drive the pool signal's clock, instead of waiting
// for the sampling loop.

// sampleOnce samples every signal of s once, as one tick of Run does.
func sampleOnce(s *Shedder) {
	for _, sig := range s.signals {
		s.sample(context.Background(), sig)
	}
}

// okHandler answers 204: the request got through.
type okHandler struct{}

func (*okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

func send(h http.Handler, method string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/v1/events", strings.NewReader("{}")))
	return rec
}

// metricValue reads one series from reg; labels are name, value pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestShedBacklogTripsAndClears(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var backlog atomic.Int64
	s := NewShedder(ShedConfig{
		Backlog:    func(context.Context) (int64, error) { return backlog.Load(), nil },
		MaxBacklog: 100,
		Metrics:    NewMetrics(reg, nil),
	})
	h := s.Middleware(&okHandler{})
	shed := 0.0
	for _, step := range []struct {
		backlog int64
		shed    bool
	}{
		{0, false},
		{100, false}, // at the limit is not over it
		{101, true},
		{95, true}, // hysteresis: holds down to 9/10 of the limit
		{90, true},
		{89, false},
		{99, false}, // and trips again only over the limit
		{101, true},
	} {
		backlog.Store(step.backlog)
		sampleOnce(s)
		code, wantCode, wantGauge := send(h, http.MethodPost).Code, http.StatusNoContent, 0.0
		if step.shed {
			wantCode, wantGauge = http.StatusServiceUnavailable, 1
			shed++
		}
		if code != wantCode {
			t.Errorf("backlog %d: status %d, want %d", step.backlog, code, wantCode)
		}
		if g, _ := metricValue(t, reg, "load_shedding", "reason", "backlog"); g != wantGauge {
			t.Errorf("backlog %d: load_shedding{reason=backlog} %v, want %v", step.backlog, g, wantGauge)
		}
	}
	if v, _ := metricValue(t, reg, "load_shed_total", "reason", "backlog"); v != shed {
		t.Errorf("load_shed_total{reason=backlog} %v, want %v", v, shed)
	}
	if v, _ := metricValue(t, reg, "events_rejected_total", "status", "503"); v != shed {
		t.Errorf(`events_rejected_total{status="503"} %v, want %v`, v, shed)
	}
}

func TestShedMemoryTripsAndClears(t *testing.T) {
	t.Parallel()
	var live atomic.Int64
	s := NewShedder(ShedConfig{HeapLive: live.Load, MaxMemory: 1000})
	h := s.Middleware(&okHandler{})
	for _, step := range []struct {
		live int64
		shed bool
	}{{500, false}, {1000, false}, {1001, true}, {950, true}, {899, false}} {
		live.Store(step.live)
		sampleOnce(s)
		if got := send(h, http.MethodPost).Code == http.StatusServiceUnavailable; got != step.shed {
			t.Errorf("live heap %d: shed %v, want %v", step.live, got, step.shed)
		}
	}
}

// The pool signal must trip on a queue for connections that lasts, and on
// nothing else: not on a busy pool, not on a burst, not on waits while
// connections sit idle; and once tripped it must not flap.
func TestShedDBWaitNeedsAQueueThatLasts(t *testing.T) {
	t.Parallel()
	var stats sql.DBStats
	stats.MaxOpenConnections = 20
	clock := time.Unix(1_000_000, 0)
	s := NewShedder(ShedConfig{PoolStats: func() sql.DBStats { return stats }, MaxDBWait: 500 * time.Millisecond})
	s.now = func() time.Time { return clock }
	sampleOnce(s)
	// step is one sample 250ms after the last, the callers having waited
	// wait since, with inUse connections busy now.
	step := func(wait time.Duration, inUse int) bool {
		clock = clock.Add(250 * time.Millisecond)
		stats.WaitDuration += wait
		stats.InUse = inUse
		sampleOnce(s)
		return s.active.Load() != 0
	}
	never := func(what string, n int, wait time.Duration, inUse int) {
		t.Helper()
		for i := range n {
			if step(wait, inUse) {
				t.Fatalf("%s: shed at step %d", what, i)
			}
		}
	}
	never("every connection busy, nobody waiting", 8, 0, 20)
	never("a 400ms burst, under the limit over the window", 1, 400*time.Millisecond, 20)
	never("after the burst", 4, 0, 20)
	never("waits of 1.2s/s while connections are idle", 8, 300*time.Millisecond, 10)
	never("the queue gone", 5, 0, 10)

	// 0.8s/s with every connection busy: over 0.5s/s once the window holds
	// three steps of it.
	for range 2 { // each step adds to the window: two are not enough
		if step(200*time.Millisecond, 20) {
			t.Fatal("shed before the window's wait passed the limit")
		}
	}
	if !step(200*time.Millisecond, 20) {
		t.Fatal("no shedding after 0.6s of waiting in the last second")
	}
	for i := range 8 {
		// 0.4s/s is under the limit but over half of it: holds, idle
		// connections or not.
		if !step(100*time.Millisecond, 10) {
			t.Fatalf("stopped shedding at step %d above half the limit", i)
		}
	}
	step(0, 10)
	if step(0, 10) {
		t.Fatal("still shedding at 0.2s/s, under half the limit")
	}
	never("after clearing", 8, 0, 10)
}

func TestShedRefusal(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var backlog, live atomic.Int64
	s := NewShedder(ShedConfig{
		Backlog:    func(context.Context) (int64, error) { return backlog.Load(), nil },
		MaxBacklog: 10,
		HeapLive:   live.Load,
		MaxMemory:  100,
		Metrics:    NewMetrics(reg, nil),
	})
	h := RequestID(s.Middleware(&okHandler{}))
	post := func() (*httptest.ResponseRecorder, problem.Problem) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/v1/events/batch", strings.NewReader(`{"events":[]}`))
		req.Header.Set(RequestIDHeader, "req-shed")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p problem.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("body %s: %v", rec.Body, err)
		}
		return rec, p
	}

	backlog.Store(11)
	sampleOnce(s)
	rec, p := post()
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Errorf("status %d, headers %v", rec.Code, rec.Header())
	}
	if p.Type != "/problems/unavailable" || p.Status != 503 || p.RequestID != "req-shed" ||
		!strings.Contains(p.Detail, "(backlog)") || !strings.Contains(p.Detail, "waiting to be processed") {
		t.Errorf("problem %+v", p)
	}

	live.Store(101)
	sampleOnce(s)
	rec, p = post()
	if rec.Code != 503 || !strings.Contains(p.Detail, "(memory, backlog)") || !strings.Contains(p.Detail, "short of memory") {
		t.Errorf("two reasons: %d %+v", rec.Code, p)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "5" {
		t.Errorf("Retry-After %q, want the longest of the reasons', 5", ra)
	}
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{"load_shed_total", "reason", "backlog", 1},
		{"load_shed_total", "reason", "memory", 1}, // the first reason only
		{"events_rejected_total", "status", "503", 2},
		{"load_shedding", "reason", "backlog", 1},
		{"load_shedding", "reason", "memory", 1},
	} {
		if v, _ := metricValue(t, reg, m.name, m.label, m.value); v != m.want {
			t.Errorf("%s{%s=%q} %v, want %v", m.name, m.label, m.value, v, m.want)
		}
	}
	if _, ok := metricValue(t, reg, "load_shedding", "reason", "db_wait"); ok {
		t.Error("load_shedding{reason=db_wait} exported though the signal is off")
	}
}

func TestShedNeverRefusesReads(t *testing.T) {
	t.Parallel()
	s := NewShedder(ShedConfig{HeapLive: func() int64 { return 2 }, MaxMemory: 1})
	sampleOnce(s)
	h := s.Middleware(&okHandler{})
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		for _, path := range []string{"/healthz", "/readyz", "/v1/events/0b6f3c1e-3f2a-4c1e-9a51-6f1f2b7c9d10"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			if rec.Code != http.StatusNoContent {
				t.Errorf("%s %s while shedding: %d", method, path, rec.Code)
			}
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		if code := send(h, method).Code; code != 503 {
			t.Errorf("%s while shedding: %d, want 503", method, code)
		}
	}
}

func TestShedOff(t *testing.T) {
	t.Parallel()
	next := &okHandler{}
	for name, cfg := range map[string]ShedConfig{
		"zero":              {},
		"limits, no source": {MaxBacklog: 1, MaxDBWait: time.Second},
		"sources, no limit": {
			Backlog:   func(context.Context) (int64, error) { return 1 << 40, nil },
			PoolStats: func() sql.DBStats { return sql.DBStats{} },
			HeapLive:  func() int64 { return 1 << 40 },
		},
	} {
		s := NewShedder(cfg)
		if h := s.Middleware(next); h != http.Handler(next) {
			t.Errorf("%s: Middleware wraps the handler though every signal is off", name)
		}
		done := make(chan struct{})
		go func() { s.Run(t.Context()); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run with no signal did not return", name)
		}
	}
}

// A signal that cannot be sampled sheds nothing, and says so once.
func TestShedFailsOpen(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var failing atomic.Bool
	s := NewShedder(ShedConfig{
		Backlog: func(context.Context) (int64, error) {
			if failing.Load() {
				return 0, errors.New("connection refused")
			}
			return 500, nil
		},
		MaxBacklog: 100,
		Logger:     slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	h := s.Middleware(&okHandler{})
	sampleOnce(s)
	if code := send(h, http.MethodPost).Code; code != 503 {
		t.Fatalf("over the limit: %d", code)
	}
	failing.Store(true)
	sampleOnce(s)
	sampleOnce(s)
	if code := send(h, http.MethodPost).Code; code != 204 {
		t.Errorf("backlog unknown: %d, want the request through", code)
	}
	if n := strings.Count(logs.String(), "cannot sample"); n != 1 {
		t.Errorf("%d warnings for two failed samples, want 1:\n%s", n, logs.String())
	}
	failing.Store(false)
	sampleOnce(s)
	if code := send(h, http.MethodPost).Code; code != 503 {
		t.Errorf("backlog known again and over the limit: %d", code)
	}
}

// Run samples in the background; requests see its verdict.
func TestShedRunSamples(t *testing.T) {
	t.Parallel()
	var backlog atomic.Int64
	backlog.Store(1000)
	s := NewShedder(ShedConfig{
		Backlog:         func(context.Context) (int64, error) { return backlog.Load(), nil },
		MaxBacklog:      100,
		BacklogInterval: time.Millisecond,
	})
	h := s.Middleware(&okHandler{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitFor := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for send(h, http.MethodPost).Code != want {
			if time.Now().After(deadline) {
				t.Fatalf("no %d after 5s", want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(503)
	backlog.Store(0)
	waitFor(204)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestHeapLiveReadsRuntimeMetrics(t *testing.T) {
	t.Parallel()
	runtime.GC() // the live heap is known from the end of the first cycle
	if live := heapLive()(); live <= 0 {
		t.Errorf("live heap %d bytes", live)
	}
}
