package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// defaultUsageConcurrency is how many usage and hold tasks a worker runs at
// once. Its handlers mostly wait for the group commit, and the more of them
// wait, the larger each commit: `creditd load`, 100,000 single-event tasks
// over 10,000 orgs on 2 cores, applied 52% of asynq's no-op rate at 64 (one
// server for all queues), 56% at 64 and 62–77% (median 68%) at 256 with
// usage on a server of its own; 512 was no better than 256.
const defaultUsageConcurrency = 256

// workerOptions are a worker's settings: `creditd worker`'s flags, which
// addFlags also gives any other command that runs a worker.
type workerOptions struct {
	Concurrency      int           // payment, alert, sweep and report tasks processed at once
	UsageConcurrency int           // usage and hold tasks processed at once
	BatchMax         int           // usage events per ledger transaction at most
	BatchWait        time.Duration // how long a usage batch waits to fill
	BatchFlushers    int           // usage transactions in flight at once
	BatchMergeMax    int           // events per transaction applying several usage:batch tasks of one org
	ShutdownTimeout  time.Duration // how long in-flight tasks may take to finish on shutdown
}

// addFlags registers the worker's flags on fs, with their defaults, writing
// into o.
func (o *workerOptions) addFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Concurrency, "concurrency", 64, "payment, alert, sweep and report tasks processed at once")
	fs.IntVar(&o.UsageConcurrency, "usage-concurrency", defaultUsageConcurrency, "usage and hold tasks processed at once (a server of their own)")
	fs.IntVar(&o.BatchMax, "batch-max", 200, "usage events per ledger transaction at most")
	fs.DurationVar(&o.BatchWait, "batch-wait", 2*time.Millisecond, "how long a usage batch waits to fill")
	fs.IntVar(&o.BatchFlushers, "batch-flushers", 1, "usage transactions in flight at once")
	fs.IntVar(&o.BatchMergeMax, "batch-merge-max", 8000, "usage events per transaction at most when batch tasks of one org are applied together")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight tasks may take to finish on shutdown")
}

// validate checks the bounds; errors name the flag.
func (o workerOptions) validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > 10000:
		return invalid("concurrency", "must be between 1 and 10000")
	case o.UsageConcurrency < 1 || o.UsageConcurrency > 10000:
		return invalid("usage-concurrency", "must be between 1 and 10000")
	case o.BatchMax < 1 || o.BatchMax > 10000:
		return invalid("batch-max", "must be between 1 and 10000")
	case o.BatchWait <= 0 || o.BatchWait > time.Second:
		return invalid("batch-wait", "must be more than 0 and at most 1s")
	case o.BatchFlushers < 1 || o.BatchFlushers > 64:
		return invalid("batch-flushers", "must be between 1 and 64")
	case o.BatchMergeMax < 1 || o.BatchMergeMax > 100000:
		return invalid("batch-merge-max", "must be between 1 and 100000")
	case o.ShutdownTimeout <= 0 || o.ShutdownTimeout > time.Hour:
		return invalid("shutdown-timeout", "must be more than 0 and at most 1h")
	}
	return nil
}

// workerDeps is what a worker runs on. The caller owns them: it closes the
// pool only after Shutdown has returned.
type workerDeps struct {
	Redis asynq.RedisConnOpt // required
	Pool  *pgxpool.Pool      // required
	// UsagePool, when set, is the usage server's (the batcher, usage batches,
	// holds), so that usage queued on a busy org's lock cannot take the
	// connections payments and sweeps need; nil: Pool for everything.
	UsagePool *pgxpool.Pool
	Ledger    *ledger.Ledger // required
	Log       *slog.Logger   // required
	// Registry receives the worker's metrics (jobs.Metrics); when nil they
	// are kept but not registered anywhere.
	Registry prometheus.Registerer
	// The alert channels (Email nil: SMTP is not configured) and the base of
	// the links in messages.
	Email    jobs.EmailSender
	Webhook  jobs.WebhookSender
	LinkBase string
	// Charger charges saved cards, Payments reads them back for
	// reconciliation and Invoicer charges invoices; all nil when
	// STRIPE_SECRET_KEY is not set.
	Charger  jobs.Charger
	Payments jobs.PaymentLister
	Invoicer jobs.Invoicer
}

// runningWorker is a started worker: two asynq servers (usage, and the
// other queues: jobs.UsageServerQueues) and the usage batcher their
// handlers commit through.
type runningWorker struct {
	usageSrv    *asynq.Server
	otherSrv    *asynq.Server
	stopBatcher context.CancelFunc
	batcherDone chan struct{}
	log         *slog.Logger
	stopOnce    sync.Once
	queue       *asynq.Client // the sweeps' fan-out and the outbox relay
	stopRelay   context.CancelFunc
	relayDone   chan struct{}
	relayClient *jobs.Client
}

// startWorker starts serving the queues in the background; stop it with
// Shutdown. Handlers run on contexts of their own, not derived from any
// caller's: a SIGTERM must let them finish, which Shutdown waits for.
func startWorker(opts workerOptions, d workerDeps) (*runningWorker, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if d.Redis == nil || d.Pool == nil || d.Ledger == nil || d.Log == nil {
		return nil, errors.New("worker: redis, pool, ledger and log are required")
	}
	metrics, err := jobs.NewMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	reconcileMetrics, err := jobs.NewReconcileMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	usagePool := d.UsagePool
	if usagePool == nil {
		usagePool = d.Pool
	}
	batcher := ledger.NewBatcher(d.Ledger, usagePool,
		ledger.BatchConfig{MaxBatch: opts.BatchMax, MaxWait: opts.BatchWait, Flushers: opts.BatchFlushers,
			MaxMerge: opts.BatchMergeMax, Observe: metrics.ObserveBatch}, d.Log)
	// The batcher outlives the signal: it stops after the server has drained.
	bctx, stopBatcher := context.WithCancel(context.Background())
	w := &runningWorker{stopBatcher: stopBatcher, batcherDone: make(chan struct{}), log: d.Log, queue: asynq.NewClient(d.Redis)}
	go func() { batcher.Run(bctx); close(w.batcherDone) }()

	serverConfig := func(concurrency int, queues map[string]int) asynq.Config {
		return asynq.Config{
			Concurrency:     concurrency,
			Queues:          queues,
			ShutdownTimeout: opts.ShutdownTimeout,
			// An idle processor sleeps this long before it looks for tasks
			// again: asynq's 1 s default put 0.5–1.5 s on every event
			// arriving at a quiet worker (p99 1.4 s at half load, 134 ms
			// with 50 ms; README "Performance"). The cost is 20 Redis round
			// trips a second per server when idle.
			TaskCheckInterval: 50 * time.Millisecond,
			RetryDelayFunc:    jobs.RetryDelay,
			Logger:            asynqLogger{d.Log},
			// No ErrorHandler: jobs.Logging logs every failed task once.
		}
	}
	w.usageSrv = asynq.NewServer(withRedisPool(d.Redis, opts.UsageConcurrency),
		serverConfig(opts.UsageConcurrency, jobs.UsageServerQueues()))
	w.otherSrv = asynq.NewServer(withRedisPool(d.Redis, opts.Concurrency),
		serverConfig(opts.Concurrency, jobs.OtherServerQueues()))
	mux := jobs.NewMux(jobs.Handlers{
		Usage:          &jobs.UsageHandler{Batcher: batcher},
		UsageBatch:     &jobs.UsageBatchHandler{Batcher: batcher},
		Hold:           &jobs.HoldHandler{Ledger: d.Ledger, DB: usagePool},
		Sweep:          &jobs.SweepHandler{Ledger: d.Ledger, DB: d.Pool, Queue: w.queue},
		Advance:        &jobs.AdvanceHandler{Ledger: d.Ledger, DB: d.Pool, Log: d.Log},
		Deliver:        &jobs.DeliverHandler{Ledger: d.Ledger, DB: d.Pool, Email: d.Email, Webhook: d.Webhook, LinkBase: d.LinkBase},
		Recharge:       &jobs.RechargeHandler{Ledger: d.Ledger, DB: d.Pool, Charger: d.Charger},
		Stripe:         &jobs.StripeEventHandler{Ledger: d.Ledger, DB: d.Pool},
		ReconcileSweep: &jobs.ReconcileSweepHandler{Ledger: d.Ledger, DB: d.Pool, Queue: w.queue},
		Reconcile:      &jobs.ReconcileHandler{Ledger: d.Ledger, DB: d.Pool, Stripe: d.Payments, Log: d.Log, Metrics: reconcileMetrics},
		Invoice:        &jobs.InvoiceHandler{Ledger: d.Ledger, DB: d.Pool, Queue: w.queue, Log: d.Log},
		InvoicePay:     &jobs.InvoicePayHandler{Ledger: d.Ledger, DB: d.Pool, Invoicer: d.Invoicer},
	})
	mux.Use(jobs.Chain(d.Log, metrics)...)
	abort := func(err error) error {
		stopBatcher()
		<-w.batcherDone
		_ = w.queue.Close()
		return err
	}
	// Each server only fetches from its own queues, so one mux serves both.
	if err := w.usageSrv.Start(mux); err != nil {
		return nil, abort(fmt.Errorf("start worker (usage queue): %w", err))
	}
	if err := w.otherSrv.Start(mux); err != nil {
		w.usageSrv.Shutdown()
		return nil, abort(fmt.Errorf("start worker (other queues): %w", err))
	}
	w.relayClient = jobs.NewClient(d.Redis)
	relay := &jobs.Relay{Ledger: d.Ledger, DB: d.Pool, Client: w.relayClient, Log: d.Log}
	rctx, stopRelay := context.WithCancel(context.Background())
	w.stopRelay, w.relayDone = stopRelay, make(chan struct{})
	go func() { relay.Run(rctx); close(w.relayDone) }()
	d.Log.Info("worker started", "usage_concurrency", opts.UsageConcurrency, "usage_queues", jobs.UsageServerQueues(),
		"concurrency", opts.Concurrency, "queues", jobs.OtherServerQueues())
	return w, nil
}

// Shutdown stops fetching tasks, waits for those in flight (up to the
// shutdown timeout) and puts back what did not finish; only then does it
// stop the usage batcher, so no handler is left waiting for a commit. It may
// be called more than once.
func (w *runningWorker) Shutdown() {
	w.stopOnce.Do(func() {
		w.log.Info("worker stopping")
		w.stopRelay()
		<-w.relayDone
		// Both servers drain at once, so shutdown takes one timeout, not two.
		var drained sync.WaitGroup
		for _, srv := range []*asynq.Server{w.usageSrv, w.otherSrv} {
			drained.Add(1)
			go func() { defer drained.Done(); srv.Shutdown() }()
		}
		drained.Wait()
		w.stopBatcher()
		<-w.batcherDone
		if err := errors.Join(w.queue.Close(), w.relayClient.Close()); err != nil {
			w.log.Warn("close redis client", "err", err)
		}
		w.log.Info("worker stopped")
	})
}

// runWorker serves the queues until SIGINT or SIGTERM, then shuts the
// worker down (see runningWorker.Shutdown).
func runWorker(a *app, c *command, args []string) error {
	cpuProfile, args := takeHiddenFlag(args, "cpuprofile")
	fs := newFlagSet(c)
	var opts workerOptions
	opts.addFlags(fs)
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9090; a bare :PORT listens on 127.0.0.1); off when empty")
	logLevel := fs.String("log-level", "info", "least severe log level written: debug (also every task done), info, warn or error")
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return invalid("log-level", "must be debug, info, warn or error")
	}
	listenAddr, err := metricsListenAddr(*metricsAddr)
	if err != nil {
		return err
	}
	// Two pools, one per asynq server (workerDeps.UsagePool). Usage: the
	// batcher needs few connections, the rest is for usage batches and holds.
	// The other queues: sweeps and invoices work in pages, so a few
	// transactions at once keep two cores busy.
	d, err := a.openDaemon(int32(min(opts.Concurrency, 16)), level)
	if err != nil {
		return err
	}
	defer d.close()
	usagePool, err := d.openPool(a.ctx, int32(min(opts.UsageConcurrency, 32)))
	if err != nil {
		return err
	}
	defer usagePool.Close()
	log := d.log
	reg := newMetricsRegistry()
	var ms *metricsServer
	if listenAddr != "" {
		if ms, err = serveMetrics(listenAddr, reg, log); err != nil {
			return err
		}
		log.Info("metrics listening", "addr", ms.Addr(), "url", "http://"+ms.Addr()+"/metrics")
	}
	deps := d.workerDeps(reg)
	deps.UsagePool = usagePool
	w, err := startWorker(opts, deps)
	if err != nil {
		return errors.Join(err, ms.Shutdown(context.Background()))
	}
	<-a.ctx.Done()
	w.Shutdown()
	// The metrics are served until the worker has drained.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), 5*time.Second)
	defer cancel()
	return ms.Shutdown(sctx)
}

// metricsListenAddr checks --metrics-addr and returns where to listen: a
// bare ":PORT" means 127.0.0.1, since metrics are not for the world unless
// asked for ("0.0.0.0:PORT").
func metricsListenAddr(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", invalid("metrics-addr", "must be HOST:PORT or :PORT, like 127.0.0.1:9090")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// metricsServer serves one registry's /metrics on a listener of its own, for
// a process that runs no web server.
type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// serveMetrics listens on addr (so a taken port fails here, at once) and
// serves g at /metrics in the background until Shutdown.
func serveMetrics(addr string, g prometheus.Gatherer, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: errLog, MaxRequestsInFlight: 4, Timeout: 10 * time.Second,
	}))
	s := &metricsServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}}
	go func() {
		// The worker goes on without its metrics: they are not worth
		// stopping the queues for.
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on (with the port chosen when the
// address asked for port 0).
func (s *metricsServer) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server, letting scrapes in flight finish until ctx
// ends. A nil server has nothing to stop.
func (s *metricsServer) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return errors.Join(fmt.Errorf("metrics shutdown: %w", err), s.srv.Close())
	}
	return nil
}

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...))
	os.Exit(1)
}
