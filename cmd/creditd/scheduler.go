package main

import (
	"log/slog"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// startScheduler builds the schedule from CREDITD_SCHEDULE and starts it;
// stop it with Stop. Any number may run at once (see jobs.Scheduler).
func startScheduler(a *app, client *jobs.Client, log *slog.Logger) (*jobs.Scheduler, error) {
	schedule, err := config.ScheduleFromEnv(a.getenv)
	if err != nil {
		return nil, err
	}
	window, err := config.ReconcileWindowFromEnv(a.getenv)
	if err != nil {
		return nil, err
	}
	s, err := jobs.NewScheduler(client, schedule, ledger.SystemClock, log)
	if err != nil {
		return nil, err
	}
	s.SetReconcileWindow(window)
	s.Start()
	log.Info("scheduler started", "schedule", schedule)
	return s, nil
}

// runScheduler enqueues the cycle sweeps on the schedule until SIGINT or
// SIGTERM. It needs only Redis: the sweeps run in the workers.
func runScheduler(a *app, c *command, args []string) error {
	if _, err := a.parse(c, newFlagSet(c), args); err != nil {
		return err
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	client := jobs.NewClient(redisOpt)
	defer client.Close()
	s, err := startScheduler(a, client, log)
	if err != nil {
		return err
	}
	<-a.ctx.Done()
	s.Stop()
	log.Info("scheduler stopped")
	return nil
}
