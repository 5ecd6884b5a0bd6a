package main

import (
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
)

// daemon is what the long-running processes (worker, web, all) share: the
// validated configuration, the catalog's ledger, a pool, Redis options and a
// JSON logger on stderr.
type daemon struct {
	cfg    config.Config
	redis  asynq.RedisConnOpt
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	log    *slog.Logger
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
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, &config.EnvError{Var: config.EnvDatabaseURL, Reason: "not a valid postgres connection string"}
	}
	poolCfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(a.ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &daemon{
		cfg: cfg, redis: redisOpt, pool: pool, ledger: ledger.New(catalog, nil),
		log: slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level})),
	}, nil
}

func (d *daemon) close() { d.pool.Close() }
