package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/payments"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/notify"
)

// daemon is what the long-running processes (worker, web, all) share: the
// validated configuration, the catalog's ledger, a pool, Redis options and a
// JSON logger on stderr.
type daemon struct {
	cfg     config.Config
	redis   asynq.RedisConnOpt
	pool    *pgxpool.Pool
	poolCfg *pgxpool.Config // pool's settings, for openPool
	ledger  *ledger.Ledger
	log     *slog.Logger
	// The alert channels: email is nil without SMTP_URL.
	email   jobs.EmailSender
	webhook *notify.WebhookSender
}

// openDaemon reads and checks the whole environment and the catalog, then
// connects a pool of at most maxConns connections. Close it with close.
func (a *app) openDaemon(maxConns int32, level slog.Level) (*daemon, error) {
	cfg, err := config.FromEnv(a.getenv)
	if err != nil {
		return nil, err
	}
	catalog, err := config.LoadCatalog(cfg.CatalogPath)
	if err != nil {
		return nil, err
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return nil, err
	}
	var email jobs.EmailSender
	if cfg.SMTPURL != "" {
		sender, err := notify.NewEmailSender(cfg.SMTPURL, cfg.SMTPFrom, notify.EmailOptions{})
		if err != nil {
			return nil, &config.EnvError{Var: config.EnvSMTPURL, Reason: err.Error()}
		}
		email = sender
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, &config.EnvError{Var: config.EnvDatabaseURL, Reason: "not a valid postgres connection string"}
	}
	ledger.ConfigureSessions(poolCfg)
	d := &daemon{
		cfg: cfg, redis: redisOpt, poolCfg: poolCfg, ledger: ledger.New(catalog, nil),
		log:   slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level})),
		email: email, webhook: notify.NewWebhookSender(webhookOptions(cfg)),
	}
	if d.pool, err = d.openPool(a.ctx, maxConns); err != nil {
		return nil, err
	}
	return d, nil
}

// webhookOptions is the webhook delivery policy of the configuration.
func webhookOptions(cfg config.Config) notify.WebhookOptions {
	return notify.WebhookOptions{AllowPrivate: cfg.WebhookAllowPrivate, RequireHTTPS: cfg.WebhookRequireHTTPS}
}

// workerDeps are what the daemon gives a worker it runs.
func (d *daemon) workerDeps(reg prometheus.Registerer) workerDeps {
	deps := workerDeps{Redis: d.redis, Pool: d.pool, Ledger: d.ledger, Log: d.log, Registry: reg,
		Email: d.email, Webhook: d.webhook, LinkBase: d.cfg.LinkBase}
	if d.cfg.StripeSecretKey != "" {
		s := payments.NewStripe(d.cfg.StripeSecretKey, d.cfg.StripeAPIBase)
		deps.Charger, deps.Payments, deps.Invoicer = s, s, s
	} else {
		d.log.Warn("STRIPE_SECRET_KEY is not set: payments are off; recharge attempts fail as payments_not_configured")
	}
	return deps
}

func (d *daemon) close() { d.pool.Close() }

// openPool connects a pool with the daemon's settings (DATABASE_URL, the
// ledger's session settings) and at most maxConns connections: the daemon's
// own, and any other a process needs; the caller closes the others.
func (d *daemon) openPool(ctx context.Context, maxConns int32) (*pgxpool.Pool, error) {
	cfg := d.poolCfg.Copy()
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}
