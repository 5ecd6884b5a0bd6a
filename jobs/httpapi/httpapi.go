// Package httpapi is creditd's HTTP face, served by `creditd web`: the API
// under /v1 for applications written in other languages (record usage,
// single events or batches; reserve, capture and release holds; read an
// org's balance and history; list notifications; set alert rules and
// webhook receivers), the operators' asynqmon UI at /monitor/, and
// /healthz, /readyz and /metrics.
//
// It lives under jobs because it is the HTTP face of the jobs task
// contract: POST /v1/orgs/{org}/usage builds exactly the usage:record and
// usage:batch tasks that jobs.Client enqueues for Go applications, checked
// by the same validation, so an event sent over HTTP and one sent from Go
// are the same task, applied by the same workers. Holds are the exception:
// the caller needs the answer at once, so they are applied to the ledger
// synchronously, in the request.
//
// Every request under /v1 needs a bearer token: the operator token
// (CREDITD_API_TOKEN) reaches every org; an org token (ledger.CreateToken,
// `creditd token create`) reaches only its own org, and a member token only
// the routes that do not need an admin. /monitor/ takes the operator token
// only, as a bearer token or as the password of HTTP basic auth (so a
// browser can log in). Bad input gets a 4xx with a JSON body
// {"error", "field", "code"} naming the field, and nothing is enqueued or
// written for it.
package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/notify"
)

// Limits and timeouts the API applies unless Config says otherwise.
const (
	// DefaultMaxBodyBytes bounds a request body: a batch of
	// jobs.MaxBatchEvents events with modest metadata fits.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultReadyTimeout bounds each check of /readyz.
	DefaultReadyTimeout = 2 * time.Second
	// DefaultHistoryLimit is the page size of GET .../history without ?limit.
	DefaultHistoryLimit = 1000
)

// DB is what the API needs of Postgres: reads, transactions for holds, and
// a ping for /readyz. A *pgxpool.Pool is one.
type DB interface {
	ledger.DBTX
	ledger.TxBeginner
	Ping(ctx context.Context) error
}

// Config is everything the API depends on; nothing is global.
type Config struct {
	Ledger *ledger.Ledger     // required: reads, holds and token lookups
	DB     DB                 // required: the pool the ledger reads and writes through
	Jobs   *jobs.Client       // required: enqueues usage
	Redis  asynq.RedisConnOpt // required: asynqmon, the queue metrics and /readyz

	// OperatorToken is CREDITD_API_TOKEN: every org and the UI. Empty
	// disables it (no bearer token, empty or not, is then the operator).
	OperatorToken string

	Logger *slog.Logger // default: discard
	// Registerer receives the API's metrics and the asynq queue collector;
	// Gatherer is what /metrics serves. Both required (there is no global
	// registry); usually the same *prometheus.Registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Clock      ledger.Clock // times requests; default ledger.SystemClock

	MaxBodyBytes int64         // default DefaultMaxBodyBytes
	ReadyTimeout time.Duration // default DefaultReadyTimeout

	// StripeWebhookSecret is STRIPE_WEBHOOK_SECRET: POST /stripe/webhook
	// answers 503 without it.
	StripeWebhookSecret string

	// LinkBase is CREDITD_LINK_BASE, for the links of rendered notifications.
	LinkBase string
	// WebhookPolicy is what webhook receivers must satisfy to be added:
	// the workers' delivery policy.
	WebhookPolicy notify.WebhookOptions
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = ledger.SystemClock
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"Ledger", c.Ledger == nil}, {"DB", c.DB == nil}, {"Jobs", c.Jobs == nil}, {"Redis", c.Redis == nil},
		{"Registerer", c.Registerer == nil}, {"Gatherer", c.Gatherer == nil},
	} {
		if f.nil {
			errs = append(errs, fmt.Errorf("httpapi: Config.%s is required", f.name))
		}
	}
	return errors.Join(errs...)
}

// Server is the HTTP handler of `creditd web`. Close it after the
// http.Server using it has shut down.
type Server struct {
	cfg           Config
	log           *slog.Logger
	operatorHash  *[sha256.Size]byte // nil: no operator token
	mux           *http.ServeMux
	monitor       *asynqmon.HTTPHandler
	inspector     *asynq.Inspector
	redis         redis.UniversalClient
	registered    []prometheus.Collector
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	queues        *queueCollector
	crossOrigin   *http.CrossOriginProtection
	readyChecks   []readyCheck
	monitorPrefix string
}

// New builds the API. It connects to nothing yet (Redis and Postgres are
// dialled on first use), so it works while they are down; /readyz tells.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("httpapi: unsupported Redis connection option %T", cfg.Redis)
	}
	s := &Server{
		cfg:           cfg,
		log:           cfg.Logger,
		mux:           http.NewServeMux(),
		redis:         rc,
		inspector:     asynq.NewInspector(cfg.Redis),
		crossOrigin:   http.NewCrossOriginProtection(),
		monitorPrefix: "/monitor",
	}
	if cfg.OperatorToken != "" {
		h := sha256.Sum256([]byte(cfg.OperatorToken))
		s.operatorHash = &h
	}
	s.monitor = asynqmon.New(asynqmon.Options{
		RootPath:         s.monitorPrefix,
		RedisConnOpt:     cfg.Redis,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(formatPayload),
		ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
	})
	s.readyChecks = []readyCheck{
		{"postgres", func(ctx context.Context) error { return cfg.DB.Ping(ctx) }},
		{"redis", func(ctx context.Context) error { return rc.Ping(ctx).Err() }},
	}
	if err := s.registerMetrics(); err != nil {
		s.Close()
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}))
	s.crossOrigin.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden",
			msg: "cross-origin request refused: the operators' UI accepts changes only from its own pages"})
	}))
	// Browsers send basic auth on their own, so the UI's actions (re-run,
	// delete) are guarded against cross-site requests as well.
	s.mux.Handle(s.monitorPrefix+"/", s.crossOrigin.Handler(s.operatorOnly(s.monitor)))

	s.handleOrg("POST /v1/orgs/{org}/usage", ledger.RoleMember, s.postUsage)
	s.handleOrg("GET /v1/orgs/{org}/balance", ledger.RoleMember, s.getBalance)
	s.handleOrg("GET /v1/orgs/{org}/history", ledger.RoleMember, s.getHistory)
	s.handleOrg("GET /v1/orgs/{org}/report", ledger.RoleMember, s.getReport)
	s.handleOrg("POST /v1/orgs/{org}/holds", ledger.RoleMember, s.postHold)
	s.handleOrg("POST /v1/orgs/{org}/holds/{id}/capture", ledger.RoleMember, s.captureHold)
	s.handleOrg("POST /v1/orgs/{org}/holds/{id}/release", ledger.RoleMember, s.releaseHold)
	s.handleOrg("GET /v1/orgs/{org}/notifications", ledger.RoleMember, s.getNotifications)
	s.handleOrg("GET /v1/orgs/{org}/alerts", ledger.RoleMember, s.getAlerts)
	// Changing alerts and their receivers is billing configuration: admins.
	s.handleOrg("POST /v1/orgs/{org}/alerts", ledger.RoleAdmin, s.postAlert)
	s.handleOrg("DELETE /v1/orgs/{org}/alerts/{id}", ledger.RoleAdmin, s.deleteAlert)
	s.handleOrg("GET /v1/orgs/{org}/webhooks", ledger.RoleAdmin, s.getWebhooks)
	s.handleOrg("POST /v1/orgs/{org}/webhooks", ledger.RoleAdmin, s.postWebhook)
	s.handleOrg("DELETE /v1/orgs/{org}/webhooks/{id}", ledger.RoleAdmin, s.deleteWebhook)
	s.mux.HandleFunc("POST /stripe/webhook", s.stripeWebhook)
	s.handleOrg("PUT /v1/orgs/{org}/payment-method", ledger.RoleAdmin, s.putPaymentMethod)
	s.handleOrg("GET /v1/orgs/{org}/recharge", ledger.RoleMember, s.getRecharge)
	s.handleOrg("PUT /v1/orgs/{org}/recharge", ledger.RoleAdmin, s.putRecharge)
	s.handleOrg("GET /v1/orgs/{org}/invoices", ledger.RoleMember, s.getInvoices)
	s.handleOrg("GET /v1/orgs/{org}/invoices/{period}", ledger.RoleMember, s.getInvoice)
}

func (s *Server) registerMetrics() error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "creditd", Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "creditd", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	// Queue depth, latency, processed and failed totals per queue, read from
	// Redis at each scrape. Registered unchecked: its Describe would read
	// Redis, and New must not wait for a Redis that is down.
	s.queues = &queueCollector{Collector: metrics.NewQueueMetricsCollector(s.inspector)}
	for _, c := range []prometheus.Collector{s.requests, s.latency, s.queues} {
		if err := s.cfg.Registerer.Register(c); err != nil {
			return fmt.Errorf("httpapi: register metrics: %w", err)
		}
		s.registered = append(s.registered, c)
	}
	return nil
}

// queueCollector wraps asynq's queue collector. It describes no metrics, so
// registering it reads nothing (prometheus checks its metrics at each scrape
// instead). Such an unchecked collector cannot be unregistered, so Close
// silences it instead: its inspector is closed then.
type queueCollector struct {
	prometheus.Collector
	closed atomic.Bool
}

func (*queueCollector) Describe(chan<- *prometheus.Desc) {}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.closed.Load() {
		c.Collector.Collect(ch)
	}
}

// Close unregisters the API's metrics (the queue collector, which cannot be
// unregistered, goes silent) and closes its Redis connections.
// The jobs client and the database belong to the caller.
func (s *Server) Close() error {
	for _, c := range s.registered {
		s.cfg.Registerer.Unregister(c)
	}
	s.registered = nil
	if s.queues != nil {
		s.queues.closed.Store(true)
	}
	return errors.Join(s.monitor.Close(), s.inspector.Close(), s.redis.Close())
}

// ServeHTTP answers one request: every response is logged and counted, and
// a panic becomes a 500 with a JSON body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Clock.Now()
	info := &requestInfo{}
	r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // net/http's way to abort a response: not a bug
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "route", routeLabel(r),
				"panic", fmt.Sprint(v), "stack", stack())
			if !rec.wroteHeader {
				s.writeError(rec, r, &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error"})
			}
		}
		s.observe(r, rec, info, s.cfg.Clock.Now().Sub(start))
	}()
	s.dispatch(rec, r)
}

// dispatch routes the request. What the mux itself would answer (no route:
// 404; a route for other methods: 405) is answered in JSON like every other
// error.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.mux.Handler(r); pattern == "" {
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				msg: r.Method + " is not allowed here; allowed: " + probe.header.Get("Allow")})
			return
		}
		s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such route: " + r.URL.Path})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// headerProbe records what the mux's own 404 and 405 handlers would answer.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
func (p *headerProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
