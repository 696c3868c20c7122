//go:build chaos

package app

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// A handler slower than the redelivery idle time: among 3,000 events, 20
// chaos.probe events stall the first check of each in a process for longer
// than the idle time plus the claim interval, so that another consumer
// claims each of them and handles it while the first still holds it. The
// first then finds its attempt timed out, retries, and finds the row
// written: one row per event, and no dead letter.
//
// Metrics: no process is killed, so every counter must match.
func TestChaosSlowHandler(t *testing.T) {
	const events, every = 3000, 150
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", 2)
	stall := claimDelay(cfg) + time.Second
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16, total: events, body: func(n int, id string) (string, bool) {
		if n%every == every/2 {
			return probeBody(id, chaosProbe{Stall: stall.String()}), false
		}
		return orderBody(id), false
	}})
	l.wait()
	r := judge(t, db, "slow-handler", l, 2*time.Minute)
	var slow []string
	for _, o := range l.events {
		if strings.Contains(o.body, "chaos.probe") {
			slow = append(slow, o.id)
		}
	}

	timedOut := 0
	for _, id := range slow {
		for _, w := range f.workerProcesses() {
			timedOut += min(1, len(linesWith(w.logs.String(), "processing attempt failed", id)))
		}
	}
	t.Logf("accepted %d; %d slow events stalled %v each (redelivery idle %v); %d (event, worker) pairs logged an attempt that outlived its timeout",
		r.accepted, len(slow), stall, cfg.RedeliveryIdle, timedOut)
	if timedOut == 0 {
		t.Errorf("no slow event was held past its timeout: the scenario did not happen")
	}
	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	checkWorkerMetrics(t, db, f.workerProcesses(), time.Time{})
	f.checkAlive()
}

// A worker paused with SIGSTOP for longer than the redelivery idle time
// plus the claim interval, then resumed with SIGCONT, while events flow:
// the other worker claims the messages the paused one held; the resumed
// one finishes them too, late, and finds them written.
//
// Metrics: no process is killed, so every counter must match.
func TestChaosWorkerPaused(t *testing.T) {
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", 2)
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16})
	l.waitAcked(2000, time.Minute)

	paused := f.worker(0)
	pause := claimDelay(cfg) + 2*time.Second
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	held := pendingOf(t, cfg, cfg.ConsumerName+"-w0-")
	if held == 0 {
		t.Errorf("the paused worker held no message: the scenario did not happen")
	}
	time.Sleep(time.Until(stopped.Add(pause)))
	left := pendingOf(t, cfg, cfg.ConsumerName+"-w0-")
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the resumed worker is ready", func() bool { return get(paused.metrics+"/readyz") == 200 })
	l.waitAcked(2000, time.Minute)
	r := judge(t, db, "worker-paused", l, 2*time.Minute)
	t.Logf("accepted %d; worker 0 paused for %v (redelivery idle %v) holding %d messages, %d of them still its own at the end of the pause",
		r.accepted, pause, cfg.RedeliveryIdle, held, left)

	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	checkWorkerMetrics(t, db, f.workerProcesses(), time.Time{})
	if f.worker(0).metric(t, "events_processed_total") == 0 {
		t.Errorf("the paused worker processed nothing: the scenario did not happen")
	}
	f.checkAlive()
}

// Entries that are not Watermill messages written straight into the stream
// (XADD) in the middle of 5,000 events: consumption goes on, and each entry
// is dead-lettered as permanent and acknowledged.
//
// Metrics: no process is killed, so every counter must match.
func TestChaosMalformedEntry(t *testing.T) {
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", 2)
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16, total: 5000})
	l.waitAcked(1500, time.Minute)

	opts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	malformed := []map[string]any{
		{"event": "user.signup", "user": "42"}, // another producer's entry
		{"_watermill_message_uuid": uuid.NewString(), "metadata": "\xc1 not msgpack", "payload": "{}"},
		{"payload": "not even JSON"},
	}
	for _, values := range malformed {
		if err := rdb.XAdd(ctx, &goredis.XAddArgs{Stream: cfg.Stream, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l.wait()
	r := judge(t, db, "malformed-entry", l, 2*time.Minute)

	eventually(t, 30*time.Second, "every malformed entry dead-lettered", func() bool {
		return count(t, db, "failed_events", "") >= len(malformed)
	})
	if n := count(t, db, "failed_events", "event_type = 'unknown' AND error_kind = 'permanent'"); n != len(malformed) || count(t, db, "failed_events", "") != n {
		t.Errorf("failed_events: %d unknown/permanent rows of %d, want %d", n, count(t, db, "failed_events", ""), len(malformed))
		logDeadLetters(t, db, 10)
	}
	eventually(t, 30*time.Second, "nothing pending in the consumer group", func() bool {
		p, err := rdb.XPending(ctx, cfg.Stream, cfg.ConsumerGroup).Result()
		return err == nil && p.Count == 0
	})
	t.Logf("accepted %d; %d malformed entries dead-lettered and acknowledged", r.accepted, len(malformed))
	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	checkWorkerMetrics(t, db, f.workerProcesses(), time.Time{})
	f.checkAlive()
}

// 10,000 events of which 1 % are poison (well-formed envelopes whose
// payload breaks its type's rules): exactly those 100 end in failed_events,
// as permanent failures, and the 9,900 others in processed_events.
//
// Metrics: no process is killed, so every counter must match.
func TestChaosPoisonOnePercent(t *testing.T) {
	const events, poisonEvery = 10000, 100
	cfg := chaosConfig(t, TransportRedis)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", 2)
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16, total: events, body: func(n int, id string) (string, bool) {
		if n%poisonEvery == poisonEvery-1 {
			return poisonOrderBody(id), true
		}
		return orderBody(id), false
	}})
	l.wait()
	r := judge(t, db, "poison-1pct", l, 2*time.Minute)

	wantFailed, wantProcessed := events/poisonEvery, events-events/poisonEvery
	failed, permanent := count(t, db, "failed_events", ""), count(t, db, "failed_events", "error_kind = 'permanent'")
	processed := count(t, db, "processed_events", "")
	if failed != wantFailed || permanent != wantFailed || processed != wantProcessed {
		t.Errorf("failed_events %d (%d permanent), processed_events %d; want %d, %d and %d", failed, permanent, processed, wantFailed, wantFailed, wantProcessed)
	}
	t.Logf("accepted %d; failed_events %d (permanent %d), processed_events %d", r.accepted, failed, permanent, processed)
	checkAPIMetrics(t, db, f.apiProcess(), l, start)
	checkWorkerMetrics(t, db, f.workerProcesses(), time.Time{})
	f.checkAlive()
}

// poisonOrderBody is an order.placed event that passes ingestion (the
// envelope is valid) and fails its payload rules in the process handler.
func poisonOrderBody(id string) string {
	return fmt.Sprintf(`{"event_id":%q,"event_type":"order.placed","source":"checkout",
		"payload":{"order_id":"A-1","user_id":"u-1","currency":"euro","items":[{"sku":"a","quantity":0,"unit_price":1}]}}`, id)
}

// maxDeliveries is EVENTFLOW_MAX_DELIVERIES in TestChaosCrashingPoison.
const maxDeliveries = 3

// A poison event that crashes its worker (the process exits while
// checking it) every time it is handled, among 5,000 events, with the
// workers restarted whenever they die, as a supervisor would: the event
// must be quarantined to failed_events as retries_exhausted after at most
// EVENTFLOW_MAX_DELIVERIES deliveries, counted durably (in the stream's
// pending entries on Redis, in eventflow_outbox_deliveries on the outbox,
// across the crashes), and every other event processed.
//
// Metrics: crashed workers take their counters with them, so only the dead
// letter is compared, against the workers alive at the end (the one that
// quarantined it does not crash).
func TestChaosCrashingPoison(t *testing.T) {
	for _, tr := range []string{TransportRedis, TransportPostgres} {
		t.Run(tr, func(t *testing.T) { crashingPoison(t, tr) })
	}
}

func crashingPoison(t *testing.T, transport string) {
	const workers = 2
	cfg := chaosConfig(t, transport)
	db := judgeDB(t, cfg)
	f := newFleet(t, cfg, "api", workers, fmt.Sprintf("EVENTFLOW_MAX_DELIVERIES=%d", maxDeliveries))
	crashes := f.supervise()
	start := time.Now()
	l := startLoad(t, f.url(), loadSpec{clients: 16, total: 5000, body: func(n int, id string) (string, bool) {
		if n == 1500 {
			return probeBody(id, chaosProbe{Crash: true}), true
		}
		return orderBody(id), false
	}})
	l.wait()
	var poison string
	for _, o := range l.events {
		if o.failing {
			poison = o.id
		}
	}
	// Each delivery after a crash waits for the claim: up to claimDelay.
	within := time.Duration(maxDeliveries+2) * (claimDelay(cfg) + 2*time.Second)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && count(t, db, "failed_events", "event_id = $1", poison) == 0 {
		time.Sleep(250 * time.Millisecond)
	}
	n := crashes()
	r := judge(t, db, "crashing-poison", l, time.Minute)
	t.Logf("accepted %d; the poison event %s crashed a worker %d times in %v", r.accepted, poison, n, time.Since(start).Round(time.Second))
	if count(t, db, "failed_events", "event_id = $1 AND error_kind = 'retries_exhausted'", poison) != 1 {
		t.Errorf("the poison event is not in failed_events as retries_exhausted after %d crashes (EVENTFLOW_MAX_DELIVERIES=%d): no quarantine", n, maxDeliveries)
		logDeadLetters(t, db, 10)
		return
	}
	if n > maxDeliveries {
		t.Errorf("%d crashes before the quarantine, want at most EVENTFLOW_MAX_DELIVERIES=%d", n, maxDeliveries)
	}
	agree(t, "events_failed_total{error_kind=retries_exhausted} (live workers) vs failed_events",
		sumMetric(t, f.workerProcesses(), "events_failed_total", "error_kind", "retries_exhausted"),
		count(t, db, "failed_events", "error_kind = 'retries_exhausted'"))
}

// supervise restarts every worker that exits on its own, as systemd or
// Kubernetes would, until the returned function is called; that function
// returns how many times a worker exited with crashExitCode.
func (f *fleet) supervise() (stop func() int) {
	quit := make(chan struct{})
	results := make(chan int, len(f.workers))
	for i := range f.workers {
		go func() {
			crashes := 0
			defer func() { results <- crashes }()
			for {
				w := f.worker(i)
				select {
				case <-quit:
					return
				case <-w.done():
				}
				if code := w.cmd.ProcessState.ExitCode(); code == crashExitCode {
					crashes++
				} else {
					f.t.Errorf("worker %d exited with %d, not the crash's %d: %s", i, code, crashExitCode, w.stderr.String())
				}
				// A worker can crash again before it is running: try again.
				for {
					c, err := f.tryStartWorker(i)
					if err == nil {
						break
					}
					if c != nil && c.cmd.ProcessState != nil && c.cmd.ProcessState.ExitCode() == crashExitCode {
						crashes++
					}
					select {
					case <-quit:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}()
	}
	return func() int {
		close(quit)
		n := 0
		for range f.workers {
			n += <-results
		}
		return n
	}
}

// pendingOf is the number of entries pending in the consumer group for the
// consumers whose names start with prefix.
func pendingOf(t *testing.T, cfg Config, prefix string) int64 {
	t.Helper()
	opts, err := goredis.ParseURL(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	p, err := rdb.XPending(context.Background(), cfg.Stream, cfg.ConsumerGroup).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	var n int64
	for name, c := range p.Consumers {
		if strings.HasPrefix(name, prefix) {
			n += c
		}
	}
	return n
}
