package middleware

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are eventflow's own Prometheus metrics (SPEC §9; the names are the
// original design's and must not change). Watermill's router metrics are
// registered beside them by the app.
type Metrics struct {
	// Received counts events accepted at ingestion (not duplicates).
	Received *prometheus.CounterVec
	// Duplicates counts events answered "duplicate" at ingestion.
	Duplicates *prometheus.CounterVec
	// Rejected counts events refused at ingestion, by HTTP status.
	Rejected *prometheus.CounterVec
	// LoadShed counts requests refused by load shedding, by reason (see
	// Shedder).
	LoadShed *prometheus.CounterVec
	// LoadShedding is 1 while load is shed for a reason, else 0.
	LoadShedding *prometheus.GaugeVec
	// Processed counts events written to processed_events.
	Processed *prometheus.CounterVec
	// Failed counts dead letters, by event type and error kind.
	Failed *prometheus.CounterVec
	// Retries counts in-process retries of the process handler.
	Retries prometheus.Counter
	// ActiveWorkers is the number of events being processed right now.
	ActiveWorkers prometheus.Gauge
	// Duration is the process handler's time per event, retries included.
	Duration *prometheus.HistogramVec
	// EndToEnd is the time from an event's arrival to its processed row.
	EndToEnd *prometheus.HistogramVec
	// Replayed counts dead letters published again.
	Replayed *prometheus.CounterVec
	// Relayed counts stored events the relay published because their
	// ingest did not.
	Relayed prometheus.Counter
	// CommitBatch is the number of events each group commit wrote, by
	// stage (ingest, process): how well concurrent requests share a write.
	CommitBatch *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg. queueDepth,
// if not nil, backs the queue_depth gauge; it is called at every scrape.
func NewMetrics(reg prometheus.Registerer, queueDepth func() float64) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_received_total", Help: "Events accepted at ingestion and stored in raw_events.",
		}, []string{"event_type"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_duplicates_total", Help: "Events answered as duplicates of an earlier event_id.",
		}, []string{"event_type"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_rejected_total", Help: "Events refused at ingestion, by HTTP status.",
		}, []string{"status"}),
		LoadShed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "load_shed_total", Help: "Ingestion requests refused with 503 by load shedding, by its first reason (memory, db_wait, backlog).",
		}, []string{"reason"}),
		LoadShedding: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "load_shedding", Help: "1 while ingestion is refused for the reason (memory, db_wait, backlog), else 0.",
		}, []string{"reason"}),
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_processed_total", Help: "Events written to processed_events.",
		}, []string{"event_type"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_failed_total", Help: "Events written to failed_events (dead letters).",
		}, []string{"event_type", "error_kind"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "event_retries_total", Help: "In-process retries of the process handler after a transient failure.",
		}),
		ActiveWorkers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "active_workers", Help: "Events being processed right now.",
		}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "event_processing_duration_seconds",
			Help:    "Time the process handler spent on an event, retries included, whatever the outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"event_type"}),
		EndToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "event_end_to_end_seconds",
			Help:    "Time from an event's arrival at the API to its processed_events row.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"event_type"}),
		Replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_replayed_total", Help: "Dead letters published again by a replay.",
		}, []string{"event_type"}),
		Relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "events_relayed_total", Help: "Stored events published by the relay because their ingest's publish never happened.",
		}),
		CommitBatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "commit_batch_events",
			Help:    "Events written by one group commit, by stage (ingest, process).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}, []string{"stage"}),
	}
	reg.MustRegister(m.Received, m.Duplicates, m.Rejected, m.Processed, m.Failed, m.Retries, m.ActiveWorkers,
		m.Duration, m.EndToEnd, m.Replayed, m.Relayed, m.CommitBatch)
	reg.MustRegister(m.LoadShed, m.LoadShedding)
	if queueDepth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "queue_depth", Help: "Messages waiting in the transport: not yet delivered plus delivered and unacknowledged.",
		}, queueDepth))
	}
	return m
}

// EventTypeMetadataKey is the message metadata that names the event's type,
// for metrics taken before the payload is decoded.
const EventTypeMetadataKey = "event_type"

// DurationMiddleware observes event_processing_duration_seconds for every
// message, whatever its outcome. Add it outside Retry, so that retries and
// their backoff count.
func (m *Metrics) DurationMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		defer func() {
			typ := msg.Metadata.Get(EventTypeMetadataKey)
			if typ == "" {
				typ = "unknown"
			}
			m.Duration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
		}()
		return h(msg)
	}
}

// ActiveWorkersMiddleware keeps the active_workers gauge equal to the
// number of messages in the handler.
func (m *Metrics) ActiveWorkersMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		m.ActiveWorkers.Inc()
		defer m.ActiveWorkers.Dec()
		return h(msg)
	}
}

// RegisterDeadLetterGauges registers dead_letters (dead letters not yet
// replayed) and dead_letter_oldest_age_seconds, read from stats once per
// scrape.
func RegisterDeadLetterGauges(reg prometheus.Registerer, stats func(context.Context) (int, time.Time, error)) {
	reg.MustRegister(deadLetterCollector{stats: stats})
}

var (
	deadLettersDesc = prometheus.NewDesc("dead_letters",
		"Dead letters in failed_events not yet replayed.", nil, nil)
	deadLetterAgeDesc = prometheus.NewDesc("dead_letter_oldest_age_seconds",
		"Age of the oldest dead letter not yet replayed (0 when there is none).", nil, nil)
)

type deadLetterCollector struct {
	stats func(context.Context) (int, time.Time, error)
}

func (c deadLetterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deadLettersDesc
	ch <- deadLetterAgeDesc
}

func (c deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deadLettersDesc, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(deadLetterAgeDesc, prometheus.GaugeValue, age)
}
