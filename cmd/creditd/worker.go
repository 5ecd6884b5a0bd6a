package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// runWorker serves the queues until SIGINT or SIGTERM. On shutdown asynq
// stops fetching, waits for the tasks in flight (up to --shutdown-timeout)
// and puts back what did not finish; only then does the usage batcher stop,
// so no handler is left waiting for a commit.
func runWorker(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	concurrency := fs.Int("concurrency", 64, "tasks processed at once")
	batchMax := fs.Int("batch-max", 200, "usage events per ledger transaction at most")
	batchWait := fs.Duration("batch-wait", 2*time.Millisecond, "how long a usage batch waits to fill")
	shutdownTimeout := fs.Duration("shutdown-timeout", 20*time.Second, "how long in-flight tasks may take to finish on shutdown")
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > 10000 {
		return invalid("concurrency", "must be between 1 and 10000")
	}
	if *batchMax < 1 || *batchMax > 10000 {
		return invalid("batch-max", "must be between 1 and 10000")
	}
	cfg, err := config.FromEnv(a.getenv)
	if err != nil {
		return err
	}
	catalog, err := config.LoadCatalog(cfg.CatalogPath)
	if err != nil {
		return err
	}
	redisOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return &config.EnvError{Var: config.EnvRedisURL, Reason: "not a valid redis URL"}
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return &config.EnvError{Var: config.EnvDatabaseURL, Reason: "not a valid postgres connection string"}
	}
	poolCfg.MaxConns = int32(min(*concurrency, 32)) // the batcher needs few; the rest is headroom
	pool, err := pgxpool.NewWithConfig(a.ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := ledger.New(catalog, nil)
	batcher := jobs.NewBatcher(l, pool, jobs.BatchConfig{MaxBatch: *batchMax, MaxWait: *batchWait}, log)
	// The batcher outlives the signal: it stops after the server has drained.
	bctx, stopBatcher := context.WithCancel(context.WithoutCancel(a.ctx))
	batcherDone := make(chan struct{})
	go func() { batcher.Run(bctx); close(batcherDone) }()

	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:     *concurrency,
		Queues:          jobs.QueuePriorities(),
		ShutdownTimeout: *shutdownTimeout,
		RetryDelayFunc:  jobs.RetryDelay,
		Logger:          asynqLogger{log},
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			log.Warn("task failed", "task_type", t.Type(), "task_id", id, "err", err, "archived", errors.Is(err, asynq.SkipRetry))
		}),
	})
	if err := srv.Start(jobs.NewMux(jobs.Handlers{Usage: &jobs.UsageHandler{Batcher: batcher}})); err != nil {
		stopBatcher()
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("worker started", "concurrency", *concurrency, "queues", jobs.QueuePriorities())
	<-a.ctx.Done()
	log.Info("worker stopping")
	srv.Shutdown()
	stopBatcher()
	<-batcherDone
	log.Info("worker stopped")
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
