//go:build chaos

package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Redis crashed (SIGKILL) and restarted mid-load, replaying its append-only
// file: during the outage the API answers 503 with Retry-After and /readyz
// is 503; afterwards every process resumes by itself, and clients retrying
// with the same event_id lose nothing.
//
// Metrics: no eventflow process is killed, so every counter must match.
func TestChaosRedisRestart(t *testing.T) {
	redis := startRedisServer(t)
	cfg := chaosConfig(t, TransportRedis)
	cfg.RedisURL = redis.url()
	outage(t, "redis-restart", cfg, dependency{crash: redis.crash, restart: redis.start})
}

// Postgres crashed (pg_ctl stop -m immediate) and restarted mid-load,
// recovering from its write-ahead log: as TestChaosRedisRestart.
//
// Metrics: as TestChaosRedisRestart, except that a processed_events row
// written by a commit the crash cut off before it answered is counted by no
// worker (none knows it wrote it); such rows are excused (see
// checkWorkerMetrics).
func TestChaosPostgresRestart(t *testing.T) {
	pg := startPostgresServer(t)
	cfg := chaosConfig(t, TransportRedis)
	cfg.DatabaseURL = pg.url("eventflow")
	outage(t, "postgres-restart", cfg, dependency{crash: pg.crash, restart: pg.start, store: true})
}

// dependency is a server an outage scenario crashes and restarts.
type dependency struct {
	crash, restart func()
	// store is set for the store (Postgres), whose crash can cut off
	// commits in flight (see checkWorkerMetrics).
	store bool
}

// outage runs an API and two workers under load, crashes dep, checks that
// the API and every process's /readyz answer 503 (POST with Retry-After),
// keeps the outage for a few seconds more, restarts dep, and checks that
// everything resumes with no other step: every process ready again, new
// events accepted and processed, none lost or duplicated.
func outage(t *testing.T, scenario string, cfg Config, dep dependency) {
	f := newFleet(t, cfg, "api", 2)
	db := judgeDB(t, cfg)
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16})
	l.waitAcked(2000, time.Minute)

	dep.crash()
	down := time.Now()
	probe := &outcome{id: uuid.NewString()}
	probe.body = orderBody(probe.id)
	var answer *http.Response
	eventually(t, 20*time.Second, "POST /v1/events answers 503 with Retry-After", func() bool {
		res, err := http.Post(f.url()+"/v1/events", "application/json", strings.NewReader(probe.body))
		if err != nil {
			return false
		}
		res.Body.Close()
		answer = res
		return res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != ""
	})
	t.Logf("during the outage: POST /v1/events answered %d, Retry-After %q, %v after the crash",
		answer.StatusCode, answer.Header.Get("Retry-After"), time.Since(down).Round(time.Millisecond))
	eventually(t, 20*time.Second, "/readyz answers 503 on the API", func() bool {
		return get(f.url()+"/readyz") == http.StatusServiceUnavailable
	})
	for _, w := range f.workerProcesses() {
		eventually(t, 20*time.Second, "/readyz answers 503 on a worker", func() bool {
			return get(w.metrics+"/readyz") == http.StatusServiceUnavailable
		})
	}
	acceptedDown := l.acked()
	time.Sleep(time.Until(down.Add(5 * time.Second)))
	acceptedDuring := l.acked() - acceptedDown

	dep.restart()
	up := time.Now()
	for _, c := range f.all() {
		eventually(t, time.Minute, "/readyz answers 200 after the restart", func() bool {
			return get(c.metrics+"/readyz") == http.StatusOK
		})
	}
	t.Logf("outage %v; every process ready %v after the restart; %d answers 202 while down",
		up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond), acceptedDuring)
	l.waitAcked(2000, time.Minute)
	// The probe's first try got a 503; it is retried like any client's.
	l.mu.Lock()
	probe.unsure = true
	l.events = append(l.events, probe)
	l.mu.Unlock()
	l.send(probe)

	r := judge(t, db, scenario, l, 2*time.Minute)
	_, total := l.serverErrorsSentBefore(time.Now())
	t.Logf("accepted %d; 503 answers to the clients: %d", r.accepted, total)
	failedAttempts, unwritten := 0, 0
	for _, w := range f.workerProcesses() {
		failedAttempts += len(linesWith(w.logs.String(), "processing attempt failed"))
		unwritten += len(linesWith(w.logs.String(), "cannot write dead letter"))
	}
	t.Logf("the workers logged %d failed processing attempts and %d dead letters they could not write (nacked, redelivered)", failedAttempts, unwritten)
	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	var crashed time.Time
	if dep.store {
		crashed = down
	}
	checkWorkerMetrics(t, db, f.workerProcesses(), crashed)
	f.checkAlive()
}
