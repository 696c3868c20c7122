package middleware

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventflow/eventflow/handlers/problem"
)

// The reasons a Shedder sheds load: the values of the reason label of
// load_shed_total and load_shedding, and the words a refusal names.
const (
	// ShedReasonMemory: the live Go heap is over its limit.
	ShedReasonMemory = "memory"
	// ShedReasonDBWait: every database connection is busy and callers
	// queue for one.
	ShedReasonDBWait = "db_wait"
	// ShedReasonBacklog: too many messages wait in the transport.
	ShedReasonBacklog = "backlog"
)

// Defaults of ShedConfig.
const (
	// DefaultShedInterval is how often the memory and pool signals, which
	// cost a few hundred nanoseconds, are sampled.
	DefaultShedInterval = 250 * time.Millisecond
	// DefaultShedBacklogInterval is how often the backlog is sampled: each
	// sample is a round trip to the transport (XINFO GROUPS on Redis, a
	// count of the outbox on Postgres).
	DefaultShedBacklogInterval = time.Second
	// ShedDBWaitWindow is the span the pool's wait is averaged over, so
	// that a burst shorter than it cannot trip the signal alone.
	ShedDBWaitWindow = time.Second
)

// Indexes in shedReasons.
const (
	reasonMemory = iota
	reasonDBWait
	reasonBacklog
)

// shedReasons, most urgent first: a refusal's counter goes by the first
// active one. Bit i of Shedder.active is shedReasons[i].
var shedReasons = [...]struct {
	name string
	why  string
	// retryAfter is how long a refused client should wait: roughly how
	// long the condition takes to ease once intake pauses.
	retryAfter time.Duration
}{
	reasonMemory:  {ShedReasonMemory, "the server is short of memory", 2 * time.Second},
	reasonDBWait:  {ShedReasonDBWait, "the database is saturated", time.Second},
	reasonBacklog: {ShedReasonBacklog, "too many events are waiting to be processed", 5 * time.Second},
}

// shedClearRatio is the hysteresis of the backlog and memory signals: once
// over its limit, a signal sheds until it falls below this share of the
// limit. The pool signal clears at half its limit.
const shedClearRatio = 0.9

// ShedConfig configures a Shedder. Each signal is on when its limit is
// above zero and its source is set (the memory signal has a default
// source); the zero value sheds nothing.
type ShedConfig struct {
	// Backlog returns how many messages wait in the transport
	// (transport.Transport.Depth of the events topic).
	Backlog func(context.Context) (int64, error)
	// MaxBacklog sheds while more messages than this wait, until fewer
	// than 9/10 of it do.
	MaxBacklog int64

	// PoolStats returns the database pool's statistics (sql.DB.Stats).
	PoolStats func() sql.DBStats
	// MaxDBWait sheds while every connection of the pool is in use and
	// callers spent more than this waiting for one per second, averaged
	// over ShedDBWaitWindow; shedding stops once the wait falls below half
	// of it. It is the average number of callers queued for a connection,
	// in seconds per second: 1s is one caller waiting all the time.
	MaxDBWait time.Duration

	// HeapLive returns the live Go heap in bytes; by default the heap the
	// last garbage collection found reachable (runtime/metrics
	// /gc/heap/live:bytes).
	HeapLive func() int64
	// MaxMemory sheds while the live heap is over this many bytes, until it
	// falls below 9/10 of it.
	MaxMemory int64

	// Interval is how often the memory and pool signals are sampled;
	// default DefaultShedInterval.
	Interval time.Duration
	// BacklogInterval is how often the backlog is sampled; default
	// DefaultShedBacklogInterval.
	BacklogInterval time.Duration

	// Metrics, if set, gets load_shed_total, load_shedding and
	// events_rejected_total{status="503"}.
	Metrics *Metrics
	// Logger logs when shedding starts and stops; default: none.
	Logger *slog.Logger
}

func (c *ShedConfig) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = DefaultShedInterval
	}
	if c.BacklogInterval <= 0 {
		c.BacklogInterval = DefaultShedBacklogInterval
	}
	if c.HeapLive == nil {
		c.HeapLive = heapLive()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Shedder refuses requests with 503 while the service is overloaded (load
// shedding): while the transport backlog, the wait for database
// connections or the live heap is over its limit. A background loop, Run,
// samples those signals; a request only loads one atomic word, so shedding
// costs nothing per request and a refusal costs no database or transport
// work.
//
// Each signal has hysteresis: it starts shedding above its limit and stops
// only below a lower mark, so that a signal hovering at its limit does not
// flap. A signal that cannot be sampled (the transport does not answer)
// does not shed: the requests then fail, or not, on their own.
//
// Put Middleware on the ingestion routes only, behind authentication: a
// refused request counts in events_rejected_total.
type Shedder struct {
	cfg     ShedConfig
	signals []*shedSignal
	// active has bit i set while shedReasons[i] sheds.
	active atomic.Uint32
	now    func() time.Time
}

// shedSignal is one source of overload. Only its sampling goroutine uses
// it.
type shedSignal struct {
	reason int // index in shedReasons
	every  time.Duration
	// check samples the signal and says whether to shed, given whether it
	// sheds now; attrs describe the sample for the logs.
	check func(ctx context.Context, shedding bool) (shed bool, attrs []any, err error)
	// failing is set while samples fail, to log a failure once.
	failing bool
}

// NewShedder returns a Shedder of the signals cfg turns on. It sheds
// nothing until Run samples them.
func NewShedder(cfg ShedConfig) *Shedder {
	cfg.setDefaults()
	s := &Shedder{cfg: cfg, now: time.Now}
	if cfg.MaxMemory > 0 {
		s.signals = append(s.signals, &shedSignal{reason: reasonMemory, every: cfg.Interval, check: s.checkMemory})
	}
	if cfg.PoolStats != nil && cfg.MaxDBWait > 0 {
		w := &poolWait{}
		s.signals = append(s.signals, &shedSignal{reason: reasonDBWait, every: cfg.Interval,
			check: func(_ context.Context, shedding bool) (bool, []any, error) { return s.checkPool(w, shedding) }})
	}
	if cfg.Backlog != nil && cfg.MaxBacklog > 0 {
		s.signals = append(s.signals, &shedSignal{reason: reasonBacklog, every: cfg.BacklogInterval, check: s.checkBacklog})
	}
	if m := cfg.Metrics; m != nil {
		// The series of the signals that are on exist from the start.
		for _, sig := range s.signals {
			m.LoadShedding.WithLabelValues(shedReasons[sig.reason].name).Set(0)
			m.LoadShed.WithLabelValues(shedReasons[sig.reason].name)
		}
	}
	return s
}

// Middleware refuses requests, except GET, HEAD and OPTIONS ones, while
// load is shed: 503, a problem naming the reasons, and Retry-After, the
// longest of theirs (1s for db_wait, 2s for memory, 5s for backlog). With
// no signal on it returns next.
func (s *Shedder) Middleware(next http.Handler) http.Handler {
	if len(s.signals) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if active := s.active.Load(); active != 0 && !readOnly(r.Method) {
			s.refuse(w, r, active)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

func (s *Shedder) refuse(w http.ResponseWriter, r *http.Request, active uint32) {
	first := -1
	var (
		names, whys []string
		retryAfter  time.Duration
	)
	for i, reason := range shedReasons {
		if active&(1<<i) == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		names, whys = append(names, reason.name), append(whys, reason.why)
		retryAfter = max(retryAfter, reason.retryAfter)
	}
	if m := s.cfg.Metrics; m != nil {
		// By the first reason only, so that the counter sums to the
		// requests refused.
		m.LoadShed.WithLabelValues(shedReasons[first].name).Inc()
		m.Rejected.WithLabelValues("503").Inc()
	}
	p := problem.New(http.StatusServiceUnavailable, fmt.Sprintf("shedding load (%s): %s; retry after Retry-After",
		strings.Join(names, ", "), strings.Join(whys, "; ")))
	p.RetryAfter = retryAfter
	problem.Write(w, RequestIDFrom(r.Context()), p)
}

// Run samples each signal at its interval until ctx ends. It returns at
// once when no signal is on.
func (s *Shedder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sig := range s.signals {
		wg.Go(func() {
			tick := time.NewTicker(sig.every)
			defer tick.Stop()
			for {
				s.sample(ctx, sig)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
}

// sample checks sig once and starts or stops shedding for its reason.
func (s *Shedder) sample(ctx context.Context, sig *shedSignal) {
	reason := shedReasons[sig.reason].name
	bit := uint32(1) << sig.reason
	shedding := s.active.Load()&bit != 0
	checkCtx, cancel := context.WithTimeout(ctx, sig.every)
	defer cancel()
	shed, attrs, err := sig.check(checkCtx, shedding)
	switch {
	case err != nil && ctx.Err() != nil:
		return // shutting down
	case err != nil:
		if !sig.failing {
			s.cfg.Logger.Warn("load shedding: cannot sample a signal; not shedding for it", "reason", reason, "error", err)
		}
		sig.failing, shed = true, false
	case sig.failing:
		s.cfg.Logger.Info("load shedding: sampling again", "reason", reason)
		sig.failing = false
	}
	if shed == shedding {
		return
	}
	attrs = append([]any{"reason", reason}, attrs...)
	gauge := 0.0
	if shed {
		s.active.Or(bit)
		gauge = 1
		s.cfg.Logger.Warn("shedding load: refusing ingestion with 503", attrs...)
	} else {
		s.active.And(^bit)
		s.cfg.Logger.Info("load shedding stopped", attrs...)
	}
	if m := s.cfg.Metrics; m != nil {
		m.LoadShedding.WithLabelValues(reason).Set(gauge)
	}
}

// overLimit is a signal's hysteresis: it trips above limit and, once
// tripped, holds until value falls below clear.
func overLimit(shedding bool, value, limit, clear float64) bool {
	if shedding {
		return value >= clear
	}
	return value > limit
}

func (s *Shedder) checkBacklog(ctx context.Context, shedding bool) (bool, []any, error) {
	n, err := s.cfg.Backlog(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("transport backlog: %w", err)
	}
	limit := float64(s.cfg.MaxBacklog)
	return overLimit(shedding, float64(n), limit, limit*shedClearRatio), []any{"backlog", n, "limit", s.cfg.MaxBacklog}, nil
}

func (s *Shedder) checkMemory(_ context.Context, shedding bool) (bool, []any, error) {
	live := s.cfg.HeapLive()
	limit := float64(s.cfg.MaxMemory)
	return overLimit(shedding, float64(live), limit, limit*shedClearRatio), []any{"heap_live_bytes", live, "limit_bytes", s.cfg.MaxMemory}, nil
}

// poolWait remembers the pool's cumulative wait over the last
// ShedDBWaitWindow.
type poolWait struct {
	points []waitPoint
}

type waitPoint struct {
	at   time.Time
	wait time.Duration
}

// checkPool trips when every connection is in use and the wait per second
// over the window is above the limit; it holds while the wait stays above
// half the limit, whether or not the pool is full at that instant. A busy
// pool whose callers get a connection at once waits nothing, however high
// the load: only a queue that lasts trips it.
func (s *Shedder) checkPool(w *poolWait, shedding bool) (bool, []any, error) {
	st := s.cfg.PoolStats()
	now := s.now()
	w.points = append(w.points, waitPoint{now, st.WaitDuration})
	// Keep one point at least a window old: the rate spans the window.
	for len(w.points) > 2 && now.Sub(w.points[1].at) >= ShedDBWaitWindow {
		w.points = w.points[1:]
	}
	var rate float64 // seconds waited per second
	if first := w.points[0]; now.After(first.at) {
		rate = float64(st.WaitDuration-first.wait) / float64(now.Sub(first.at))
	}
	limit := s.cfg.MaxDBWait.Seconds()
	shed := overLimit(shedding, rate, limit, limit/2)
	if !shedding {
		shed = shed && st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections
	}
	return shed, []any{"wait_per_second", rate, "limit", s.cfg.MaxDBWait.Seconds(),
		"in_use", st.InUse, "max_open", st.MaxOpenConnections}, nil
}

// heapLive reads the live heap from runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world. The live heap, not the
// heap in use, is the signal: the heap in use swings up to GOGC % above
// the live heap between collections (and up to GOMEMLIMIT with GOGC=off)
// with no pressure at all.
func heapLive() func() int64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	return func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
}
