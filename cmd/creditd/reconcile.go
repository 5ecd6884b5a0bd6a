package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
)

// runReconcile runs a payment reconciliation through the queue, as the
// scheduler does every quarter hour, and waits for its sweep and the pages
// it fanned out, summing their results: Stripe's
// PaymentIntents created in the last --since against the ledger. It prints
// what it credited and what disagrees; it exits 1 when anything disagrees
// or could not be checked.
func runReconcile(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	since := fs.Duration("since", config.DefaultReconcileWindow, "check the PaymentIntents created this long ago or later")
	timeout := fs.Duration("timeout", 15*time.Minute, "how long to wait for a worker")
	asJSON := jsonFlag(fs)
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	if *since < time.Minute || *since > config.MaxReconcileWindow {
		return invalid("since", "must be between 1m and %s", config.MaxReconcileWindow)
	}
	if *timeout <= 0 {
		return invalid("timeout", "must be positive")
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return err
	}
	client := jobs.NewClient(redisOpt)
	defer client.Close()
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	at := time.Now().UTC()
	id, err := client.Reconcile(ctx, at.Add(-*since), at)
	if err != nil {
		return err
	}
	var sweep jobs.ReconcileSweepResult
	if err := waitPayments(ctx, client, id, &sweep); err != nil {
		return err
	}
	res := jobs.ReconcileResult{Since: at.Add(-*since).Truncate(time.Microsecond), At: at.Truncate(time.Microsecond),
		Credited: []jobs.ReconcileCredit{}, Mismatches: []jobs.Mismatch{}, Partial: sweep.Partial}
	for _, page := range sweep.Tasks {
		var r jobs.ReconcileResult
		if err := waitPayments(ctx, client, page, &r); err != nil {
			return err
		}
		res.Add(r)
	}
	if *asJSON {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else {
		a.printReconcile(res)
	}
	if res.Skipped != "" || res.Partial || len(res.Mismatches) > 0 || len(res.Failed) > 0 || res.Unlisted > 0 {
		return exitStatus(1)
	}
	return nil
}

// waitPayments waits for a payments-queue task and decodes its result.
func waitPayments(ctx context.Context, client *jobs.Client, taskID string, v any) error {
	info, err := client.Wait(ctx, jobs.QueuePayments, taskID)
	if err != nil {
		return fmt.Errorf("%w (is a worker running?)", err)
	}
	if err := json.Unmarshal(info.Result, v); err != nil {
		return fmt.Errorf("task %s: unreadable result: %w", taskID, err)
	}
	return nil
}

func (a *app) printReconcile(res jobs.ReconcileResult) {
	if res.Skipped != "" {
		a.printf("reconciliation skipped: %s\n", res.Skipped)
		return
	}
	a.printf("reconciled payments created since %s: %d customers, %d payment intents, %d credited, %d mismatches\n",
		res.Since.Format(time.RFC3339), res.Customers, res.PaymentIntents, len(res.Credited), len(res.Mismatches))
	for _, cr := range res.Credited {
		a.printf("  credited %s: %s %s, %s credits\n", cr.OrgID, cr.Kind, cr.PaymentID, cr.Credits)
	}
	for _, m := range res.Mismatches {
		a.printf("  mismatch %s: %s payment=%s attempt=%s: %s\n", m.OrgID, m.Kind, m.PaymentID, m.AttemptID, m.Detail)
	}
	for _, f := range res.Failed {
		a.printf("  not checked %s: %s\n", f.OrgID, f.Error)
	}
	if res.Unlisted > 0 {
		a.printf("  %d more credits and mismatches are in the worker's log\n", res.Unlisted)
	}
	if res.Partial {
		a.printf("  more orgs have cards than one run checks (%d pages); the rest is checked by the next run\n", jobs.MaxReconcilePages)
	}
}
