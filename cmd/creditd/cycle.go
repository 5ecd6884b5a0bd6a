package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// cycleSummary is `creditd cycle --json`: what the workers did, the page
// results summed. Orgs counts org visits: an org with two kinds of work due
// (a cycle boundary and an elapsed hold) is visited by both sweeps, and the
// second visit finds nothing left to do.
type cycleSummary struct {
	At time.Time `json:"at"`
	jobs.AdvanceResult
	// Partial: a sweep stopped at jobs.MaxSweepPages; more orgs are due.
	Partial bool `json:"partial,omitempty"`
	// Invoices: what the invoice sweep did, after the cycle work.
	Invoices jobs.InvoiceResult `json:"invoices"`
}

// cyclePreview is `creditd cycle --dry-run --json`.
type cyclePreview struct {
	At     time.Time            `json:"at"`
	DryRun bool                 `json:"dry_run"`
	Orgs   []ledger.CycleReport `json:"orgs"`
	// Invoices are the months that would be invoiced, per org.
	Invoices []ledger.InvoiceReport `json:"invoices"`
}

// runCycle runs (and waits for) all cycle work due as of --at through the
// queue: it enqueues the sweeps a scheduler would, follows them and the page
// tasks they fan out, and sums what the workers did. With --dry-run it
// computes per org what would be done, in rolled-back transactions, and
// changes nothing.
func runCycle(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	atFlag := fs.String("at", "", "the instant to act as of, RFC 3339 (default now); past instants backfill")
	dryRun := fs.Bool("dry-run", false, "print per org what would be granted, expired and rolled over; change nothing")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the workers")
	asJSON := jsonFlag(fs)
	if _, err := a.parse(c, fs, args); err != nil {
		return err
	}
	at := time.Now().UTC()
	if isSet(fs, "at") {
		t, err := parseTime("at", *atFlag)
		if err != nil {
			return err
		}
		at = t.UTC()
	}
	if *timeout <= 0 {
		return invalid("timeout", "must be positive")
	}
	if !*dryRun && at.After(time.Now().Add(ledger.MaxClockSkew)) {
		return invalid("at", "%s is in the future: preview it with --dry-run", at.Format(time.RFC3339))
	}
	if *dryRun {
		if err := a.connect(); err != nil {
			return err
		}
		return a.previewCycles(at, *asJSON)
	}
	redisOpt, err := redisFromEnv(a.getenv)
	if err != nil {
		return err
	}
	client := jobs.NewClient(redisOpt)
	defer client.Close()
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	sum, err := runSweeps(ctx, client, at)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := a.printJSON(sum); err != nil {
			return err
		}
	} else {
		a.printf("cycle work as of %s: %d orgs, %d cycles started, %s granted, %s carried over, %s expired, %d holds released\n",
			at.Format(time.RFC3339), sum.Orgs, sum.Cycles, sum.Granted, sum.Carried, sum.Expired, sum.Released)
		for _, org := range sum.Behind {
			a.printf("  %s: more cycles are due than one run performs; run again as of a later instant\n", org)
		}
		if sum.Partial {
			a.printf("  more orgs are due than one sweep fans out (%d pages); run again as of a later instant\n", jobs.MaxSweepPages)
		}
		for _, f := range sum.Failed {
			a.printf("  %s: not advanced: %s\n", f.OrgID, f.Error)
		}
		a.printf("invoices: %d made for %d orgs, %d charges handed to Stripe\n", sum.Invoices.Invoices, sum.Invoices.Orgs,
			sum.Invoices.Charges)
		for _, f := range sum.Invoices.Failed {
			a.printf("  %s: not invoiced: %s\n", f.OrgID, f.Error)
		}
	}
	if len(sum.Failed) > 0 || len(sum.Invoices.Failed) > 0 {
		return exitStatus(1)
	}
	return nil
}

// runSweeps enqueues the sweep of every kind of due work as of at, waits for
// each and for the page tasks it fanned out, and sums their results.
func runSweeps(ctx context.Context, client *jobs.Client, at time.Time) (cycleSummary, error) {
	sum := cycleSummary{At: at}
	var pages []string
	for _, kind := range ledger.DueKinds {
		id, err := client.Sweep(ctx, kind, at)
		if err != nil {
			return sum, err
		}
		var res jobs.SweepResult
		if err := waitResult(ctx, client, id, &res); err != nil {
			return sum, err
		}
		pages = append(pages, res.Tasks...)
		sum.Partial = sum.Partial || res.Partial
	}
	slices.Sort(pages)
	for _, id := range slices.Compact(pages) {
		var res jobs.AdvanceResult
		if err := waitResult(ctx, client, id, &res); err != nil {
			return sum, err
		}
		sum.Add(res)
	}
	slices.Sort(sum.Behind)
	sum.Behind = slices.Compact(sum.Behind)
	// Invoices last: a month is invoiced once its cycle work is done.
	invoices, partial, err := runInvoiceSweep(ctx, client, at)
	sum.Invoices, sum.Partial = invoices, sum.Partial || partial
	return sum, err
}

// waitResult waits for a sweeps-queue task and decodes its result.
func waitResult(ctx context.Context, client *jobs.Client, taskID string, v any) error {
	info, err := client.Wait(ctx, jobs.QueueSweeps, taskID)
	if err != nil {
		return fmt.Errorf("%w (is a worker running?)", err)
	}
	if err := json.Unmarshal(info.Result, v); err != nil {
		return fmt.Errorf("task %s: unreadable result: %w", taskID, err)
	}
	return nil
}

// previewCycles pages through every org with work due as of at and runs the
// cycle engine on each page in a transaction that is rolled back.
func (a *app) previewCycles(at time.Time, asJSON bool) error {
	due := map[string]bool{}
	for _, kind := range ledger.DueKinds {
		if kind == ledger.DueAlerts {
			continue // every org with rules: the preview is of what a cycle would grant, expire and roll over
		}
		var cursor ledger.DueCursor
		for {
			page, err := a.ledger.DueOrgs(a.ctx, a.pool, kind, at, cursor, ledger.MaxDuePage)
			if err != nil {
				return err
			}
			for _, org := range page.Orgs {
				due[org] = true
			}
			if !page.More {
				break
			}
			cursor = page.Next
		}
	}
	orgs := make([]string, 0, len(due))
	for org := range due {
		orgs = append(orgs, org)
	}
	slices.Sort(orgs)
	preview := cyclePreview{At: at, DryRun: true, Orgs: []ledger.CycleReport{}}
	for chunk := range slices.Chunk(orgs, ledger.MaxCyclePage) {
		reports, err := a.ledger.PreviewCycles(a.ctx, a.pool, chunk, at)
		if err != nil {
			return err
		}
		preview.Orgs = append(preview.Orgs, reports...)
	}
	invoices, err := a.previewInvoices(at)
	if err != nil {
		return err
	}
	preview.Invoices = invoices
	if asJSON {
		return a.printJSON(preview)
	}
	defer a.printInvoicePreview(invoices)
	a.printf("dry run as of %s: %d orgs have work due; nothing was changed\n", at.Format(time.RFC3339), len(preview.Orgs))
	for _, r := range preview.Orgs {
		if r.Error != "" {
			a.printf("%s: cannot advance: %s\n", r.OrgID, r.Error)
			continue
		}
		a.printf("%s:", r.OrgID)
		for _, s := range r.Cycles {
			a.printf(" cycle %s (%s): grant %s", s.Start.Format(time.RFC3339), s.Plan, s.Granted)
			if s.ExpiresAt != nil {
				a.printf(" expiring %s", s.ExpiresAt.Format(time.RFC3339))
			}
			if s.Carried > 0 {
				a.printf(", roll over %s", s.Carried)
			}
			if s.CapExpired > 0 {
				a.printf(", %s over the rollover cap expire", s.CapExpired)
			}
			a.printf(";")
		}
		a.printf(" expire %s in all", r.Expired)
		if r.HoldsReleased > 0 {
			a.printf(", release %d holds", r.HoldsReleased)
		}
		a.printf(", balance after %s\n", r.BalanceAfter)
	}
	return nil
}
