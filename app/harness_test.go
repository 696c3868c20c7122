package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/eventflow/eventflow/internal/fault"
	"github.com/eventflow/eventflow/internal/testenv"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// harness is one eventflow process, in this test process, on its own
// database and stream, with fault switches around its store and transport.
type harness struct {
	t         *testing.T
	cfg       Config
	app       *App
	base      string // the API's base URL
	metrics   string // the metrics server's base URL
	db        *sqlx.DB
	store     *fault.Store
	transport *fault.Transport
	done      chan error
	cancel    context.CancelFunc
	logs      *syncBuffer // every log line, JSON
}

// testConfig is the configuration of a fresh, isolated eventflow on the
// given transport, with quick retries and a short redelivery idle time.
// Only the redis transport needs Redis.
func testConfig(t *testing.T, transport string) Config {
	t.Helper()
	cfg, err := LoadConfig(nil, "")
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.Transport = transport
	cfg.DatabaseURL = testenv.Postgres(t)
	cfg.Stream = testenv.Name("events")
	if transport == TransportRedis {
		cfg.RedisURL = testenv.RedisURL(t)
		testenv.DeleteStreams(t, cfg.RedisURL, cfg.Stream)
	} else {
		// Nothing listens there: the other transports must not need Redis.
		cfg.RedisURL = "redis://127.0.0.1:1/0"
	}
	cfg.ConsumerGroup = testenv.Name("group")
	cfg.ConsumerName = testenv.Name("consumer")
	cfg.HTTPAddr, cfg.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.WorkerConcurrency = 4
	cfg.RetryMax = 3
	cfg.RetryInitialInterval, cfg.RetryMaxInterval = 5*time.Millisecond, 20*time.Millisecond
	cfg.HandlerTimeout = time.Second
	cfg.RedeliveryIdle = 10 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.LogLevel = "WARN"
	return cfg
}

// setup starts eventflow (API and worker) on the redis transport and stops
// it when the test ends.
func setup(t *testing.T, configure ...func(*Config)) *harness {
	t.Helper()
	return setupOn(t, TransportRedis, configure...)
}

// setupOn is setup on the given transport.
func setupOn(t *testing.T, transport string, configure ...func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(t, transport)
	for _, c := range configure {
		c(&cfg)
	}
	return start(t, cfg, Roles{API: true, Worker: true})
}

func start(t *testing.T, cfg Config, roles Roles) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &harness{t: t, cfg: cfg, done: make(chan error, 1), logs: &syncBuffer{}}
	// Every line is kept in h.logs (for tests of the logs themselves); WARN
	// and above also go to t.Log, or everything to stderr with -v.
	var shown io.Writer = levelFilter{testWriter{t}}
	if testing.Verbose() {
		shown = os.Stderr
	}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(shown, h.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := newApp(context.Background(), cfg, roles, logger, hooks{
		store: func(s store.Store) store.Store {
			h.store = &fault.Store{Store: s}
			return h.store
		},
		transport: func(tr transport.Transport) transport.Transport {
			h.transport = &fault.Transport{Transport: tr}
			return h.transport
		},
	})
	if err != nil {
		t.Fatalf("start eventflow: %v", err)
	}
	if err := a.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	h.app = a
	if roles.API {
		h.base = "http://" + a.APIAddr()
	}
	h.metrics = "http://" + a.MetricsAddr()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-h.done:
		t.Fatalf("eventflow stopped at start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("eventflow not ready after 20s")
	}
	h.db, err = sqlx.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.stop()
		_ = h.db.Close()
	})
	return h
}

// startWithoutDB starts eventflow in dev mode, whose harness has no
// database to count rows in.
func startWithoutDB(t *testing.T, cfg Config) *harness {
	t.Helper()
	cfg.DatabaseURL = "postgres://127.0.0.1:1/none" // for sqlx.Open; never dialled
	return start(t, cfg, Roles{API: true, Worker: true})
}

// stop shuts eventflow down gracefully and returns Run's error.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(30 * time.Second):
		h.t.Error("eventflow did not stop within 30s")
		return nil
	}
}

// levelFilter passes on only the JSON log lines at WARN or above.
type levelFilter struct{ w io.Writer }

func (f levelFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"level":"WARN"`)) || bytes.Contains(p, []byte(`"level":"ERROR"`)) {
		return f.w.Write(p)
	}
	return len(p), nil
}

// testWriter sends log lines to t.Log, so they show only for failed tests.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// problemBody is an RFC 9457 problem as the API sends it.
type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
	Errors    []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (r response) problem(t *testing.T) problemBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("problem %+v does not match status %d and request id %q", p, r.status, r.header.Get("X-Request-ID"))
	}
	return p
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request; headers are name, value pairs. A JSON content type is
// set unless headers set one.
func (h *harness) do(method, path string, body []byte, headers ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.Header.Get("X-Request-ID") == "" {
		h.t.Errorf("%s %s: response without X-Request-ID", method, path)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (h *harness) post(path, body string, headers ...string) response {
	h.t.Helper()
	return h.do(http.MethodPost, path, []byte(body), headers...)
}

// count returns the number of rows of table matching where.
func (h *harness) count(table, where string, args ...any) int {
	h.t.Helper()
	var n int
	q := "SELECT count(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	if err := h.db.Get(&n, q, args...); err != nil {
		h.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
// unpublished counts the records of an unconfirmed publish that name the
// event (eventflow_unpublished).
func (h *harness) unpublished(id string) int {
	return h.count("eventflow_unpublished", "$1::uuid = ANY (event_ids)", id)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricValue reads one sample from /metrics; series is the name with its
// labels as Prometheus prints them, e.g. `events_processed_total{event_type="page.view"}`.
func (h *harness) metricValue(series string) float64 {
	h.t.Helper()
	res, err := http.Get(h.metrics + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				h.t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// pqArray passes strings as a Postgres array parameter.
func pqArray(s []string) any { return pq.Array(s) }

// openTestDB opens the test's database for counting rows.
func openTestDB(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
