package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventflow/eventflow/internal/testenv"
)

func TestBenchBucketQuantile(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	// 10 observations ≤ 0.1, 20 in (0.1, 0.2], 10 in (0.2, 0.5], none above.
	buckets := []bucket{{0.1, 10}, {0.2, 30}, {0.5, 40}, {inf, 40}}
	for _, tc := range []struct {
		name    string
		q       float64
		buckets []bucket
		want    float64
	}{
		{"rank at the top of the first bucket", 0.25, buckets, 0.1},
		{"first bucket starts at 0", 0.125, buckets, 0.05},
		{"interpolated in the second bucket", 0.5, buckets, 0.15},
		{"interpolated in the third bucket", 0.99, buckets, 0.2 + 0.3*0.96},
		{"everything", 1, buckets, 0.5},
		{"rank in +Inf: the highest finite bound", 0.9, []bucket{{0.1, 10}, {inf, 20}}, 0.1},
		{"a first bound ≤ 0 is returned as is", 0.5, []bucket{{0, 10}, {1, 10}, {inf, 10}}, 0},
		{"no observations", 0.5, []bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{0.1, 5}, {0.2, 10}}, math.NaN()},
		{"no buckets", 0.5, nil, math.NaN()},
	} {
		got := bucketQuantile(tc.q, tc.buckets)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: bucketQuantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestBenchHistogramDelta(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	before := []bucket{{0.1, 5}, {0.2, 5}, {inf, 5}}
	after := []bucket{{0.1, 5}, {0.2, 15}, {inf, 17}}
	delta := histogramDelta(before, after)
	want := []bucket{{0.1, 0}, {0.2, 10}, {inf, 12}}
	if !slices.Equal(delta, want) {
		t.Fatalf("delta %v, want %v", delta, want)
	}
	// Half of the 12 new observations: rank 6 of the 10 in (0.1, 0.2].
	if got := bucketQuantile(0.5, delta); math.Abs(got-0.16) > 1e-9 {
		t.Errorf("median of the delta %v, want 0.16", got)
	}
	// A histogram absent before the load (no event yet) counts as zero.
	if got := histogramDelta(nil, after); !slices.Equal(got, after) {
		t.Errorf("delta from nothing %v, want %v", got, after)
	}
}

func TestBenchPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(hundred), func(i, j int) { hundred[i], hundred[j] = hundred[j], hundred[i] })
	slices.Sort(hundred)
	ten := hundred[:10] // 1ms … 10ms
	for _, tc := range []struct {
		values []time.Duration
		pct    int
		want   time.Duration
	}{
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 95, 95 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{ten, 50, 5 * time.Millisecond},
		{ten, 95, 10 * time.Millisecond}, // ⌈9.5⌉ = 10th
		{ten, 99, 10 * time.Millisecond},
		{[]time.Duration{7}, 50, 7},
		{[]time.Duration{7}, 99, 7},
		{nil, 50, 0},
	} {
		if got := percentile(tc.values, tc.pct); got != tc.want {
			t.Errorf("p%d of %d values: %v, want %v", tc.pct, len(tc.values), got, tc.want)
		}
	}
}

func TestBenchScrapeSumsOverLabelsAndProcesses(t *testing.T) {
	t.Parallel()
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# TYPE events_processed_total counter
events_processed_total{event_type="page.view"} 7
events_processed_total{event_type="user.login"} 5
# TYPE queue_depth gauge
queue_depth 3
# TYPE event_end_to_end_seconds histogram
event_end_to_end_seconds_bucket{event_type="page.view",le="0.1"} 4
event_end_to_end_seconds_bucket{event_type="page.view",le="1"} 7
event_end_to_end_seconds_bucket{event_type="page.view",le="+Inf"} 7
event_end_to_end_seconds_sum{event_type="page.view"} 1.5
event_end_to_end_seconds_count{event_type="page.view"} 7
event_end_to_end_seconds_bucket{event_type="user.login",le="0.1"} 1
event_end_to_end_seconds_bucket{event_type="user.login",le="1"} 4
event_end_to_end_seconds_bucket{event_type="user.login",le="+Inf"} 5
event_end_to_end_seconds_sum{event_type="user.login"} 9
event_end_to_end_seconds_count{event_type="user.login"} 5
`)
	}))
	t.Cleanup(worker.Close)
	m, err := newMetricsScraper(worker.URL).scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []bucket{{0.1, 5}, {1, 11}, {math.Inf(1), 12}}
	if m.processed != 12 || m.failed != 0 || m.depth != 3 || !slices.Equal(m.endToEnd, want) {
		t.Errorf("scraped processed %v, failed %v, depth %v, buckets %v; want 12, 0, 3, %v", m.processed, m.failed, m.depth, m.endToEnd, want)
	}

	// An API-only process processes nothing; the transport's depth is the
	// same seen from every process.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE queue_depth gauge\nqueue_depth 2\n# TYPE events_failed_total counter\nevents_failed_total{event_type=\"page.view\",error_kind=\"permanent\"} 1\n")
	}))
	t.Cleanup(api.Close)
	m, err = newMetricsScraper(api.URL, worker.URL, worker.URL).scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want = []bucket{{0.1, 10}, {1, 22}, {math.Inf(1), 24}}
	if m.processed != 24 || m.failed != 1 || m.depth != 3 || !slices.Equal(m.endToEnd, want) {
		t.Errorf("scraped three processes: processed %v, failed %v, depth %v, buckets %v; want 24, 1, 3, %v", m.processed, m.failed, m.depth, m.endToEnd, want)
	}
	if _, err := newMetricsScraper(worker.URL, "http://127.0.0.1:1/metrics").scrape(context.Background()); err == nil {
		t.Error("a scrape with a failing URL succeeded")
	}
}

func TestBenchBaselineRatios(t *testing.T) {
	t.Parallel()
	m := baselineMeasurement{postgresRowsPerSecond: 2000, redisEntriesPerSecond: 10000}
	r := m.report(1000, 500)
	if want := (ratios{OfMin: 0.5, OfPostgres: 0.5, OfRedis: 0.1}); r.Accepted != want {
		t.Errorf("accepted ratios %+v, want %+v", r.Accepted, want)
	}
	if want := (ratios{OfMin: 0.25, OfPostgres: 0.25, OfRedis: 0.05}); r.Processed != want {
		t.Errorf("processed ratios %+v, want %+v", r.Processed, want)
	}
}

// TestBenchAgainstDevMode runs "eventflow bench" against eventflow in dev
// mode, whose memory transport processes an event before answering 202: so
// every accepted event must be processed, with no backlog.
func TestBenchAgainstDevMode(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 10} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			t.Parallel()
			h := startDevForBench(t)

			var stdout, stderr bytes.Buffer
			cmd := newBenchCommand(&stdout, &stderr)
			cmd.SetArgs([]string{"--url", h.base, "--metrics-url", h.metrics + "/metrics",
				"--connections", "4", "--duration", "2s", "--batch", fmt.Sprint(batch), "--drain", "10s",
				"--baseline=false", "--output", "json"})
			if err := cmd.ExecuteContext(context.Background()); err != nil {
				t.Fatalf("bench: %v\nstderr: %s", err, stderr.String())
			}
			var r benchReport
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("decode report: %v\n%s", err, stdout.String())
			}
			if r.Accepted == 0 || r.Accepted != r.EventsSent || r.Requests*batch != r.EventsSent {
				t.Errorf("accepted %d of %d events in %d requests of %d; want all, and more than 0", r.Accepted, r.EventsSent, r.Requests, batch)
			}
			if r.Non2xxTotal != 0 || len(r.Non2xx) != 0 || r.StatusCounts["202"] != r.Requests {
				t.Errorf("status counts %v, non-2xx %v (%d); want only 202", r.StatusCounts, r.Non2xx, r.Non2xxTotal)
			}
			if !r.CaughtUp || r.Processed != int64(r.Accepted) || r.Failed != 0 {
				t.Errorf("caught up %v, processed %d, failed %d; want caught up and processed = accepted = %d", r.CaughtUp, r.Processed, r.Failed, r.Accepted)
			}
			if r.BacklogAtEndOfLoad == nil || *r.BacklogAtEndOfLoad != 0 {
				t.Errorf("backlog at the end of the load %v, want 0", r.BacklogAtEndOfLoad)
			}
			if r.AcceptedPerSecond <= 0 || r.ProcessedPerSecond <= 0 || r.ProcessedPerSecond > r.AcceptedPerSecond*1.001 {
				t.Errorf("accepted %.1f/s, processed %.1f/s; want positive, processed ≤ accepted", r.AcceptedPerSecond, r.ProcessedPerSecond)
			}
			for name, p := range map[string]percentiles{"202 latency": r.Latency202, "received→processed": r.ReceivedToProcessed} {
				if math.IsNaN(float64(p.P50)) || !(0 < p.P50 && p.P50 <= p.P95 && p.P95 <= p.P99) {
					t.Errorf("%s percentiles %+v, want 0 < p50 ≤ p95 ≤ p99", name, p)
				}
			}
			if r.Baseline != nil {
				t.Errorf("baseline %+v with --baseline=false", r.Baseline)
			}
			if m := r.Memory; m == nil || m.Samples < 2 || m.MinMiB <= 0 || m.MinMiB > m.MaxMiB {
				t.Errorf("memory report %+v, want at least 2 samples and 0 < min ≤ max", m)
			}
			// The dev server runs in the test's process, which is also the
			// load generator: both used CPU.
			if c := r.CPU; c == nil || c.Eventflow == nil || *c.Eventflow <= 0 || c.LoadGenerator == nil || *c.LoadGenerator <= 0 ||
				c.MachineBusyPercent == nil || *c.MachineBusyPercent <= 0 || c.Cores < 1 {
				t.Errorf("cpu report %+v, want eventflow's, the load generator's and the machine's", c)
			}
			if !strings.Contains(stderr.String(), "load: ") {
				t.Errorf("no progress bar on stderr: %q", stderr.String())
			}

			var table bytes.Buffer
			if err := r.write(&table, "table"); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"202 latency", "non-2xx", "backlog at end of load", "received→processed", "load generator"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table without %q:\n%s", want, table.String())
				}
			}
			t.Logf("report as a table:\n%s", table.String())
		})
	}
}

// The CPU report divides each party's CPU over the load by the events
// accepted, and leaves in "other" what the machine spent beyond the parties
// that run on it.
func TestBenchCPUReport(t *testing.T) {
	before := cpuReading{eventflow: 10, self: 2, redis: 3, machineBusy: 100}
	after := cpuReading{eventflow: 11, self: 2.5, redis: 3.1, machineBusy: 102}
	load := loadResult{start: time.Unix(0, 0)}
	load.end = load.start.Add(time.Second)
	cores := float64(runtime.NumCPU())
	for _, tc := range []struct {
		name       string
		url        string
		redisLocal bool
		before     cpuReading
		eventflow  *float64
		other      float64
	}{
		{"all on this machine", "http://127.0.0.1:8080", true, before, ptr(1000.0), 2000 - 1000 - 500 - 100},
		{"eventflow elsewhere", "http://eventflow.internal:8080", true, before, ptr(1000.0), 2000 - 500 - 100},
		{"redis elsewhere", "http://localhost:8080", false, before, ptr(1000.0), 2000 - 1000 - 500},
		{"eventflow's CPU unknown", "http://[::1]:8080", true, cpuReading{eventflow: math.NaN(), self: 2, redis: 3, machineBusy: 100}, nil, 2000 - 500 - 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := benchReport{URL: tc.url, Accepted: 1000}
			r.addCPU(tc.before, after, load, tc.redisLocal)
			c := r.CPU
			if !sameFloat(c.Eventflow, tc.eventflow) || !sameFloat(c.LoadGenerator, ptr(500.0)) || !sameFloat(c.Redis, ptr(100.0)) || !sameFloat(c.Other, &tc.other) {
				t.Errorf("µs per event: eventflow %v, load generator %v, redis %v, other %v; want %v, 500, 100, %v",
					deref(c.Eventflow), deref(c.LoadGenerator), deref(c.Redis), deref(c.Other), deref(tc.eventflow), tc.other)
			}
			if want := 200 / cores; !sameFloat(c.MachineBusyPercent, &want) {
				t.Errorf("machine busy %v %%, want %v", deref(c.MachineBusyPercent), want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func sameFloat(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-6
}

// The readings come from this machine's /proc and from Redis.
func TestBenchReadCPU(t *testing.T) {
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	before := readCPU(context.Background(), 0, rdb)
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); { // spin: use CPU
	}
	after := readCPU(context.Background(), 0, rdb)
	for name, d := range map[string]float64{"self": after.self - before.self, "machine": after.machineBusy - before.machineBusy} {
		if !(d > 0) {
			t.Errorf("%s CPU went from %v by %v after 100 ms of spinning, want more", name, before, d)
		}
	}
	if math.IsNaN(after.redis) || after.redis < before.redis {
		t.Errorf("redis CPU %v then %v, want a count that does not fall", before.redis, after.redis)
	}
}

// startDevForBench starts eventflow in dev mode (memory transport and
// store) on free ports, for bench to drive.
func startDevForBench(t *testing.T) *harness {
	t.Helper()
	cfg, err := readConfig([]string{"DATABASE_URL=postgres://nowhere.invalid:1/x", "REDIS_URL=redis://nowhere.invalid:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev, cfg.Transport, cfg.AutoMigrate = true, TransportMemory, false
	cfg.HTTPAddr, cfg.MetricsAddr, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "WARN"
	return startWithoutDB(t, cfg)
}

// --rate spaces the requests out over every connection.
func TestBenchRate(t *testing.T) {
	t.Parallel()
	h := startDevForBench(t)
	var stdout, stderr bytes.Buffer
	cmd := newBenchCommand(&stdout, &stderr)
	cmd.SetArgs([]string{"--url", h.base, "--metrics-url", h.metrics + "/metrics", "--connections", "8",
		"--duration", "2s", "--rate", "100", "--baseline=false", "--output", "json"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("bench: %v\nstderr: %s", err, stderr.String())
	}
	var r benchReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode report: %v\n%s", err, stdout.String())
	}
	// 100/s for 2 s; unlimited, 8 connections to dev mode send thousands.
	if r.Requests < 150 || r.Requests > 210 {
		t.Errorf("%d requests at --rate 100 for 2s, want about 200", r.Requests)
	}
}

// TestBenchBaseline measures the baseline on the local Postgres and Redis
// for a second each and checks that it leaves nothing behind.
func TestBenchBaseline(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("needs Postgres and Redis for a few seconds")
	}
	databaseURL, redisURL := testenv.Postgres(t), testenv.RedisURL(t)
	ctx := context.Background()
	b, err := openBaseline(ctx, databaseURL, redisURL, baselineClients(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	testenv.DeleteStreams(t, redisURL, b.stream) // in case the test fails half-way

	m, err := b.measure(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.postgresRowsPerSecond <= 0 || m.redisEntriesPerSecond <= 0 || m.clients != 4 {
		t.Errorf("baseline %+v: want positive rates from 4 clients", m)
	}
	if m.payloadBytes < baselinePayloadBytes {
		t.Errorf("payloads of %d bytes, want at least %d", m.payloadBytes, baselinePayloadBytes)
	}
	t.Logf("baseline: %.0f Postgres rows/s, %.0f Redis entries/s, %d-byte payloads", m.postgresRowsPerSecond, m.redisEntriesPerSecond, m.payloadBytes)

	db, err := sql.Open("postgres", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var table sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT to_regclass($1)::text", b.table).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table.Valid {
		t.Errorf("scratch table %s still exists", b.table)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if n, err := rdb.Exists(ctx, b.stream).Result(); err != nil || n != 0 {
		t.Errorf("scratch stream %s: exists %d (%v), want gone", b.stream, n, err)
	}
}
