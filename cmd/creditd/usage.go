package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// usageEnqueued is `usage --json` without --wait.
type usageEnqueued struct {
	OrgID    string `json:"org"`
	EventID  string `json:"event_id"`
	TaskID   string `json:"task_id"`
	Enqueued bool   `json:"enqueued"`
}

// runUsage enqueues a usage task, as an application would. With --wait it
// follows the task until the worker has applied it and prints the ledger's
// result; a task the worker archives (the ledger refused the event) is a
// failure with the worker's reason.
func runUsage(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	feature := fs.String("feature", "", "the feature used: priced by the catalog's rate, or a label with AMOUNT or --runs")
	units := fs.Int64("units", 1, "uses of --feature")
	runs := fs.Int64("runs", 0, "runs, counted against the plan's included runs; overage is drawn from the balance")
	event := fs.String("event", "", "event id, unique per org: replaying it changes nothing (required)")
	team := fs.String("team", "", "the team that used it")
	user := fs.String("user", "", "the user that used it")
	wait := fs.Bool("wait", false, "wait until a worker has applied the event, and print the result")
	timeout := fs.Duration("timeout", time.Minute, "how long --wait waits")
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org", "amount?")
	if err != nil {
		return err
	}
	p := jobs.UsagePayload{Version: jobs.UsagePayloadVersion, OrgID: pos[0], EventID: *event, Feature: *feature, Team: *team, User: *user}
	if pos[1] != "" {
		amount, err := parsePositive("amount", pos[1])
		if err != nil {
			return err
		}
		s := amount.String()
		p.Amount = &s
	}
	// Zero means "not given" in the payload, so an explicit zero is refused here.
	if isSet(fs, "units") {
		if *units <= 0 {
			return invalid("units", "must be positive")
		}
		p.Units = *units
	}
	if isSet(fs, "runs") {
		if *runs <= 0 {
			return invalid("runs", "must be positive")
		}
		p.Runs = *runs
	}
	if *timeout <= 0 {
		return invalid("timeout", "must be positive")
	}
	ev, err := p.Event()
	if err != nil {
		var pe *jobs.PayloadError
		if errors.As(err, &pe) {
			return invalid(pe.Field, "%s", pe.Reason)
		}
		return err
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	// Pricing needs the catalog; an unknown feature is bad input, not a task
	// for the worker to archive.
	if err := a.ledger.CheckFeature(ev); err != nil {
		return err
	}
	if _, err := a.requireOrg(ev.OrgID); err != nil {
		return err
	}
	// An event the ledger already holds makes this call a replay.
	_, err = a.ledger.UsageEventStatus(a.ctx, a.pool, ev.OrgID, ev.EventID)
	replay := err == nil
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return err
	}

	client := jobs.NewClient(redisOpt)
	defer client.Close()
	if err := client.EnqueueUsage(a.ctx, p); err != nil {
		return err
	}
	taskID := jobs.UsageTaskID(ev.OrgID, ev.EventID)
	if !*wait {
		if *asJSON {
			return a.printJSON(usageEnqueued{OrgID: ev.OrgID, EventID: ev.EventID, TaskID: taskID, Enqueued: true})
		}
		a.printf("enqueued usage %s/%s as task %s\n", ev.OrgID, ev.EventID, taskID)
		return nil
	}

	r, err := a.waitForUsage(client, ev, *timeout)
	if err != nil {
		return err
	}
	r.Replayed = replay
	if *asJSON {
		return a.printJSON(r)
	}
	a.printf("%s %s/%s", r.Status, r.OrgID, r.EventID)
	if r.Reason != "" {
		a.printf(" (%s)", r.Reason)
	}
	a.printf(": cost %s", r.Cost)
	if r.OverageRuns > 0 {
		a.printf(" for %d overage runs", r.OverageRuns)
	}
	if r.Debt > 0 {
		a.printf(", %s of it as debt", r.Debt)
	}
	a.printf(", balance %s%s\n", r.BalanceAfter, replayedNote(r.Replayed))
	return nil
}

// waitForUsage follows the event's task until it leaves the queue. asynq
// deletes a usage task once its handler returned, and the handler returns
// after the ledger committed, so a task that is gone has been applied: the
// ledger's record is then the result. An archived task is the worker's
// refusal.
func (a *app) waitForUsage(client *jobs.Client, ev ledger.UsageEvent, timeout time.Duration) (ledger.UsageResult, error) {
	ctx, cancel := context.WithTimeout(a.ctx, timeout)
	defer cancel()
	_, err := client.Wait(ctx, jobs.QueueUsage, jobs.UsageTaskID(ev.OrgID, ev.EventID))
	var archived *jobs.ArchivedError
	switch {
	case errors.As(err, &archived):
		return ledger.UsageResult{}, fmt.Errorf("usage %s/%s was refused by the worker: %s", ev.OrgID, ev.EventID, archived.LastErr)
	case err != nil && !errors.Is(err, jobs.ErrTaskGone):
		return ledger.UsageResult{}, fmt.Errorf("usage %s/%s: %w (is a worker running?)", ev.OrgID, ev.EventID, err)
	}
	rec, err := a.ledger.UsageEventStatus(a.ctx, a.pool, ev.OrgID, ev.EventID)
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.UsageResult{}, fmt.Errorf("usage %s/%s: the task left the queue but the ledger has no such event (deleted by an operator?)", ev.OrgID, ev.EventID)
	}
	if err != nil {
		return ledger.UsageResult{}, err
	}
	return rec.Result(ev.OrgID), nil
}

// redisFromEnv reads REDIS_URL: the only setting the queue commands need
// besides DATABASE_URL.
func redisFromEnv(getenv func(string) string) (asynq.RedisConnOpt, error) {
	u := getenv(config.EnvRedisURL)
	if u == "" {
		return nil, &config.EnvError{Var: config.EnvRedisURL, Reason: "required"}
	}
	opt, err := asynq.ParseRedisURI(u)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, &config.EnvError{Var: config.EnvRedisURL, Reason: "not a valid redis URL"}
	}
	return opt, nil
}

// redisPoolSlack is the connections an asynq server uses besides its
// handlers': the fetch loop, heartbeats, lease extensions, the forwarder,
// the recoverer and the janitor.
const redisPoolSlack = 8

// withRedisPool gives an asynq server a connection pool as large as the tasks
// it runs at once. Each task ends with its own Redis call (marking it done)
// from its own goroutine, and go-redis' default pool is 10 per CPU: 20 here.
// With 256 usage tasks in flight, finished tasks queued for those 20
// connections while their slots stayed taken: single events over 10,000
// orgs ran at a median 56% of the no-op rate (7 runs) with the default pool
// and 61% (15 runs) with it sized, the no-op baseline sized alike (README
// "Issue 3's targets, 2026-12-07"). Connections are opened on demand, so an
// idle server holds few.
func withRedisPool(opt asynq.RedisConnOpt, concurrency int) asynq.RedisConnOpt {
	size := concurrency + redisPoolSlack
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		if o.PoolSize < size {
			o.PoolSize = size
		}
		return o
	case asynq.RedisFailoverClientOpt:
		if o.PoolSize < size {
			o.PoolSize = size
		}
		return o
	}
	return opt
}
