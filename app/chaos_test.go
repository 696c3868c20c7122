//go:build chaos

// The chaos suite (make test-chaos; RELIABILITY.md describes every
// scenario): eventflow runs as real processes, the test binary re-executed
// as the eventflow command (see TestMain), and is killed with SIGKILL,
// paused with SIGSTOP, stopped with SIGTERM, fed poison and malformed
// entries, and has its own Redis and Postgres servers crashed and restarted
// under it, while clients keep sending events and retry every event not
// answered 202 with the same event_id.
//
// Each scenario then counts the outcome the way Jepsen's queue checker does
// and prints one line, "chaos <scenario>: accepted=N lost=N duplicated=N
// recovered=N":
//
//   - accepted: events answered 202;
//   - lost: events answered 202 and never processed (for an event meant to
//     fail: never dead-lettered);
//   - duplicated: processed_events rows beyond the first for an event_id;
//   - recovered: events whose outcome the client could not know from some
//     try (a transport error, a timeout or a 5xx), which that try had stored
//     after all (the client's later 202 said "duplicate", or none came) and
//     which were processed anyway.
//
// A scenario fails when lost or duplicated is above 0, or when a metric
// counter differs from the table count it counts. Counters live in the
// process: those of a killed process are gone, so each scenario compares
// only the counters of processes alive through the part it compares, and
// says which.

package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// chaosConfig is testConfig with the suite's timings: a redelivery idle time
// of a few seconds, so that a dead or paused worker's messages are claimed
// by another within seconds (idle time plus the transport's 5s claim
// interval), and a retry budget (4 × 400ms + backoff) below half of it, as
// Config.Validate requires.
func chaosConfig(t *testing.T, transport string) Config {
	t.Helper()
	cfg := testConfig(t, transport)
	cfg.RedeliveryIdle = 4 * time.Second
	cfg.HandlerTimeout = 400 * time.Millisecond
	cfg.RetryMax = 3
	cfg.RetryInitialInterval, cfg.RetryMaxInterval = 5*time.Millisecond, 20*time.Millisecond
	cfg.IngestTimeout, cfg.RelayAfter, cfg.RelayInterval = time.Second, 2*time.Second, 200*time.Millisecond
	cfg.WorkerConcurrency = 4
	// Four processes share the machine's Postgres with other tests.
	cfg.DBMaxConns = 10
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// claimDelay is the longest a delivered, unacknowledged message waits before
// a live consumer claims it: the redelivery idle time plus the Redis
// transport's claim interval.
func claimDelay(cfg Config) time.Duration { return cfg.RedeliveryIdle + 5*time.Second }

// fleet is one scenario's eventflow processes: an API process on a fixed
// port, so that clients keep one address across restarts, and worker
// processes with stable consumer names, each restartable in place as a
// supervisor would.
type fleet struct {
	t       *testing.T
	cfg     Config
	env     []string // beyond envOf(cfg)
	apiCmd  string   // api, or serve
	apiPort int

	mu      sync.Mutex
	api     *process
	workers []*process
}

// newFleet starts an apiCmd process (api or serve) and n worker processes.
// env adds to the environment of every process.
func newFleet(t *testing.T, cfg Config, apiCmd string, n int, env ...string) *fleet {
	t.Helper()
	f := &fleet{t: t, cfg: cfg, apiCmd: apiCmd, apiPort: freePort(t), workers: make([]*process, n)}
	f.env = append([]string{
		// DEBUG logs name each event a worker wrote: evidence when a
		// counter and a table disagree (see checkWorkerMetrics).
		"EVENTFLOW_LOG_LEVEL=DEBUG",
		fmt.Sprintf("EVENTFLOW_WORKER_CONCURRENCY=%d", cfg.WorkerConcurrency),
		fmt.Sprintf("EVENTFLOW_DB_MAX_CONNS=%d", cfg.DBMaxConns),
		chaosTypesEnv + "=1",
	}, env...)
	f.startAPI()
	for i := range n {
		f.startWorker(i)
	}
	return f
}

// url is the API's base URL, the same across restarts.
func (f *fleet) url() string { return fmt.Sprintf("http://127.0.0.1:%d", f.apiPort) }

// startAPI starts the API process, or starts it again after it died.
func (f *fleet) startAPI() *process {
	f.t.Helper()
	c, err := f.tryStartAPI()
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// tryStartAPI is startAPI for goroutines other than the test's, where
// t.Fatal must not be called.
func (f *fleet) tryStartAPI() (*process, error) {
	c, err := startCommand(f.t, f.cfg, f.apiCmd, append(f.env,
		fmt.Sprintf("EVENTFLOW_HTTP_ADDR=127.0.0.1:%d", f.apiPort),
		"EVENTFLOW_CONSUMER_NAME="+f.cfg.ConsumerName+"-api")...)
	if err != nil {
		return nil, err
	}
	p := watch(c)
	f.mu.Lock()
	f.api = p
	f.mu.Unlock()
	return p, nil
}

// startWorker starts worker i, under its stable consumer name.
func (f *fleet) startWorker(i int) *process {
	f.t.Helper()
	c, err := f.tryStartWorker(i)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// tryStartWorker is startWorker for goroutines other than the test's. On
// error, the child is returned too if it was started (it exited at once).
func (f *fleet) tryStartWorker(i int) (*process, error) {
	c, err := startCommand(f.t, f.cfg, "worker", append(f.env,
		fmt.Sprintf("EVENTFLOW_CONSUMER_NAME=%s-w%d", f.cfg.ConsumerName, i))...)
	if err != nil {
		if c != nil {
			return &process{child: c}, err // exited, and waited for
		}
		return nil, err
	}
	p := watch(c)
	f.mu.Lock()
	f.workers[i] = p
	f.mu.Unlock()
	return p, nil
}

// worker returns worker i's current process.
func (f *fleet) worker(i int) *process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers[i]
}

// apiProcess returns the API's current process.
func (f *fleet) apiProcess() *process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.api
}

// all returns the current processes, the API's first.
func (f *fleet) all() []*process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*process{f.api}, f.workers...)
}

// workerProcesses returns the current worker processes.
func (f *fleet) workerProcesses() []*process {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*process(nil), f.workers...)
}

// process is a child process the suite watches for its exit.
type process struct {
	*child
	exited chan struct{} // closed once the process has exited
	err    error         // cmd.Wait's result, once exited is closed
}

// watch waits for c's exit in the background; nothing else may wait for it.
func watch(c *child) *process {
	p := &process{child: c, exited: make(chan struct{})}
	go func() {
		p.err = c.cmd.Wait()
		close(p.exited)
	}()
	return p
}

// done is closed once the process has exited; p.err is then set.
func (p *process) done() <-chan struct{} { return p.exited }

// kill9 kills c with SIGKILL and waits until it is gone.
func kill9(c *process) {
	_ = c.cmd.Process.Signal(syscall.SIGKILL) // fails only if it has exited already
	<-c.done()
}

// checkAlive fails the test for every process of the fleet that has
// exited: none of them should stop unless the test stops it.
func (f *fleet) checkAlive() {
	f.t.Helper()
	for _, c := range f.all() {
		select {
		case <-c.done():
			f.t.Errorf("eventflow %s exited on its own: %v\nstderr: %s\nlogs: %s", c.cmd.Args[1], c.err, c.stderr.String(), tail(c.logs.String(), 30))
		default:
		}
	}
}

// every runs fn every d until stop is called, which waits for the running
// fn and returns how many times fn ran.
func every(d time.Duration, fn func()) (stop func() int) {
	quit, finished := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				finished <- n
				return
			case <-tick.C:
				fn()
				n++
			}
		}
	}()
	return func() int {
		close(quit)
		return <-finished
	}
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// outcome is what the clients learnt of one event: the enqueue operation of
// Jepsen's history.
type outcome struct {
	id, body string
	// failing marks an event meant for failed_events (poison, a crash).
	failing bool
	acked   bool      // answered 202
	ackedAt time.Time // when
	status  string    // the 202's status: accepted or duplicate
	// unsure is set when a try ended without a definite answer: a
	// transport error, a timeout or a 5xx. (A 503 promises that nothing was
	// acknowledged, not that nothing was stored.)
	unsure bool
}

// loadSpec is what a load's clients send.
type loadSpec struct {
	// clients post concurrently, each one event at a time.
	clients int
	// total is the number of events to send; 0 sends until stop.
	total int
	// body returns the n-th event's JSON (n from 0) for event_id id, and
	// whether it is meant to fail. Default: a valid order.placed.
	body func(n int, id string) (json string, failing bool)
}

// load is clients posting events to one API address, each retrying its
// event with the same event_id until it is answered 202: after a transport
// error at once (100ms later), after a 503 or 429 when Retry-After says.
type load struct {
	t      *testing.T
	url    string
	spec   loadSpec
	client *http.Client

	mu        sync.Mutex
	events    []*outcome
	serverErr []time.Time // when each request answered 5xx was sent
	rejected  []string    // 4xx answers other than 429, which no valid event should get
	acks      int

	next     atomic.Int64 // events handed out
	quit     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// giveUp is how long a client retries one event before it records it as
// never answered.
const giveUp = 2 * time.Minute

func startLoad(t *testing.T, url string, spec loadSpec) *load {
	t.Helper()
	if spec.body == nil {
		spec.body = func(_ int, id string) (string, bool) { return orderBody(id), false }
	}
	l := &load{t: t, url: url, spec: spec, quit: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: spec.clients}}}
	for range spec.clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				n := int(l.next.Add(1)) - 1
				if spec.total > 0 && n >= spec.total {
					return
				}
				o := &outcome{id: uuid.NewString()}
				o.body, o.failing = spec.body(n, o.id)
				l.mu.Lock()
				l.events = append(l.events, o)
				l.mu.Unlock()
				l.send(o)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// send posts o until it is answered 202, refused with a 4xx, or giveUp
// passes.
func (l *load) send(o *outcome) {
	deadline := time.Now().Add(giveUp)
	for time.Now().Before(deadline) {
		retryIn, done := l.try(o)
		if done {
			return
		}
		time.Sleep(retryIn)
	}
}

// try posts o once and says whether it is settled, or when to try again.
func (l *load) try(o *outcome) (retryIn time.Duration, done bool) {
	sent := time.Now()
	res, err := l.client.Post(l.url+"/v1/events", "application/json", strings.NewReader(o.body))
	if err != nil {
		l.mu.Lock()
		o.unsure = true
		l.mu.Unlock()
		return 100 * time.Millisecond, false
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		o.unsure = true
		return 100 * time.Millisecond, false
	case res.StatusCode == http.StatusAccepted:
		var a struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(body, &a)
		o.acked, o.ackedAt, o.status = true, time.Now(), a.Status
		l.acks++
		return 0, true
	case res.StatusCode >= 500:
		o.unsure = true
		l.serverErr = append(l.serverErr, sent)
		return retryAfter(res.Header, 100*time.Millisecond), false
	case res.StatusCode == http.StatusTooManyRequests:
		return retryAfter(res.Header, 100*time.Millisecond), false
	default:
		l.rejected = append(l.rejected, fmt.Sprintf("%s: %d %s", o.id, res.StatusCode, body))
		return 0, true
	}
}

// retryAfter is the Retry-After header in seconds, or def.
func retryAfter(h http.Header, def time.Duration) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return def
}

// stop stops handing out new events and waits until every event handed
// out is settled. It is safe to call more than once.
func (l *load) stop() {
	l.stopOnce.Do(func() { close(l.quit) })
	l.wg.Wait()
}

// wait waits until the clients have sent all spec.total events and each
// is settled.
func (l *load) wait() { l.wg.Wait() }

// acked is the number of events answered 202 so far.
func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks
}

// waitAcked waits until n more events than now are answered 202.
func (l *load) waitAcked(n int, within time.Duration) {
	l.t.Helper()
	target := l.acked() + n
	eventually(l.t, within, fmt.Sprintf("%d more events answered 202", n), func() bool { return l.acked() >= target })
}

// serverErrorsSentBefore counts the requests answered 5xx that were sent
// before at.
func (l *load) serverErrorsSentBefore(at time.Time) (before, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.serverErr {
		if s.Before(at) {
			before++
		}
	}
	return before, len(l.serverErr)
}

// answers counts the 202s whose status was status, answered after since.
func (l *load) answers(status string, since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.events {
		if o.acked && o.status == status && o.ackedAt.After(since) {
			n++
		}
	}
	return n
}

// tally is a scenario's outcome, counted as Jepsen's queue checker counts.
type tally struct {
	accepted, lost, duplicated, recovered int
}

// judgeDB opens the scenario's database for judge and the metric checks.
func judgeDB(t *testing.T, cfg Config) *sqlx.DB {
	t.Helper()
	return openTestDB(t, cfg.DatabaseURL)
}

// judge stops the load, waits up to within until every event answered 202
// is processed (or, for a failing one, dead-lettered), counts the outcome,
// prints the scenario's line, and fails the test if an event was lost or
// duplicated, a client never got its answer or got a 4xx, or a processed
// or dead-lettered row matches no event a client sent.
func judge(t *testing.T, db *sqlx.DB, scenario string, l *load, within time.Duration) tally {
	t.Helper()
	l.stop()
	l.mu.Lock()
	events := append([]*outcome(nil), l.events...)
	rejected := append([]string(nil), l.rejected...)
	l.mu.Unlock()

	ids := func(table string) map[string]bool {
		var rows []string
		if err := db.Select(&rows, "SELECT event_id::text FROM "+table); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		set := make(map[string]bool, len(rows))
		for _, id := range rows {
			set[id] = true
		}
		return set
	}
	var processed, failed map[string]bool
	settled := func(o *outcome) bool {
		if o.failing {
			return failed[o.id]
		}
		return processed[o.id]
	}
	deadline := time.Now().Add(within)
	for {
		processed, failed = ids("processed_events"), ids("failed_events")
		missing := 0
		for _, o := range events {
			if o.acked && !settled(o) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	var r tally
	var neverAnswered, misfiled []string
	sent := make(map[string]bool, len(events))
	for _, o := range events {
		sent[o.id] = true
		if o.acked {
			r.accepted++
			if !settled(o) {
				r.lost++
			}
		} else {
			neverAnswered = append(neverAnswered, o.id)
		}
		if (o.failing && processed[o.id]) || (!o.failing && failed[o.id]) {
			misfiled = append(misfiled, o.id)
		}
		if o.unsure && settled(o) && (!o.acked || o.status == "duplicate") {
			r.recovered++
		}
	}
	if err := db.Get(&r.duplicated, `SELECT count(*) - count(DISTINCT event_id) FROM processed_events`); err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos %s: accepted=%d lost=%d duplicated=%d recovered=%d", scenario, r.accepted, r.lost, r.duplicated, r.recovered)

	if r.lost != 0 || r.duplicated != 0 {
		t.Errorf("lost %d, duplicated %d; want 0 and 0", r.lost, r.duplicated)
		for _, o := range events {
			if o.acked && !settled(o) {
				t.Logf("lost: %s (failing %t, processed %t, dead-lettered %t)", o.id, o.failing, processed[o.id], failed[o.id])
			}
		}
		logDeadLetters(t, db, 20)
	}
	if len(neverAnswered) > 0 {
		t.Errorf("%d events never answered 202 within %v of retries, e.g. %v", len(neverAnswered), giveUp, neverAnswered[:min(len(neverAnswered), 5)])
	}
	if len(rejected) > 0 {
		t.Errorf("%d valid events refused with a 4xx, e.g. %v", len(rejected), rejected[:min(len(rejected), 5)])
	}
	if len(misfiled) > 0 {
		t.Errorf("%d events in the wrong table (a valid one dead-lettered or a failing one processed), e.g. %v", len(misfiled), misfiled[:min(len(misfiled), 5)])
		logDeadLetters(t, db, 20)
	}
	for id := range processed {
		if !sent[id] {
			t.Errorf("processed_events holds %s, which no client sent", id)
		}
	}
	return r
}

// logDeadLetters logs up to n rows of failed_events, as evidence.
func logDeadLetters(t *testing.T, db *sqlx.DB, n int) {
	t.Helper()
	var rows []struct {
		EventID   string `db:"event_id"`
		EventType string `db:"event_type"`
		Kind      string `db:"error_kind"`
		Attempts  int    `db:"attempts"`
		Error     string `db:"error"`
	}
	if err := db.Select(&rows, `SELECT event_id::text, event_type, error_kind, attempts, error FROM failed_events ORDER BY failed_at LIMIT $1`, n); err != nil {
		t.Logf("read failed_events: %v", err)
		return
	}
	for _, r := range rows {
		t.Logf("failed_events: %s %s %s attempts=%d error=%q", r.EventID, r.EventType, r.Kind, r.Attempts, r.Error)
	}
}

// metric sums the samples of the named metric on c's /metrics whose labels
// include every labels pair ("name", "value", ...).
func (c *process) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	res, err := http.Get(c.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", c.metrics, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		metricName, labelSet, _ := strings.Cut(series, "{")
		if metricName != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(labelSet, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// sumMetric is metric summed over processes.
func sumMetric(t *testing.T, cs []*process, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for _, c := range cs {
		sum += c.metric(t, name, labels...)
	}
	return sum
}

// count returns the number of rows of table matching where.
func count(t *testing.T, db *sqlx.DB, table, where string, args ...any) int {
	t.Helper()
	h := &harness{t: t, db: db}
	return h.count(table, where, args...)
}

// agree fails the test when a metric differs from the count it counts;
// what names both, "metric vs count".
func agree(t *testing.T, what string, metric float64, want int) {
	t.Helper()
	if metric != float64(want) {
		t.Errorf("%s: %v ≠ %d", what, metric, want)
	} else {
		t.Logf("%s: %v = %d", what, metric, want)
	}
}

// checkWorkerMetrics compares the counters of workers alive through the
// whole scenario with processed_events and failed_events.
//
// events_processed_total is incremented where a worker learns that its
// write made the row. A processed_events row that no worker logged writing
// (the "event processed" DEBUG line, logged beside the increment) is
// uncounted. When the store crashed at crashed (not zero), an uncounted row
// whose transaction began within a second before it is excused: its commit
// reached the server, which made it durable, while the worker got an error,
// and no worker can know it wrote that row. Unexcused ones fail the
// comparison, and are logged with the log lines of the first of them.
func checkWorkerMetrics(t *testing.T, db *sqlx.DB, workers []*process, crashed time.Time) {
	t.Helper()
	processed, rows := sumMetric(t, workers, "events_processed_total"), count(t, db, "processed_events", "")
	excused := 0
	if processed < float64(rows) {
		var unexcused []string
		for id, at := range uncounted(t, db, workers) {
			if !crashed.IsZero() && at.After(crashed.Add(-time.Second)) && !at.After(crashed) {
				excused++
			} else {
				unexcused = append(unexcused, id)
			}
		}
		if excused > 0 {
			t.Logf("%d processed_events rows are uncounted because the crash cut off the commit that wrote them before it answered", excused)
		}
		if len(unexcused) > 0 {
			t.Logf("%d processed_events rows were written without any worker logging (and counting) it, e.g. %v; the log lines of the first:",
				len(unexcused), unexcused[:min(len(unexcused), 3)])
			for _, line := range eventLines(workers, unexcused[0]) {
				t.Log(line)
			}
		}
	}
	what := "events_processed_total (workers) vs processed_events"
	if excused > 0 {
		what = "events_processed_total (workers) + rows cut off by the crash vs processed_events"
	}
	agree(t, what, processed+float64(excused), rows)
	for _, kind := range []string{"permanent", "retries_exhausted"} {
		agree(t, "events_failed_total{error_kind="+kind+"} vs failed_events", sumMetric(t, workers, "events_failed_total", "error_kind", kind),
			count(t, db, "failed_events", "error_kind = $1", kind))
	}
}

// uncounted returns the processed_events rows that no worker logged as
// written, with the start of the transaction that wrote each.
func uncounted(t *testing.T, db *sqlx.DB, workers []*process) map[string]time.Time {
	t.Helper()
	logged := map[string]bool{}
	for _, w := range workers {
		for _, line := range linesWith(w.logs.String(), `"msg":"event processed"`) {
			var l struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal([]byte(line), &l) == nil {
				logged[l.EventID] = true
			}
		}
	}
	var rows []struct {
		ID string    `db:"event_id"`
		At time.Time `db:"processed_at"`
	}
	if err := db.Select(&rows, "SELECT event_id::text, processed_at FROM processed_events"); err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, r := range rows {
		if !logged[r.ID] {
			out[r.ID] = r.At
		}
	}
	return out
}

// eventLines returns the log lines of the workers that name the event,
// each prefixed with its worker's index.
func eventLines(workers []*process, id string) []string {
	var out []string
	for i, w := range workers {
		for _, line := range linesWith(w.logs.String(), id) {
			out = append(out, fmt.Sprintf("worker %d: %s", i, line))
		}
	}
	return out
}

// checkAPIMetrics compares the counters of an API process alive through the
// whole scenario with what its clients were answered and with raw_events:
// events_received_total counts the 202 "accepted" answers and
// events_duplicates_total the 202 "duplicate" ones (sent after since);
// every stored event ends up answered 202, so raw_events holds one row per
// event answered 202.
func checkAPIMetrics(t *testing.T, db *sqlx.DB, api *process, l *load, since time.Time) {
	t.Helper()
	agree(t, `events_received_total vs 202 "accepted" answers`, api.metric(t, "events_received_total"), l.answers("accepted", since))
	agree(t, `events_duplicates_total vs 202 "duplicate" answers`, api.metric(t, "events_duplicates_total"), l.answers("duplicate", since))
	agree(t, "events answered 202 vs raw_events", float64(l.acked()), count(t, db, "raw_events", ""))
}

// waitStable waits until the row count of table stays the same for a
// second: writes a killed process had sent have landed.
func waitStable(t *testing.T, db *sqlx.DB, table string) int {
	t.Helper()
	last := count(t, db, table, "")
	for {
		time.Sleep(time.Second)
		n := count(t, db, table, "")
		if n == last {
			return n
		}
		last = n
	}
}

// get returns the status of GET url, or 0 when there is no answer.
func get(url string) int {
	res, err := http.Get(url)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// linesWith returns the log lines of s that contain every one of words.
func linesWith(s string, words ...string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// probeBody is a chaos.probe event (see chaosRegistry) keyed by its id.
func probeBody(id string, p chaosProbe) string {
	p.Key = id
	payload, _ := json.Marshal(p)
	return fmt.Sprintf(`{"event_id":%q,"event_type":"chaos.probe","source":"chaos","payload":%s}`, id, payload)
}
