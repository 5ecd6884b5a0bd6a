package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/creditd/creditd/jobs"
)

// allMaxConns bounds the pool of `creditd all`, shared by worker and web.
const allMaxConns = 40

// runAll runs the worker, the web server and the scheduler in one process,
// for development and small installations, sharing one pool, one Redis
// client and one /metrics registry. On SIGTERM the web server stops taking requests and the
// worker drains, as each does alone.
func runAll(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	var opts workerOptions
	opts.addFlags(fs)
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	if err := opts.validate(); err != nil {
		return err
	}
	d, err := a.openDaemon(allMaxConns, slog.LevelInfo)
	if err != nil {
		return err
	}
	defer d.close()
	if d.cfg.APIToken == "" {
		d.log.Warn("CREDITD_API_TOKEN is not set: the operator token is disabled, so /monitor/ is closed and /v1 takes org tokens only")
	}
	reg := newMetricsRegistry()
	w, err := startWorker(opts, d.workerDeps(reg))
	if err != nil {
		return err
	}
	client := jobs.NewClient(d.redis)
	defer client.Close()
	web, err := startWeb(webDeps{Addr: d.cfg.HTTPAddr, OperatorToken: d.cfg.APIToken, Ledger: d.ledger, Pool: d.pool,
		Redis: d.redis, Log: d.log, Registry: reg, Jobs: client, LinkBase: d.cfg.LinkBase, WebhookPolicy: webhookOptions(d.cfg),
		StripeWebhookSecret: d.cfg.StripeWebhookSecret})
	if err != nil {
		w.Shutdown()
		return err
	}
	sched, err := startScheduler(a, client, d.log)
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), opts.ShutdownTimeout)
		defer cancel()
		w.Shutdown()
		return errors.Join(err, web.Shutdown(sctx))
	}
	d.log.Info("web listening", "addr", web.Addr(), "ui", "http://"+web.Addr()+"/monitor/")
	var failed error
	select {
	case <-a.ctx.Done():
	case err := <-web.Failed():
		failed = fmt.Errorf("web: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), opts.ShutdownTimeout)
	defer cancel()
	// Stop ticking and taking requests first, then drain the tasks they may
	// have enqueued.
	sched.Stop()
	webErr := web.Shutdown(sctx)
	w.Shutdown()
	d.log.Info("creditd all stopped")
	return errors.Join(failed, webErr)
}
