//go:build chaos

package app

import (
	"syscall"
	"testing"
	"time"
)

// Worker processes killed with SIGKILL every 2s, one after the other, and
// restarted under the same consumer name, while 20,000 events flow through
// three of them: each kill leaves its messages pending until a live worker
// claims them, and whatever it had written before it died comes back as a
// redelivery that must not make a second row.
//
// Metrics: the API is never killed, so its counters must match its
// clients' answers and raw_events. The workers' counters die with them;
// they are compared over a last stretch run by workers started after the
// last kill, over the last quarter of the events, against the rows
// written in that stretch.
func TestChaosWorkerKills(t *testing.T) {
	const events, workers = 20000, 3
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", workers)
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16, total: events})

	next := 0
	stopKills := every(2*time.Second, func() {
		i := next % workers
		next++
		kill9(f.worker(i))
		if _, err := f.tryStartWorker(i); err != nil {
			t.Error(err)
		}
	})
	eventually(t, 2*time.Minute, "15,000 events answered 202", func() bool { return l.acked() >= 15000 })
	kills := stopKills()

	// The last stretch, a quarter of the events and whatever is pending:
	// kill every worker, let their last writes land, and start fresh ones
	// that finish the work.
	for _, w := range f.workerProcesses() {
		kill9(w)
	}
	processedBefore := waitStable(t, db, "processed_events")
	failedBefore := count(t, db, "failed_events", "")
	for i := range workers {
		f.startWorker(i)
	}
	l.wait()
	judge(t, db, "worker-kills", l, 2*time.Minute)
	t.Logf("%d workers killed with SIGKILL (one every 2s) and restarted; %d events in %v", kills+workers, events, time.Since(start).Round(time.Second))

	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	fresh := f.workerProcesses()
	agree(t, "events_processed_total (workers started after the last kill) vs rows they wrote",
		sumMetric(t, fresh, "events_processed_total"), count(t, db, "processed_events", "")-processedBefore)
	agree(t, "events_failed_total (workers started after the last kill) vs rows they wrote",
		sumMetric(t, fresh, "events_failed_total"), count(t, db, "failed_events", "")-failedBefore)
	f.checkAlive()
}

// The API process killed with SIGKILL every 2s and restarted on the same
// port, while clients retry every event not answered 202 (a refused
// connection, a reset, a timeout) with the same event_id. A kill can fall
// between the commit to raw_events and the publish, or between the publish
// and the 202: the retry, or the relay, must publish what was stored, and
// processing must keep one row per event.
//
// Metrics: the workers are never killed, so their counters must match
// processed_events and failed_events. The API's counters die with it and
// are not compared.
func TestChaosAPIKills(t *testing.T) {
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", 2)
	l := startLoad(t, f.url(), loadSpec{clients: 16})

	stopKills := every(2*time.Second, func() {
		kill9(f.apiProcess())
		if _, err := f.tryStartAPI(); err != nil {
			t.Error(err)
		}
	})
	time.Sleep(24 * time.Second)
	kills := stopKills()
	before, total := l.serverErrorsSentBefore(time.Now())
	r := judge(t, db, "api-kills", l, 2*time.Minute)
	t.Logf("API killed with SIGKILL %d times (every 2s) and restarted; %d events accepted; %d requests answered 5xx (%d before the end of the kills)",
		kills, r.accepted, total, before)

	checkWorkerMetrics(t, db, f.workerProcesses(), time.Time{})
	f.checkAlive()
}

// SIGTERM to eventflow serve under load: it must exit 0; no request sent
// before the signal may get a 5xx (each gets its 202, or the connection is
// refused once the listener has closed); and nothing answered 202 is lost:
// a new process started on the same port afterwards, as a rolling restart
// would, takes the clients' retries and claims what the first left pending.
//
// Metrics: the first process's counters are gone with it; the second's must
// match the answers it gave and the rows it wrote.
func TestChaosSIGTERM(t *testing.T) {
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "serve", 0)
	l := startLoad(t, f.url(), loadSpec{clients: 16})
	l.waitAcked(3000, time.Minute)

	first := f.apiProcess()
	signalled := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done():
		if first.err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr %s", first.err, first.stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("no exit within 40s of SIGTERM")
	}
	exited := time.Now()
	t.Logf("exit status %v, %v after SIGTERM", first.cmd.ProcessState.ExitCode(), exited.Sub(signalled).Round(time.Millisecond))

	processedBefore := waitStable(t, db, "processed_events")
	second := f.startAPI() // every answer from now on is the second process's
	l.waitAcked(2000, time.Minute)
	r := judge(t, db, "sigterm", l, 2*time.Minute)
	before, total := l.serverErrorsSentBefore(signalled)
	if before != 0 {
		t.Errorf("%d requests sent before SIGTERM were answered 5xx", before)
	}
	t.Logf("accepted %d; 5xx answers: %d to requests sent before SIGTERM, %d in all", r.accepted, before, total)

	agree(t, `events_received_total (second process) vs its "accepted" answers`, second.metric(t, "events_received_total"), l.answers("accepted", exited))
	agree(t, `events_duplicates_total (second process) vs its "duplicate" answers`, second.metric(t, "events_duplicates_total"), l.answers("duplicate", exited))
	agree(t, "events_processed_total (second process) vs rows it wrote", second.metric(t, "events_processed_total"),
		count(t, db, "processed_events", "")-processedBefore)
	agree(t, "failed_events", second.metric(t, "events_failed_total"), count(t, db, "failed_events", ""))
	agree(t, "events answered 202 vs raw_events", float64(l.acked()), count(t, db, "raw_events", ""))
}
