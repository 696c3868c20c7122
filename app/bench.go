package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the postgres driver, for the baseline
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
	"golang.org/x/time/rate"
)

// Defaults and fixed parameters of "eventflow bench".
const (
	// defaultBaselineDuration is how long each baseline measurement runs.
	defaultBaselineDuration = 5 * time.Second
	// baselineRowsPerRoundTrip is the rows of one INSERT and the entries of
	// one XADD pipeline in the baseline.
	baselineRowsPerRoundTrip = 100
	// baselinePayloadBytes is the least size of a baseline row's jsonb,
	// about what raw_events stores per event.
	baselinePayloadBytes = 400
	// benchRequestTimeout bounds one request of the load.
	benchRequestTimeout = 10 * time.Second
	// drainPollInterval is the pause between scrapes of /metrics while
	// processing catches up.
	drainPollInterval = 100 * time.Millisecond
	// quietWithoutDepth is how long events_processed_total must stand still
	// to count as caught up when eventflow does not report queue_depth.
	quietWithoutDepth = time.Second
)

// benchOptions are the flags of "eventflow bench".
type benchOptions struct {
	URL         string        // base URL of the eventflow API
	MetricsURLs []string      // the Prometheus endpoint of every eventflow process
	APIKey      string        // sent as Authorization: Bearer; empty sends none
	Connections int           // requests in flight at once
	Duration    time.Duration // length of the load
	Batch       int           // events per request; above 1 uses POST /v1/events/batch
	Rate        float64       // requests per second over all connections; 0: as fast as answered
	Drain       time.Duration // longest wait after the load for processing to catch up
	Baseline    bool          // also measure raw Postgres and Redis
	DatabaseURL string        // Postgres of the baseline
	RedisURL    string        // Redis of the baseline
	Output      string        // "table" or "json"

	// baselineDuration is how long each baseline measurement runs:
	// defaultBaselineDuration, shorter in tests.
	baselineDuration time.Duration
}

func (o benchOptions) validate() error {
	isHTTP := func(s string) bool {
		u, err := url.Parse(s)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	}
	switch {
	case !isHTTP(o.URL):
		return fmt.Errorf("--url %q: want an http(s) URL such as http://localhost:8080", o.URL)
	case len(o.MetricsURLs) == 0:
		return errors.New("--metrics-url: want the /metrics URL of each eventflow process, such as http://localhost:9091/metrics")
	case o.Connections < 1:
		return fmt.Errorf("--connections %d: want at least 1", o.Connections)
	case o.Duration <= 0:
		return fmt.Errorf("--duration %v: want a positive duration", o.Duration)
	case o.Batch < 1:
		return fmt.Errorf("--batch %d: want at least 1 event per request", o.Batch)
	case o.Rate < 0:
		return fmt.Errorf("--rate %v: want requests per second ≥ 0 (0: as fast as answered)", o.Rate)
	case o.Drain < 0:
		return fmt.Errorf("--drain %v: want a duration ≥ 0", o.Drain)
	case o.Output != "table" && o.Output != "json":
		return fmt.Errorf("--output %q: want table or json", o.Output)
	case o.Baseline && o.DatabaseURL == "":
		return errors.New("--database-url is empty: give the Postgres of the baseline, or --baseline=false")
	}
	for _, u := range o.MetricsURLs {
		if !isHTTP(u) {
			return fmt.Errorf("--metrics-url %q: want an http(s) URL such as http://localhost:9091/metrics", u)
		}
	}
	if o.Baseline {
		if _, err := redis.ParseURL(o.RedisURL); err != nil {
			return fmt.Errorf("--redis-url %q: %w (or --baseline=false)", o.RedisURL, err)
		}
	}
	return nil
}

// newBenchCommand returns "eventflow bench", which load-tests a running
// eventflow, compares it with a raw baseline of the same Postgres and
// Redis, and prints the report to stdout; the progress goes to stderr.
func newBenchCommand(stdout, stderr io.Writer) *cobra.Command {
	o := benchOptions{baselineDuration: defaultBaselineDuration}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a running eventflow and report throughput and latency percentiles",
		Long: `Drive a running eventflow with --connections concurrent clients, each posting
valid sample events (one per request, or --batch per request to
/v1/events/batch) as fast as it is answered, for --duration.

It reports the events accepted per second, the answers that were not 2xx,
and the p50/p95/p99 latency of the 202s; then, from eventflow's /metrics, the
events processed per second end to end (from the start of the load to the
moment processing caught up, waiting at most --drain), the backlog
(queue_depth) at the end of the load, and the p50/p95/p99 of received →
processed (event_end_to_end_seconds, interpolated within buckets like
histogram_quantile). When eventflow runs as separate api and worker
processes, give the /metrics of each with --metrics-url: their counts are
summed. The figures assume the load is the only traffic.

It also reports where the CPU went during the load, per accepted event:
eventflow's (process_cpu_seconds_total), the load generator's (this
process), Redis's (INFO cpu on --redis-url) and the rest of this machine's
(from /proc/stat: Postgres, when it runs here, and anything else), with
how busy the machine was. When everything shares one machine, the sum is
what caps the throughput.

After that it measures a raw baseline on the Postgres and Redis given by
--database-url and --redis-url (multi-row INSERTs into a scratch table,
pipelined XADDs to a scratch stream, both removed afterwards) and prints
eventflow's rates as a ratio of it, so that runs compare across machines.
--baseline=false skips it. Point it at the Postgres and Redis eventflow
uses: the baseline is only meaningful on the same services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			r, err := bench(cmd.Context(), o, stderr)
			if r.Requests > 0 {
				// Even when the baseline failed, the measurement of
				// eventflow is worth printing.
				err = errors.Join(err, r.write(stdout, o.Output))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "http://localhost:8080", "base URL of the eventflow API")
	f.StringSliceVar(&o.MetricsURLs, "metrics-url", []string{"http://localhost:9091/metrics"},
		"/metrics of eventflow; repeat it (or separate with commas) for every api and worker process")
	f.StringVar(&o.APIKey, "api-key", "", "API key, sent as Authorization: Bearer <key>")
	f.IntVar(&o.Connections, "connections", 64, "concurrent clients, each with one request in flight")
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the load")
	f.IntVar(&o.Batch, "batch", 1, "events per request; 1 posts to /v1/events, more to /v1/events/batch")
	f.Float64Var(&o.Rate, "rate", 0, "requests per second over all connections (0: each connection sends as fast as it is answered); with a long --duration, for a steady load such as the memory check")
	f.DurationVar(&o.Drain, "drain", 60*time.Second, "longest wait after the load for processing to catch up")
	f.BoolVar(&o.Baseline, "baseline", true, "also measure raw Postgres inserts and Redis XADDs and print ratios")
	f.StringVar(&o.DatabaseURL, "database-url", "postgres://postgres@localhost:5432/eventflow?sslmode=disable", "Postgres of the baseline (a scratch table is created and dropped)")
	f.StringVar(&o.RedisURL, "redis-url", "redis://localhost:6379/0", "Redis of the baseline (a scratch stream is created and deleted)")
	f.StringVar(&o.Output, "output", "table", "report format: table or json")
	return cmd
}

// bench runs the load, waits for processing to catch up, then measures the
// baseline. It returns what it measured so far along with an error.
func bench(ctx context.Context, o benchOptions, progress io.Writer) (benchReport, error) {
	r := benchReport{URL: o.URL, Connections: o.Connections, Batch: o.Batch, DurationSeconds: o.Duration.Seconds()}
	var base *baseline
	if o.Baseline {
		// Connect now, so that an unreachable service fails the run before
		// the load rather than after it.
		var err error
		if base, err = openBaseline(ctx, o.DatabaseURL, o.RedisURL, baselineClients(o.Connections)); err != nil {
			return r, err
		}
		defer base.Close()
	}
	scraper := newMetricsScraper(o.MetricsURLs...)
	before, err := scraper.scrape(ctx)
	if err != nil {
		return r, err
	}

	rdb, redisLocal := cpuRedisClient(o.RedisURL)
	if rdb != nil {
		defer rdb.Close()
	}
	cpuBefore := readCPU(ctx, before.cpu, rdb)

	memCtx, stopMem := context.WithCancel(ctx)
	memory := make(chan []memorySample, 1)
	go func() { memory <- sampleMemory(memCtx, scraper, memorySampleInterval(o.Duration)) }()
	load := runLoad(ctx, o, progress)
	stopMem()
	if err := ctx.Err(); err != nil {
		return r, err
	}
	atEnd, err := scraper.scrape(ctx)
	if err != nil {
		return r, err
	}
	r.addLoad(load)
	r.addMemory(<-memory)
	r.addCPU(cpuBefore, readCPU(ctx, atEnd.cpu, rdb), load, redisLocal)

	fmt.Fprintln(progress, "waiting for processing to catch up…")
	d, err := waitForProcessing(ctx, scraper, load.end.Add(o.Drain))
	if err != nil {
		return r, err
	}
	r.addProcessing(before, d, load)

	if base != nil {
		fmt.Fprintf(progress, "measuring the baseline: %d clients, %v each on Postgres and Redis…\n", base.clients, o.baselineDuration)
		m, err := base.measure(ctx, o.baselineDuration)
		if err != nil {
			return r, err
		}
		r.Baseline = m.report(r.AcceptedPerSecond, r.ProcessedPerSecond)
	}
	return r, nil
}

// baselineClients is the baseline's concurrency: a quarter of the load's,
// at least 4.
func baselineClients(connections int) int { return max(connections/4, 4) }

// The load.

// loadTally is what one client (or, merged, all of them) sent and got back.
type loadTally struct {
	requests  int
	events    int
	byStatus  map[string]int  // "202", "207", "503", … or "unanswered"
	byResult  map[string]int  // "accepted", "duplicate", "rejected", …
	latencies []time.Duration // of the requests answered 202; sorted once merged
}

func newLoadTally() loadTally {
	return loadTally{byStatus: map[string]int{}, byResult: map[string]int{}}
}

func (t *loadTally) record(status string, results []string, latency time.Duration) {
	t.requests++
	t.events += len(results)
	t.byStatus[status]++
	for _, r := range results {
		t.byResult[r]++
	}
	if status == "202" {
		t.latencies = append(t.latencies, latency)
	}
}

func (t *loadTally) merge(o loadTally) {
	t.requests += o.requests
	t.events += o.events
	for k, v := range o.byStatus {
		t.byStatus[k] += v
	}
	for k, v := range o.byResult {
		t.byResult[k] += v
	}
	t.latencies = append(t.latencies, o.latencies...)
}

// loadResult is the outcome of runLoad.
type loadResult struct {
	loadTally
	start, end time.Time // end: when the last request was answered
}

// runLoad sends valid sample events from o.Connections clients, each with
// one request in flight, until o.Duration has passed, and shows a
// time-based progress bar on progress. Requests in flight at the end are
// waited for.
func runLoad(ctx context.Context, o benchOptions, progress io.Writer) loadResult {
	httpTransport := http.DefaultTransport.(*http.Transport).Clone()
	httpTransport.MaxIdleConnsPerHost = o.Connections
	p := &producer{
		opts:   produceOptions{URL: o.URL, APIKey: o.APIKey, Batch: o.Batch},
		client: &http.Client{Timeout: benchRequestTimeout, Transport: httpTransport},
	}
	defer p.client.CloseIdleConnections()

	// A limiter shared by the connections spaces their requests out to
	// --rate; without one each sends as fast as it is answered.
	limiter := rate.NewLimiter(rate.Inf, 0)
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	seed := rand.Uint64()
	tallies := make([]loadTally, o.Connections)
	var answered atomic.Int64
	start := time.Now()
	end := start.Add(o.Duration)
	loadCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	stopBar := showLoadProgress(progress, start, o.Duration, &answered)
	var clients sync.WaitGroup
	for i := range tallies {
		tallies[i] = newLoadTally()
		gen := newSampler(seed+uint64(i), 0, 0)
		clients.Go(func() {
			events := make([]sampleEvent, o.Batch)
			for time.Now().Before(end) && ctx.Err() == nil {
				if limiter.Wait(loadCtx) != nil {
					return // the load's end came first
				}
				for j := range events {
					events[j] = gen.fresh(false)
				}
				body := p.body(events)
				sent := time.Now()
				status, results := p.post(ctx, body, len(events))
				tallies[i].record(status, results, time.Since(sent))
				answered.Add(1)
			}
		})
	}
	clients.Wait()
	r := loadResult{loadTally: newLoadTally(), start: start, end: time.Now()}
	stopBar()
	for _, t := range tallies {
		r.merge(t)
	}
	slices.Sort(r.latencies)
	return r
}

// showLoadProgress draws a progress bar of the load's time on w until the
// returned stop is called; stop returns once drawing has stopped.
//
// When w is not a terminal (a log, a pipe, CI), it writes a plain line
// every 5 seconds instead of redrawing a bar.
func showLoadProgress(w io.Writer, start time.Time, d time.Duration, answered *atomic.Int64) (stop func()) {
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return showPlainProgress(w, start, d, answered)
	}
	bar := progressbar.NewOptions64(d.Milliseconds(),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("load"),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				bar.Describe(fmt.Sprintf("load: %d requests", answered.Load()))
				_ = bar.Finish()
				return
			case <-tick.C:
				bar.Describe(fmt.Sprintf("load: %d requests", answered.Load()))
				_ = bar.Set64(min(time.Since(start).Milliseconds(), d.Milliseconds()))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func showPlainProgress(w io.Writer, start time.Time, d time.Duration, answered *atomic.Int64) (stop func()) {
	fmt.Fprintf(w, "load: %s…\n", d)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "load: done, %d requests answered\n", answered.Load())
				return
			case <-tick.C:
				elapsed := time.Since(start).Truncate(time.Second)
				fmt.Fprintf(w, "load: %s of %s, %d requests answered\n", elapsed, d, answered.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// percentile returns the pct-th percentile (0 < pct ≤ 100) of sorted by
// the nearest-rank method: the least value that pct % of the values do not
// exceed. It is 0 for no values.
func percentile(sorted []time.Duration, pct int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (pct*len(sorted) + 99) / 100 // ⌈pct/100 × n⌉, in integers
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Processing, from /metrics.

// metricsSample is what one scrape of eventflow's /metrics says, each
// metric summed over its labels.
type metricsSample struct {
	at        time.Time
	processed float64  // events_processed_total
	failed    float64  // events_failed_total
	depth     float64  // queue_depth; -1 when eventflow does not report it
	cpu       float64  // process_cpu_seconds_total; NaN when a process does not report it
	endToEnd  []bucket // event_end_to_end_seconds, cumulative, by upper bound, with +Inf
}

// bucket is one cumulative bucket of a histogram.
type bucket struct {
	upperBound float64
	count      float64
}

// metricsScraper reads the /metrics of every eventflow process of the
// deployment: an API-only process counts no processed events, and each
// worker counts only its own.
type metricsScraper struct {
	urls   []string
	client *http.Client
}

func newMetricsScraper(metricsURLs ...string) *metricsScraper {
	return &metricsScraper{urls: metricsURLs, client: &http.Client{Timeout: 5 * time.Second}}
}

// scrape reads every URL and sums what they say; queue_depth, which every
// process reads from the same transport, is the largest reported.
func (s *metricsScraper) scrape(ctx context.Context) (metricsSample, error) {
	m := metricsSample{depth: -1}
	var endToEnd []*dto.MetricFamily
	for _, u := range s.urls {
		families, answered, err := s.fetch(ctx, u)
		if err != nil {
			return metricsSample{}, fmt.Errorf("scrape --metrics-url %s: %w", u, err)
		}
		m.at = answered
		m.processed += sumCounter(families["events_processed_total"])
		m.failed += sumCounter(families["events_failed_total"])
		if c := families["process_cpu_seconds_total"]; c != nil && len(c.GetMetric()) > 0 {
			m.cpu += c.GetMetric()[0].GetCounter().GetValue()
		} else {
			m.cpu = math.NaN()
		}
		endToEnd = append(endToEnd, families["event_end_to_end_seconds"])
		if g := families["queue_depth"]; g != nil && len(g.GetMetric()) > 0 {
			m.depth = max(m.depth, g.GetMetric()[0].GetGauge().GetValue())
		}
	}
	m.endToEnd = sumHistogram(endToEnd...)
	return m, nil
}

// memorySample is the resident memory of eventflow's processes, summed, at
// one moment of the load.
type memorySample struct {
	at  time.Time
	rss float64 // process_resident_memory_bytes
}

// memorySampleInterval spreads about 60 samples over the load, at least a
// second apart.
func memorySampleInterval(d time.Duration) time.Duration {
	return max(d/60, time.Second)
}

// sampleMemory scrapes the processes' resident memory every interval until
// ctx ends. A scrape that fails is skipped.
func sampleMemory(ctx context.Context, s *metricsScraper, interval time.Duration) []memorySample {
	var samples []memorySample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var rss float64
		ok := true
		for _, u := range s.urls {
			families, _, err := s.fetch(ctx, u)
			g := families["process_resident_memory_bytes"]
			if err != nil || g == nil || len(g.GetMetric()) == 0 {
				ok = false
				break
			}
			rss += g.GetMetric()[0].GetGauge().GetValue()
		}
		if ok {
			samples = append(samples, memorySample{at: time.Now(), rss: rss})
		}
		select {
		case <-ctx.Done():
			return samples
		case <-tick.C:
		}
	}
}

// fetch reads and parses one Prometheus text exposition. answered is when
// it was read, before parsing, which takes a while and is not eventflow's
// time.
func (s *metricsScraper) fetch(ctx context.Context, metricsURL string) (_ map[string]*dto.MetricFamily, answered time.Time, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, time.Time{}, errors.New(res.Status)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, time.Time{}, err
	}
	answered = time.Now()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	return families, answered, err
}

// sumCounter is a counter summed over its labels; 0 when absent.
func sumCounter(mf *dto.MetricFamily) float64 {
	var sum float64
	for _, m := range mf.GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// sumHistogram is a histogram's buckets summed over its labels (and over
// families, one per process), ordered by upper bound and ending with +Inf;
// nil when absent.
func sumHistogram(families ...*dto.MetricFamily) []bucket {
	byBound := map[float64]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
			byBound[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	if len(byBound) == 0 {
		return nil
	}
	buckets := make([]bucket, 0, len(byBound))
	for _, ub := range slices.Sorted(maps.Keys(byBound)) {
		buckets = append(buckets, bucket{upperBound: ub, count: byBound[ub]})
	}
	return buckets
}

// histogramDelta is after minus before, bucket by bucket: the observations
// made between two scrapes.
func histogramDelta(before, after []bucket) []bucket {
	earlier := map[float64]float64{}
	for _, b := range before {
		earlier[b.upperBound] = b.count
	}
	delta := make([]bucket, len(after))
	for i, b := range after {
		delta[i] = bucket{upperBound: b.upperBound, count: b.count - earlier[b.upperBound]}
	}
	return delta
}

// bucketQuantile estimates the q-quantile (0 ≤ q ≤ 1) of the observations
// in cumulative buckets ordered by upper bound and ending with +Inf, as
// Prometheus's histogram_quantile does: linear interpolation within the
// bucket the rank falls in, the lowest bucket starting at 0, and the
// highest finite bound when the rank falls in +Inf. It is NaN when there
// are no observations.
func bucketQuantile(q float64, buckets []bucket) float64 {
	if len(buckets) < 2 || !math.IsInf(buckets[len(buckets)-1].upperBound, 1) {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	b, _ := slices.BinarySearchFunc(buckets[:len(buckets)-1], rank, func(b bucket, rank float64) int {
		if b.count >= rank {
			return 1 // at or past the target: the search finds the first such bucket
		}
		return -1
	})
	if b == len(buckets)-1 {
		return buckets[b-1].upperBound
	}
	if b == 0 && buckets[0].upperBound <= 0 {
		return buckets[0].upperBound
	}
	start, end, count := 0.0, buckets[b].upperBound, buckets[b].count
	if b > 0 {
		start = buckets[b-1].upperBound
		count -= buckets[b-1].count
		rank -= buckets[b-1].count
	}
	if count <= 0 {
		return end
	}
	return start + (end-start)*rank/count
}

// drained is what waitForProcessing saw.
type drained struct {
	backlog  float64       // queue_depth right after the load; -1 when unknown
	at       metricsSample // when processing caught up, or the last scrape when it did not
	caughtUp bool          // false when the deadline passed first
}

// waitForProcessing scrapes /metrics until processing has caught up —
// queue_depth is 0 and events_processed_total stopped growing — or until
// deadline. The moment it caught up is the first scrape that showed the
// final count.
func waitForProcessing(ctx context.Context, s *metricsScraper, deadline time.Time) (drained, error) {
	last, err := s.scrape(ctx)
	if err != nil {
		return drained{}, err
	}
	backlog := last.depth
	since := last // the first scrape that showed last.processed
	for time.Now().Before(deadline) {
		select {
		case <-time.After(min(drainPollInterval, time.Until(deadline))):
		case <-ctx.Done():
			return drained{}, ctx.Err()
		}
		cur, err := s.scrape(ctx)
		if err != nil {
			return drained{}, err
		}
		if cur.processed != last.processed {
			since = cur
		}
		quiet := cur.depth == 0 && cur.processed == last.processed
		if cur.depth < 0 { // eventflow does not report queue_depth
			quiet = cur.processed == since.processed && cur.at.Sub(since.at) >= quietWithoutDepth
		}
		if quiet {
			return drained{backlog: backlog, at: since, caughtUp: true}, nil
		}
		last = cur
	}
	return drained{backlog: backlog, at: last}, nil
}

// The baseline.

// baseline measures the Postgres and Redis eventflow runs on, the plain
// fast way: multi-row INSERTs in autocommit and pipelined XADDs, each from
// clients goroutines. Its scratch table and stream have names of their own
// and are removed after the measurement.
type baseline struct {
	db      *sql.DB
	redis   *redis.Client
	clients int
	table   string // scratch table
	stream  string // scratch stream
}

func openBaseline(ctx context.Context, databaseURL, redisURL string, clients int) (*baseline, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := sql.Open("postgres", databaseURL)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		return nil, fmt.Errorf("baseline: connect to Postgres (--database-url; --baseline=false skips the baseline): %w", err)
	}
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("baseline: --redis-url: %w", err)
	}
	opts.PoolSize = clients
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("baseline: connect to Redis (--redis-url; --baseline=false skips the baseline): %w", err)
	}
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	return &baseline{db: db, redis: rdb, clients: clients,
		table: "eventflow_bench_" + suffix, stream: "eventflow_bench_" + suffix}, nil
}

// Close closes the clients.
func (b *baseline) Close() error {
	return errors.Join(b.db.Close(), b.redis.Close())
}

// baselineMeasurement is what measure found.
type baselineMeasurement struct {
	clients               int
	seconds               float64 // each measurement
	payloadBytes          int     // mean size of a row's jsonb or an entry's payload
	postgresRowsPerSecond float64
	redisEntriesPerSecond float64
}

// measure runs the Postgres measurement and then the Redis one, each for d.
func (b *baseline) measure(ctx context.Context, d time.Duration) (baselineMeasurement, error) {
	payloads := baselinePayloads()
	m := baselineMeasurement{clients: b.clients, seconds: d.Seconds()}
	for _, p := range payloads {
		m.payloadBytes += len(p)
	}
	m.payloadBytes /= len(payloads)
	var err error
	if m.postgresRowsPerSecond, err = b.postgresRate(ctx, d, payloads); err != nil {
		return m, fmt.Errorf("baseline: Postgres: %w", err)
	}
	if m.redisEntriesPerSecond, err = b.redisRate(ctx, d, payloads); err != nil {
		return m, fmt.Errorf("baseline: Redis: %w", err)
	}
	return m, nil
}

// baselinePayloads are baselineRowsPerRoundTrip sample events, each padded
// to at least baselinePayloadBytes.
func baselinePayloads() []string {
	gen := newSampler(1, 0, 0)
	payloads := make([]string, baselineRowsPerRoundTrip)
	for i := range payloads {
		body := string(gen.fresh(false).Body)
		if pad := baselinePayloadBytes - len(body) - len(`,"pad":""`); pad > 0 {
			body = strings.TrimSuffix(body, "}") + `,"pad":"` + strings.Repeat("x", pad) + `"}`
		}
		payloads[i] = body
	}
	return payloads
}

// postgresRate inserts rows of payloads into the scratch table from
// b.clients connections for d, baselineRowsPerRoundTrip rows per INSERT in
// autocommit, and returns the rows per second. It drops the table.
func (b *baseline) postgresRate(ctx context.Context, d time.Duration, payloads []string) (float64, error) {
	if _, err := b.db.ExecContext(ctx, `CREATE TABLE `+b.table+` (
		event_id uuid PRIMARY KEY, payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("create scratch table %s: %w", b.table, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = b.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+b.table)
	}()
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + b.table + ` (event_id, payload) VALUES `)
	for i := range payloads {
		if i > 0 {
			q.WriteString(",")
		}
		fmt.Fprintf(&q, "($%d, $%d)", 2*i+1, 2*i+2)
	}
	insert, err := b.db.PrepareContext(ctx, q.String())
	if err != nil {
		return 0, fmt.Errorf("prepare insert: %w", err)
	}
	defer insert.Close()
	return b.rate(ctx, d, func(ctx context.Context) error {
		args := make([]any, 0, 2*len(payloads))
		for _, p := range payloads {
			args = append(args, uuid.NewString(), p)
		}
		_, err := insert.ExecContext(ctx, args...)
		return err
	})
}

// redisRate appends payloads to the scratch stream from b.clients
// connections for d, baselineRowsPerRoundTrip XADDs per pipeline, and
// returns the entries per second. It deletes the stream.
func (b *baseline) redisRate(ctx context.Context, d time.Duration, payloads []string) (float64, error) {
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.redis.Del(ctx, b.stream).Err()
	}()
	return b.rate(ctx, d, func(ctx context.Context) error {
		pipe := b.redis.Pipeline()
		for _, p := range payloads {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, Values: []any{"payload", p}})
		}
		_, err := pipe.Exec(ctx)
		return err
	})
}

// rate runs roundTrip from b.clients goroutines until d has passed and
// returns baselineRowsPerRoundTrip × round trips per second.
func (b *baseline) rate(ctx context.Context, d time.Duration, roundTrip func(context.Context) error) (float64, error) {
	var trips atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	end := start.Add(d)
	for range b.clients {
		g.Go(func() error {
			for time.Now().Before(end) {
				if err := roundTrip(gctx); err != nil {
					return err
				}
				trips.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(trips.Load()*baselineRowsPerRoundTrip) / time.Since(start).Seconds(), nil
}

// The report.

// benchReport is the outcome of a bench run, as printed; the JSON output
// has the same fields. Durations are in milliseconds unless named seconds;
// a percentile of no observations is null.
type benchReport struct {
	URL             string  `json:"url"`
	Connections     int     `json:"connections"`
	Batch           int     `json:"batch"`
	DurationSeconds float64 `json:"duration_seconds"`

	LoadSeconds       float64        `json:"load_seconds"` // from the start to the last answer
	Requests          int            `json:"requests"`
	EventsSent        int            `json:"events_sent"`
	Accepted          int            `json:"accepted"`
	Duplicates        int            `json:"duplicates"`
	Rejected          int            `json:"rejected"` // sent but neither accepted nor duplicate
	AcceptedPerSecond float64        `json:"accepted_per_second"`
	StatusCounts      map[string]int `json:"status_counts"` // every answer by HTTP status, or "unanswered"
	Non2xx            map[string]int `json:"non_2xx"`       // the answers not 2xx, by status
	Non2xxTotal       int            `json:"non_2xx_total"`
	Latency202        percentiles    `json:"latency_202_ms"`

	Processed           int64       `json:"processed"` // events_processed_total's increase
	Failed              int64       `json:"failed"`    // events_failed_total's increase (dead letters)
	ProcessedPerSecond  float64     `json:"processed_per_second"`
	BacklogAtEndOfLoad  *int64      `json:"backlog_at_end_of_load"` // queue_depth; null when not reported
	CaughtUp            bool        `json:"caught_up"`              // false when --drain passed first
	DrainSeconds        float64     `json:"drain_seconds"`          // from the end of the load to catching up
	ReceivedToProcessed percentiles `json:"received_to_processed_ms"`

	// Memory is the processes' resident memory during the load; null when
	// eventflow does not report it.
	Memory *memoryReport `json:"memory,omitempty"`
	// CPU is where the CPU went during the load.
	CPU *cpuReport `json:"cpu,omitempty"`

	Baseline *baselineReport `json:"baseline,omitempty"`
}

// memoryReport sums up the resident memory samples of the load. The first
// fifth of the load is warm-up (pools fill, the heap grows to its GC
// target) and left out of the spread: SpreadPercent is half the range of
// the rest as a percentage of its mean, so "flat within ±10 %" means a
// spread of at most 10.
type memoryReport struct {
	Samples       int     `json:"samples"`
	FirstMiB      float64 `json:"first_mib"`
	MinMiB        float64 `json:"min_mib"` // after warm-up, as are max and mean
	MaxMiB        float64 `json:"max_mib"`
	MeanMiB       float64 `json:"mean_mib"`
	LastMiB       float64 `json:"last_mib"`
	SpreadPercent float64 `json:"spread_percent"`
}

func (r *benchReport) addMemory(samples []memorySample) {
	if len(samples) < 2 {
		return
	}
	const mib = 1 << 20
	steady := samples[len(samples)/5:]
	lo, hi, sum := steady[0].rss, steady[0].rss, 0.0
	for _, m := range steady {
		lo, hi, sum = min(lo, m.rss), max(hi, m.rss), sum+m.rss
	}
	mean := sum / float64(len(steady))
	r.Memory = &memoryReport{
		Samples: len(samples), FirstMiB: samples[0].rss / mib, MinMiB: lo / mib, MaxMiB: hi / mib,
		MeanMiB: mean / mib, LastMiB: samples[len(samples)-1].rss / mib, SpreadPercent: (hi - lo) / 2 / mean * 100,
	}
}

// percentiles are p50, p95 and p99 in milliseconds.
type percentiles struct {
	P50 millis `json:"p50"`
	P95 millis `json:"p95"`
	P99 millis `json:"p99"`
}

// millis is a duration in milliseconds; NaN when unknown, which JSON shows
// as null.
type millis float64

func (m millis) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(m)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(float64(m)*1000)/1000, 'f', -1, 64), nil
}

func (m *millis) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = millis(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(m))
}

func (m millis) String() string {
	if math.IsNaN(float64(m)) {
		return "n/a"
	}
	return strconv.FormatFloat(float64(m), 'f', 1, 64) + "ms"
}

// baselineReport is the baseline and eventflow's rates as ratios of it.
type baselineReport struct {
	Clients               int     `json:"clients"`
	SecondsEach           float64 `json:"seconds_each"`
	RowsPerRoundTrip      int     `json:"rows_per_round_trip"`
	PayloadBytes          int     `json:"payload_bytes"`
	PostgresRowsPerSecond float64 `json:"postgres_rows_per_second"`
	RedisEntriesPerSecond float64 `json:"redis_entries_per_second"`
	Accepted              ratios  `json:"accepted_ratio"`
	Processed             ratios  `json:"processed_ratio"`
}

// ratios are a rate divided by the baseline: by the slower of Postgres and
// Redis, and by each.
type ratios struct {
	OfMin      float64 `json:"of_min"`
	OfPostgres float64 `json:"of_postgres"`
	OfRedis    float64 `json:"of_redis"`
}

func (m baselineMeasurement) report(accepted, processed float64) *baselineReport {
	ratiosOf := func(rate float64) ratios {
		return ratios{
			OfMin:      rate / min(m.postgresRowsPerSecond, m.redisEntriesPerSecond),
			OfPostgres: rate / m.postgresRowsPerSecond,
			OfRedis:    rate / m.redisEntriesPerSecond,
		}
	}
	return &baselineReport{
		Clients: m.clients, SecondsEach: m.seconds, RowsPerRoundTrip: baselineRowsPerRoundTrip, PayloadBytes: m.payloadBytes,
		PostgresRowsPerSecond: m.postgresRowsPerSecond, RedisEntriesPerSecond: m.redisEntriesPerSecond,
		Accepted: ratiosOf(accepted), Processed: ratiosOf(processed),
	}
}

func (r *benchReport) addLoad(l loadResult) {
	r.LoadSeconds = l.end.Sub(l.start).Seconds()
	r.Requests, r.EventsSent = l.requests, l.events
	r.Accepted, r.Duplicates = l.byResult["accepted"], l.byResult["duplicate"]
	r.Rejected = l.events - r.Accepted - r.Duplicates
	r.AcceptedPerSecond = float64(r.Accepted) / r.LoadSeconds
	r.StatusCounts, r.Non2xx = l.byStatus, map[string]int{}
	for status, n := range l.byStatus {
		if !strings.HasPrefix(status, "2") {
			r.Non2xx[status] = n
			r.Non2xxTotal += n
		}
	}
	ms := func(pct int) millis {
		if len(l.latencies) == 0 {
			return millis(math.NaN())
		}
		return millis(float64(percentile(l.latencies, pct)) / float64(time.Millisecond))
	}
	r.Latency202 = percentiles{P50: ms(50), P95: ms(95), P99: ms(99)}
}

func (r *benchReport) addProcessing(before metricsSample, d drained, l loadResult) {
	r.Processed = int64(math.Round(d.at.processed - before.processed))
	r.Failed = int64(math.Round(d.at.failed - before.failed))
	r.ProcessedPerSecond = float64(r.Processed) / d.at.at.Sub(l.start).Seconds()
	if d.backlog >= 0 {
		backlog := int64(d.backlog)
		r.BacklogAtEndOfLoad = &backlog
	}
	r.CaughtUp = d.caughtUp
	r.DrainSeconds = max(d.at.at.Sub(l.end), 0).Seconds()
	delta := histogramDelta(before.endToEnd, d.at.endToEnd)
	ms := func(q float64) millis { return millis(bucketQuantile(q, delta) * 1000) }
	r.ReceivedToProcessed = percentiles{P50: ms(0.50), P95: ms(0.95), P99: ms(0.99)}
}

// write prints the report as a table or as JSON.
func (r benchReport) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	row("eventflow bench\t%s, %d connections, batch %d, %v", r.URL, r.Connections, r.Batch, time.Duration(r.DurationSeconds*float64(time.Second)))
	row("load\t")
	row("  requests\t%d in %.3fs", r.Requests, r.LoadSeconds)
	row("  accepted\t%d events\t%.1f/s", r.Accepted, r.AcceptedPerSecond)
	if r.Duplicates > 0 || r.Rejected > 0 {
		row("  not accepted\t%d duplicates, %d rejected", r.Duplicates, r.Rejected)
	}
	non2xx := "0"
	if r.Non2xxTotal > 0 {
		var parts []string
		for _, status := range slices.Sorted(maps.Keys(r.Non2xx)) {
			parts = append(parts, fmt.Sprintf("%s=%d", status, r.Non2xx[status]))
		}
		non2xx = fmt.Sprintf("%d (%s)", r.Non2xxTotal, strings.Join(parts, " "))
	}
	row("  non-2xx\t%s", non2xx)
	row("  202 latency\tp50 %v\tp95 %v\tp99 %v", r.Latency202.P50, r.Latency202.P95, r.Latency202.P99)
	row("processing\t(from /metrics)")
	caught := fmt.Sprintf("caught up %.2fs after the load", r.DrainSeconds)
	if !r.CaughtUp {
		caught = fmt.Sprintf("NOT caught up %.2fs after the load (--drain)", r.DrainSeconds)
	}
	row("  processed\t%d events\t%.1f/s\t%s", r.Processed, r.ProcessedPerSecond, caught)
	if r.Failed > 0 {
		row("  failed\t%d events (dead letters)", r.Failed)
	}
	backlog := "unknown (no queue_depth)"
	if r.BacklogAtEndOfLoad != nil {
		backlog = strconv.FormatInt(*r.BacklogAtEndOfLoad, 10)
	}
	row("  backlog at end of load\t%s", backlog)
	row("  received→processed\tp50 %v\tp95 %v\tp99 %v", r.ReceivedToProcessed.P50, r.ReceivedToProcessed.P95, r.ReceivedToProcessed.P99)
	if m := r.Memory; m != nil {
		row("memory\t(resident, all processes, %d samples)", m.Samples)
		row("  first / last\t%.1f MiB\t%.1f MiB", m.FirstMiB, m.LastMiB)
		row("  after warm-up\tmin %.1f MiB\tmax %.1f MiB\tspread ±%.1f %%", m.MinMiB, m.MaxMiB, m.SpreadPercent)
	}
	r.CPU.write(row, r.AcceptedPerSecond)
	if b := r.Baseline; b != nil {
		row("baseline\t%d clients, %gs each, %d rows per round trip, %d-byte jsonb", b.Clients, b.SecondsEach, b.RowsPerRoundTrip, b.PayloadBytes)
		row("  postgres INSERT\t%.0f rows/s", b.PostgresRowsPerSecond)
		row("  redis XADD\t%.0f entries/s", b.RedisEntriesPerSecond)
		row("eventflow ÷ baseline\tof min\tof postgres\tof redis")
		row("  accepted/s\t%.4f\t%.4f\t%.4f", b.Accepted.OfMin, b.Accepted.OfPostgres, b.Accepted.OfRedis)
		row("  processed/s\t%.4f\t%.4f\t%.4f", b.Processed.OfMin, b.Processed.OfPostgres, b.Processed.OfRedis)
	}
	return tw.Flush()
}
