// Package app is eventflow's composition root: configuration, wiring of the
// store, transport, router and HTTP servers, and their lifecycle.
//
// # Shutdown order
//
// On cancellation App.Run stops the parts in the order that loses nothing:
//
//  1. /readyz turns 503, so load balancers stop sending.
//  2. The HTTP server stops taking requests and waits for the ones in
//     flight; each waits for the ingest handler's answer, so every request
//     that got in gets its 202 or 503.
//  3. The router closes: the transport subscriber stops delivering and the
//     contexts of messages still in the process handler are cancelled; such
//     a message is nacked, never dead-lettered, and redelivered later (the
//     router waits up to the shutdown timeout for the handlers to return).
//  4. The relay, dead-letter retention and load-shedding loops stop.
//  5. The transport's publishers and clients close, then the store's pool,
//     then the metrics server.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	wmmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	wmw "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/eventflow/eventflow/handlers"
	"github.com/eventflow/eventflow/middleware"
	"github.com/eventflow/eventflow/schema"
	"github.com/eventflow/eventflow/schema/migrations"
	"github.com/eventflow/eventflow/schema/store"
	"github.com/eventflow/eventflow/transport"
)

// Roles says which parts a process runs.
type Roles struct {
	// API serves the HTTP API and runs the ingest handler.
	API bool
	// Worker runs the process handler.
	Worker bool
}

// App is a running eventflow process.
type App struct {
	cfg       Config
	roles     Roles
	logger    *slog.Logger
	store     store.Store
	transport transport.Transport
	registry  *schema.Registry
	promReg   *prometheus.Registry
	metrics   *middleware.Metrics
	router    *message.Router
	api       *handlers.API
	// shedder refuses ingestion while overloaded (API role only).
	shedder *middleware.Shedder
	// poolStats reads the store's connection pool; nil without one (dev).
	poolStats func() sql.DBStats
	ingest    *handlers.Ingest // API role only
	// publisher is the transport's publisher, timed by Watermill's metrics.
	publisher message.Publisher
	// processHandler is the router's process handler (worker role only);
	// processStopped, taken from it once the router runs, is closed when it
	// stops.
	processHandler *message.Handler
	processStopped <-chan struct{}

	apiListener     net.Listener
	metricsListener net.Listener
	ready           chan struct{}
}

// New connects to the store and the transport, applies migrations when
// configured to, and wires the handlers. Nothing runs until Run.
func New(ctx context.Context, cfg Config, roles Roles, logger *slog.Logger) (*App, error) {
	return newApp(ctx, cfg, roles, logger, hooks{})
}

// hooks let tests wrap the store and transport (with fault injectors).
type hooks struct {
	store     func(store.Store) store.Store
	transport func(transport.Transport) transport.Transport
}

// newRegistry returns the event types a process accepts; the chaos tests'
// child processes add a type of their own (see TestMain).
var newRegistry = schema.DefaultRegistry

func newApp(ctx context.Context, cfg Config, roles Roles, logger *slog.Logger, h hooks) (*App, error) {
	a := &App{cfg: cfg, roles: roles, logger: logger, registry: newRegistry(), ready: make(chan struct{})}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.openTransport(); err != nil {
		_ = a.store.Close()
		return nil, err
	}
	if h.store != nil {
		a.store = h.store(a.store)
	}
	if h.transport != nil {
		a.transport = h.transport(a.transport)
	}
	if err := a.wire(); err != nil {
		a.closeClients()
		return nil, err
	}
	return a, nil
}

func (a *App) openStore(ctx context.Context) error {
	if a.cfg.Dev {
		a.store = store.NewMemory()
		return nil
	}
	if a.cfg.AutoMigrate {
		if err := migrations.EnsureDatabase(ctx, a.cfg.DatabaseURL, a.logger); err != nil {
			return fmt.Errorf("connect to Postgres (DATABASE_URL): %w", err)
		}
	}
	pg, err := store.OpenPostgres(store.PostgresConfig{URL: a.cfg.DatabaseURL, MaxConns: a.cfg.DBMaxConns})
	if err != nil {
		return err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pg.Ping(pingCtx); err != nil {
		_ = pg.Close()
		return fmt.Errorf("connect to Postgres (DATABASE_URL): %w", err)
	}
	if a.cfg.AutoMigrate {
		if _, err := migrations.Up(ctx, pg.DB().DB, a.logger); err != nil {
			_ = pg.Close()
			return err
		}
	}
	a.store = pg
	a.poolStats = pg.DB().Stats
	return nil
}

func (a *App) openTransport() error {
	t, err := openTransport(a.cfg, a.store, newWatermillLogger(a.logger))
	if err != nil {
		return err
	}
	a.transport = t
	return nil
}

func (a *App) wire() error {
	wmLogger := newWatermillLogger(a.logger)
	a.promReg = prometheus.NewRegistry()
	a.promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = middleware.NewMetrics(a.promReg, a.queueDepth)
	middleware.RegisterDeadLetterGauges(a.promReg, a.store.DeadLetterStats)
	if ages, ok := a.transport.(transport.AgeReporter); ok {
		a.promReg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "queue_oldest_age_seconds",
			Help: "Age of the oldest message in the transport not yet acknowledged (waiting or in flight).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			age, err := ages.OldestAge(ctx, a.cfg.Stream)
			if err != nil {
				return -1
			}
			return age.Seconds()
		}))
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: a.cfg.ShutdownTimeout}, wmLogger)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	// Watermill's router metrics first, so they time the whole chain.
	builder := wmmetrics.NewPrometheusMetricsBuilder(a.promReg, "", "")
	builder.HandlerBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 2.5, 5, 10, 30}
	builder.AddPrometheusRouterMetrics(router)
	a.router = router
	// The router times only the publishers of its handlers; ingest and
	// replays publish through the transport's, so it is timed here.
	publisher, err := builder.DecoratePublisher(a.transport.Publisher())
	if err != nil {
		return fmt.Errorf("publisher metrics: %w", err)
	}
	a.publisher = publisher

	checks := map[string]func(context.Context) error{"store": a.store.Ping, "transport": a.transport.Ping}
	a.api = &handlers.API{
		Store: a.store, Registry: a.registry, Strict: a.cfg.StrictIngest, APIKeys: a.cfg.APIKeys,
		Metrics: a.metrics, Logger: a.logger, Checks: checks, Replayer: a.replayer(publisher), ReplayRate: a.cfg.ReplayRate,
		RateLimit: a.cfg.RateLimit, RateBurst: max(a.cfg.RateBurst, int(math.Ceil(a.cfg.RateLimit))),
		Limits: handlers.Limits{
			MaxEventBytes: a.cfg.MaxEventBytes, MaxBatchEvents: a.cfg.MaxBatchEvents,
			MaxBatchBytes: a.cfg.MaxBatchBytes, IngestTimeout: a.cfg.IngestTimeout,
		},
	}
	if a.roles.API {
		a.api.Front = handlers.NewFront()
		a.shedder = middleware.NewShedder(middleware.ShedConfig{
			Backlog:    func(ctx context.Context) (int64, error) { return a.transport.Depth(ctx, a.cfg.Stream) },
			MaxBacklog: a.cfg.ShedBacklog,
			PoolStats:  a.poolStats,
			MaxDBWait:  a.cfg.ShedDBWait,
			MaxMemory:  a.cfg.ShedMemory,
			Metrics:    a.metrics,
			Logger:     a.logger,
		})
		a.api.Shed = a.shedder.Middleware
		ingest := &handlers.Ingest{Store: a.store, Publisher: publisher, Topic: a.cfg.Stream, Metrics: a.metrics, Logger: a.logger,
			BatchWindow: a.cfg.IngestBatchWindow, BatchRequests: a.cfg.IngestBatchRequests, Commits: a.cfg.IngestCommits, Timeout: a.cfg.IngestTimeout}
		if a.cfg.Transport == TransportPostgres {
			outbox, ok := a.transport.(transport.TxPublisher)
			if !ok {
				return errors.New("the postgres transport cannot publish in a transaction")
			}
			ingest.Outbox = outbox
		}
		a.ingest = ingest
		h := router.AddConsumerHandler("ingest", "http", a.api.Front, ingest.Handle)
		h.AddMiddleware(middleware.Correlation(a.logger), wmw.Recoverer)
	}
	if a.roles.Worker {
		window := a.cfg.ProcessBatchWindow
		if a.cfg.Transport == TransportMemory {
			// GoChannel delivers one message at a time per topic (it holds
			// the topic's lock until the ack): nothing would join a batch,
			// and each event would wait out the window alone.
			window = 0
		}
		process := &handlers.Process{Store: a.store, Registry: a.registry, Metrics: a.metrics, Logger: a.logger,
			BatchWindow: window, BatchSize: min(a.cfg.InFlight(), 500), Commits: a.cfg.ProcessCommits, Timeout: a.cfg.HandlerTimeout}
		h := router.AddConsumerHandler("process", a.cfg.Stream, a.transport.Subscriber(), process.Handle)
		a.processHandler = h
		checks["worker"] = a.workerRunning
		// Outermost first; see package middleware for why this order.
		h.AddMiddleware(
			middleware.Correlation(a.logger),
			a.metrics.ActiveWorkersMiddleware,
			a.metrics.DurationMiddleware,
			middleware.DeadLetter{Write: process.WriteDeadLetter, MaxDeliveries: a.cfg.MaxDeliveries,
				Unavailable: store.IsUnavailable, Logger: a.logger}.Middleware,
			// No logger: Attempt logs each failure with the event's ids,
			// which Watermill's retry log lines lack.
			middleware.Retry(middleware.RetryPolicy{
				MaxRetries:      a.cfg.RetryMax,
				InitialInterval: a.cfg.RetryInitialInterval,
				MaxInterval:     a.cfg.RetryMaxInterval,
				OnRetry:         a.metrics.Retries.Inc,
			}, nil),
			middleware.Attempt,
			wmw.Timeout(a.cfg.HandlerTimeout),
			wmw.Recoverer,
		)
	}
	return nil
}

// replayer publishes dead letters again through publisher.
func (a *App) replayer(publisher message.Publisher) *handlers.Replayer {
	return &handlers.Replayer{Store: a.store, Publisher: publisher, Topic: a.cfg.Stream,
		Registry: a.registry, Metrics: a.metrics, Logger: a.logger}
}

// relay returns the relay of stored but unpublished events, or nil where
// there is no such gap: the outbox stores and queues in one transaction,
// and a process without either role publishes nothing.
func (a *App) relay() *handlers.Relay {
	if a.cfg.Transport == TransportPostgres || !(a.roles.API || a.roles.Worker) {
		return nil
	}
	return &handlers.Relay{Store: a.store, Publisher: a.publisher, Topic: a.cfg.Stream,
		After: a.cfg.RelayAfter, Every: a.cfg.RelayInterval, Batch: 500, Metrics: a.metrics, Logger: a.logger}
}

// trimStream deletes the stream entries every consumer group has finished,
// every RedisTrimInterval, until ctx ends.
func (a *App) trimStream(ctx context.Context, t transport.Trimmer) {
	tick := time.NewTicker(a.cfg.RedisTrimInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := t.Trim(ctx, a.cfg.Stream)
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.Warn("cannot trim the stream", "stream", a.cfg.Stream, "error", err)
		case n > 0:
			a.logger.Debug("trimmed the stream", "stream", a.cfg.Stream, "entries", n)
		}
	}
}

// expireDeadLetters deletes dead letters older than the retention, now and
// every hour, until ctx ends.
func (a *App) expireDeadLetters(ctx context.Context) {
	if a.cfg.DeadLetterRetention <= 0 {
		return
	}
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := a.store.PurgeDeadLetters(ctx, time.Now().Add(-a.cfg.DeadLetterRetention))
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.Warn("cannot expire dead letters", "error", err)
		case n > 0:
			a.logger.Info("expired dead letters", "deleted", n, "retention", a.cfg.DeadLetterRetention)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// workerRunning is the /readyz check of the process handler.
func (a *App) workerRunning(context.Context) error {
	select {
	case <-a.processStopped:
		return errors.New("the process handler stopped: its transport subscription ended")
	default:
		return nil
	}
}

// queueDepth backs the queue_depth gauge; -1 when the transport cannot say.
func (a *App) queueDepth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := a.transport.Depth(ctx, a.cfg.Stream)
	if err != nil {
		return -1
	}
	return float64(n)
}

// Listen binds the API and metrics addresses; Run calls it when the caller
// has not. Tests call it with ":0" addresses to learn the ports.
func (a *App) Listen() error {
	var err error
	if a.roles.API && a.apiListener == nil {
		if a.apiListener, err = net.Listen("tcp", a.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on EVENTFLOW_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
		}
	}
	if a.metricsListener == nil {
		if a.metricsListener, err = net.Listen("tcp", a.cfg.MetricsAddr); err != nil {
			return fmt.Errorf("listen on EVENTFLOW_METRICS_ADDR %s: %w", a.cfg.MetricsAddr, err)
		}
	}
	return nil
}

// APIAddr and MetricsAddr are the bound addresses, after Listen.
func (a *App) APIAddr() string     { return a.apiListener.Addr().String() }
func (a *App) MetricsAddr() string { return a.metricsListener.Addr().String() }

// Ready is closed once the handlers run and the servers serve.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Run runs the process until ctx is cancelled, then shuts down in order
// (see the package comment) and returns nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		a.closeClients()
		return err
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", promhttp.HandlerFor(a.promReg, promhttp.HandlerOpts{Registry: a.promReg}))
	// Workers have no API; their health is served beside the metrics.
	metricsMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	metricsMux.Handle("GET /readyz", a.api.Readyz())
	if a.cfg.Pprof {
		metricsMux.HandleFunc("/debug/pprof/", pprof.Index)
		metricsMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		metricsMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	metricsSrv := newServer(metricsMux, 30*time.Second, 30*time.Second)
	// An API request's body must arrive within EVENTFLOW_HTTP_READ_TIMEOUT
	// (else 408); storing and publishing its events may then take up to
	// EVENTFLOW_INGEST_TIMEOUT before the answer goes out.
	apiSrv := newServer(a.api.Handler(), a.cfg.HTTPReadTimeout, a.cfg.HTTPReadTimeout+a.cfg.IngestTimeout+5*time.Second)

	// The router runs on its own context: it must outlive ctx until the
	// HTTP intake has drained.
	routerErr := make(chan error, 1)
	go func() { routerErr <- a.router.Run(context.Background()) }()
	select {
	case <-a.router.Running():
	case err := <-routerErr:
		a.closeClients()
		return fmt.Errorf("router: %w", err)
	}
	if a.processHandler != nil {
		// The router makes the channel when it starts the handler.
		a.processStopped = a.processHandler.Stopped()
	}

	// Background loops (relay, retention, load shedding) run until shutdown
	// cancels loopCtx, whatever started the shutdown, and are waited for
	// before the clients they use close.
	loopCtx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	var loops sync.WaitGroup
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(metricsSrv, a.metricsListener) })
	if a.roles.API {
		g.Go(func() error { return serve(apiSrv, a.apiListener) })
	}
	if a.roles.Worker {
		loops.Go(func() { a.expireDeadLetters(loopCtx) })
		if trimmer, ok := a.transport.(transport.Trimmer); ok && a.cfg.RedisTrimInterval > 0 {
			loops.Go(func() { a.trimStream(loopCtx, trimmer) })
		}
	}
	if relay := a.relay(); relay != nil {
		loops.Go(func() { relay.Run(loopCtx) })
	}
	if a.shedder != nil {
		loops.Go(func() { a.shedder.Run(loopCtx) })
	}
	a.logger.Info("eventflow running", "api", a.roles.API, "worker", a.roles.Worker,
		"transport", a.cfg.Transport, "stream", a.cfg.Stream, "consumer_group", a.cfg.ConsumerGroup,
		"http_addr", a.listenerAddr(a.apiListener), "metrics_addr", a.MetricsAddr())
	if len(a.cfg.APIKeys) == 0 && a.roles.API {
		a.logger.Warn("EVENTFLOW_API_KEYS is empty: the API accepts requests without authentication")
	}
	close(a.ready)

	var runErr error
	select {
	case <-gctx.Done():
	case err := <-routerErr:
		// All handlers stopped (a subscription died): exit so that the
		// supervisor restarts the process.
		runErr = fmt.Errorf("router stopped unexpectedly: %v", err)
		routerErr <- nil
	case <-a.processStopped:
		// The process handler's subscription ended (its stream or consumer
		// group was deleted, say) while the API may still take events:
		// exit rather than accept events nobody processes. The restart
		// subscribes again, recreating the stream and group.
		runErr = errors.New("the process handler stopped: its transport subscription ended")
	}
	a.logger.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()

	a.api.ShutDown()                                     // 1. /readyz → 503
	if err := apiSrv.Shutdown(shutdownCtx); err != nil { // 2. drain HTTP intake
		runErr = errors.Join(runErr, fmt.Errorf("drain HTTP requests: %w", err))
	}
	if err := a.router.Close(); err != nil { // 3. finish in-flight messages
		runErr = errors.Join(runErr, fmt.Errorf("close router: %w", err))
	}
	<-routerErr
	if a.ingest != nil {
		a.ingest.Close() // published marks on their way
	}
	stopLoops() // 4. relay and retention loops
	loops.Wait()
	a.closeClients()                     // 5. transport, store
	_ = metricsSrv.Shutdown(shutdownCtx) // and the metrics last
	if err := g.Wait(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if runErr == nil {
		a.logger.Info("shutdown complete")
	}
	return runErr
}

func (a *App) listenerAddr(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

func (a *App) closeClients() {
	if a.transport != nil {
		if err := a.transport.Close(); err != nil {
			a.logger.Warn("close transport", "error", err)
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.logger.Warn("close store", "error", err)
		}
	}
}

// newServer returns an HTTP server for h. readTimeout bounds reading one
// request, its headers (within 5s) and its body; writeTimeout runs from the
// end of the headers to the end of the answer, so it must cover reading the
// body and the handler's work. Idle keep-alive connections close after two
// minutes.
func newServer(h http.Handler, readTimeout, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(5*time.Second, readTimeout),
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

func serve(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
