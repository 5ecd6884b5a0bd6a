package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/httpapi"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/notify"
)

// HTTP server limits: a slow or stuck client cannot hold a connection or
// memory for long. Writes get more time than reads because asynqmon's pages
// and history pages can be large.
const (
	webReadHeaderTimeout = 5 * time.Second
	webReadTimeout       = 30 * time.Second
	webWriteTimeout      = 60 * time.Second
	webIdleTimeout       = 2 * time.Minute
	webMaxHeaderBytes    = 64 << 10
	webMaxConns          = 16
)

// webDeps is what the web server runs with. `creditd all` builds them once
// and shares the pool, ledger, Redis options and registry with the worker.
type webDeps struct {
	Addr          string             // where to listen (CREDITD_HTTP_ADDR); port 0 picks one
	OperatorToken string             // CREDITD_API_TOKEN; empty disables the operator token
	Ledger        *ledger.Ledger     // required
	Pool          *pgxpool.Pool      // required
	Redis         asynq.RedisConnOpt // required
	Log           *slog.Logger       // required
	// Jobs enqueues usage; when nil the server makes its own client and
	// closes it on Shutdown.
	Jobs *jobs.Client
	// Registry receives the HTTP and queue metrics and is what /metrics
	// serves; when nil, a fresh one with the Go and process collectors.
	Registry *prometheus.Registry
	// LinkBase, WebhookPolicy and StripeWebhookSecret: see httpapi.Config.
	LinkBase            string
	WebhookPolicy       notify.WebhookOptions
	StripeWebhookSecret string
}

// webServer is a running `creditd web`: the API handler on an http.Server.
type webServer struct {
	srv     *http.Server
	api     *httpapi.Server
	ln      net.Listener
	jobs    *jobs.Client // closed on Shutdown when the server made it
	serveCh chan error
}

// newMetricsRegistry is a registry with the Go runtime and process metrics,
// for a process that has none yet.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startWeb listens on d.Addr (so a taken port fails here, at once) and serves
// the API in the background until Shutdown. Request contexts do not derive
// from any caller's context: a SIGTERM must let in-flight requests finish,
// which Shutdown waits for.
func startWeb(d webDeps) (*webServer, error) {
	if d.Ledger == nil || d.Pool == nil || d.Redis == nil || d.Log == nil {
		return nil, errors.New("web: ledger, pool, redis and log are required")
	}
	w := &webServer{serveCh: make(chan error, 1)}
	if d.Jobs == nil {
		w.jobs = jobs.NewClient(d.Redis)
		d.Jobs = w.jobs
	}
	if d.Registry == nil {
		d.Registry = newMetricsRegistry()
	}
	api, err := httpapi.New(httpapi.Config{
		Ledger: d.Ledger, DB: d.Pool, Jobs: d.Jobs, Redis: d.Redis, OperatorToken: d.OperatorToken,
		Logger: d.Log, Registerer: d.Registry, Gatherer: d.Registry,
		LinkBase: d.LinkBase, WebhookPolicy: d.WebhookPolicy, StripeWebhookSecret: d.StripeWebhookSecret,
	})
	if err != nil {
		w.closeJobs()
		return nil, err
	}
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		api.Close()
		w.closeJobs()
		return nil, fmt.Errorf("web: %w", err)
	}
	w.api, w.ln = api, ln
	w.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: webReadHeaderTimeout,
		ReadTimeout:       webReadTimeout,
		WriteTimeout:      webWriteTimeout,
		IdleTimeout:       webIdleTimeout,
		MaxHeaderBytes:    webMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn),
	}
	go func() {
		err := w.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		w.serveCh <- err
	}()
	return w, nil
}

// Addr is the address the server listens on (with the port chosen when
// CREDITD_HTTP_ADDR asked for port 0).
func (w *webServer) Addr() string { return w.ln.Addr().String() }

// Failed delivers the error that stopped the server on its own, if it does
// (it does not after Shutdown).
func (w *webServer) Failed() <-chan error { return w.serveCh }

// Shutdown stops accepting connections, waits for requests in flight until
// ctx ends (then closes what is left), and releases the Redis connections.
func (w *webServer) Shutdown(ctx context.Context) error {
	err := w.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, w.srv.Close())
	}
	return errors.Join(err, w.api.Close(), w.closeJobs())
}

func (w *webServer) closeJobs() error {
	if w.jobs == nil {
		return nil
	}
	c := w.jobs
	w.jobs = nil
	return c.Close()
}

// runWeb serves the HTTP API, the operators' UI, health and metrics until
// SIGINT or SIGTERM, then lets requests in flight finish.
func runWeb(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long requests in flight may take to finish on shutdown")
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	d, err := a.openDaemon(webMaxConns, slog.LevelInfo)
	if err != nil {
		return err
	}
	defer d.close()
	log, cfg := d.log, d.cfg
	if cfg.APIToken == "" {
		log.Warn("CREDITD_API_TOKEN is not set: the operator token is disabled, so /monitor/ is closed and /v1 takes org tokens only")
	}
	w, err := startWeb(webDeps{Addr: cfg.HTTPAddr, OperatorToken: cfg.APIToken, Ledger: d.ledger,
		Pool: d.pool, Redis: d.redis, Log: log, LinkBase: cfg.LinkBase, WebhookPolicy: webhookOptions(cfg),
		StripeWebhookSecret: cfg.StripeWebhookSecret})
	if err != nil {
		return err
	}
	log.Info("web listening", "addr", w.Addr(), "ui", "http://"+w.Addr()+"/monitor/")
	select {
	case <-a.ctx.Done():
	case err := <-w.Failed():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), *shutdownTimeout)
		defer cancel()
		return errors.Join(fmt.Errorf("web: %w", err), w.Shutdown(sctx))
	}
	log.Info("web stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), *shutdownTimeout)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		return fmt.Errorf("web shutdown: %w", err)
	}
	log.Info("web stopped")
	return nil
}
