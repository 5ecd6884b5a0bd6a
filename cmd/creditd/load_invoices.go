package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// invoicesLoadSummary is `creditd load --mode invoices --json`.
type invoicesLoadSummary struct {
	Mode              string             `json:"mode"`
	Orgs              int                `json:"orgs"`
	EventsPerOrg      int                `json:"events_per_org"`
	OrgPrefix         string             `json:"org_prefix"`
	Period            string             `json:"period"`
	SetupSeconds      float64            `json:"setup_seconds"`
	At                time.Time          `json:"at"`
	Seconds           float64            `json:"seconds"`
	InvoicesPerSecond float64            `json:"invoices_per_second"`
	Invoices          jobs.InvoiceResult `json:"invoices"`
	WorkerRSS         *rssSummary        `json:"worker_rss,omitempty"`
}

// The usage of an invoice load: features and teams the events cycle through.
var (
	loadInvoiceFeatures = []string{"microservice", "custom_query", "pricing_recommendation", "restock_prediction"}
	loadInvoiceTeams    = []string{"web", "data", "ops", ""}
)

// loadInvoices measures the monthly invoices through the queue: it creates
// orgs on plan standard as of the start of last month, grants their
// allocation and records eventsPerOrg usage events each over last month's
// first days (several features and teams), with a ledger whose clock reads
// last month (setup, not timed), then times the invoice sweep as of now,
// which has the workers invoice last month for every org in pages.
func (r *loadRun) loadInvoices(ctx context.Context, eventsPerOrg int) (*invoicesLoadSummary, error) {
	now := time.Now().UTC()
	lastMonth := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	r.ids = make([]string, r.cfg.orgs)
	width := len(strconv.Itoa(r.cfg.orgs - 1))
	for i := range r.ids {
		r.ids[i] = fmt.Sprintf("%s-%0*d", r.cfg.prefix, width, i)
	}
	sum := &invoicesLoadSummary{Mode: "invoices", Orgs: r.cfg.orgs, EventsPerOrg: eventsPerOrg, OrgPrefix: r.cfg.prefix,
		Period: lastMonth.Format("2006-01")}
	r.status("creating %d orgs %s-* with %d usage events each in %s", r.cfg.orgs, r.cfg.prefix, eventsPerOrg, sum.Period)
	start := time.Now()
	if err := r.prepareInvoices(ctx, lastMonth, eventsPerOrg); err != nil {
		return nil, err
	}
	sum.SetupSeconds = time.Since(start).Seconds()

	var rss *rssSampler
	if r.cfg.workerPID != 0 {
		rss = startRSS(r.cfg.workerPID)
	}
	client := jobs.NewClient(r.redis)
	defer client.Close()
	sum.At = time.Now().UTC()
	start = time.Now()
	res, _, err := runInvoiceSweep(ctx, client, sum.At)
	if rss != nil {
		sum.WorkerRSS = rss.stop()
	}
	if err != nil {
		return nil, err
	}
	sum.Seconds = time.Since(start).Seconds()
	sum.Invoices = res
	if len(res.Failed) > 0 {
		return nil, errors.New("some orgs were not invoiced: " + res.Failed[0].OrgID + ": " + res.Failed[0].Error)
	}
	// Every invoice the sweep made counts, also those of orgs outside the
	// run that happened to be due in the same database.
	sum.InvoicesPerSecond = float64(res.Invoices) / sum.Seconds
	sum.Invoices.Periods = nil // one line per org: the count says it
	return sum, nil
}

// prepareInvoices creates the run's orgs and their month of usage, in
// transactions of loadOrgChunk orgs, loadOrgParallel at a time.
func (r *loadRun) prepareInvoices(ctx context.Context, lastMonth time.Time, eventsPerOrg int) error {
	at := lastMonth.Add(time.Minute)
	// The orgs are created, and their usage recorded, by a ledger whose
	// clock reads last month: its entries are dated in the month invoiced.
	l := ledger.New(r.a.ledger.Catalog(), ledger.ClockFunc(func() time.Time { return at }))
	var wg sync.WaitGroup
	chunks := make(chan []string)
	errs := make(chan error, loadOrgParallel)
	for range loadOrgParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for ids := range chunks {
				if err == nil {
					err = r.prepareChunk(ctx, l, ids, lastMonth, eventsPerOrg)
				}
			}
			errs <- err
		}()
	}
	for chunk := range slices.Chunk(r.ids, loadOrgChunk) {
		chunks <- chunk
	}
	close(chunks)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("prepare orgs: %w", err)
	}
	return nil
}

// prepareChunk creates orgs anchored at the start of last month, performs
// that boundary (their allocation) and records their events, in batches of
// jobs.MaxBatchEvents per transaction.
func (r *loadRun) prepareChunk(ctx context.Context, l *ledger.Ledger, ids []string, lastMonth time.Time, eventsPerOrg int) error {
	err := ledger.WithRetry(ctx, r.a.pool, func(tx pgx.Tx) error {
		for _, id := range ids {
			if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "standard", Anchor: &lastMonth, NoDefaultAlerts: true}); err != nil {
				return err
			}
		}
		_, err := l.AdvanceCycles(ctx, tx, ids, lastMonth.Add(time.Minute))
		return err
	})
	if err != nil {
		return err
	}
	events := make([]ledger.UsageEvent, 0, len(ids)*eventsPerOrg)
	for _, id := range ids {
		for e := range eventsPerOrg {
			events = append(events, ledger.UsageEvent{OrgID: id, EventID: "e" + strconv.Itoa(e),
				Feature: loadInvoiceFeatures[e%len(loadInvoiceFeatures)], Units: 1,
				Team: loadInvoiceTeams[(e/len(loadInvoiceFeatures))%len(loadInvoiceTeams)]})
		}
	}
	for batch := range slices.Chunk(events, jobs.MaxBatchEvents) {
		err := ledger.WithRetry(ctx, r.a.pool, func(tx pgx.Tx) error {
			_, err := l.RecordUsage(ctx, tx, batch)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
