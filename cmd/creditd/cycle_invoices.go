package main

import (
	"context"
	"time"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
)

// runInvoiceSweep enqueues the invoice sweep as of at, waits for it and the
// invoice:make pages it fanned out, and sums their results. partial: the
// sweep stopped at jobs.MaxSweepPages.
func runInvoiceSweep(ctx context.Context, client *jobs.Client, at time.Time) (sum jobs.InvoiceResult, partial bool, err error) {
	id, err := client.Sweep(ctx, ledger.DueInvoices, at)
	if err != nil {
		return sum, false, err
	}
	var res jobs.SweepResult
	if err := waitResult(ctx, client, id, &res); err != nil {
		return sum, false, err
	}
	for _, id := range res.Tasks {
		var page jobs.InvoiceResult
		if err := waitResult(ctx, client, id, &page); err != nil {
			return sum, res.Partial, err
		}
		sum.Add(page)
	}
	return sum, res.Partial, nil
}

// previewInvoices computes, in rolled-back transactions, the invoices due as
// of at: every month ended by then and not invoiced, per org.
func (a *app) previewInvoices(at time.Time) ([]ledger.InvoiceReport, error) {
	out := []ledger.InvoiceReport{}
	var cursor ledger.DueCursor
	for {
		page, err := a.ledger.DueOrgs(a.ctx, a.pool, ledger.DueInvoices, at, cursor, ledger.MaxCyclePage)
		if err != nil {
			return nil, err
		}
		if len(page.Orgs) > 0 {
			reports, err := a.ledger.PreviewInvoices(a.ctx, a.pool, page.Orgs, at)
			if err != nil {
				return nil, err
			}
			out = append(out, reports...)
		}
		if !page.More {
			return out, nil
		}
		cursor = page.Next
	}
}

// printInvoicePreview prints what a cycle run would invoice.
func (a *app) printInvoicePreview(reports []ledger.InvoiceReport) {
	for _, r := range reports {
		if r.Error != "" {
			a.printf("%s: cannot invoice: %s\n", r.OrgID, r.Error)
			continue
		}
		for _, inv := range r.Made {
			a.printf("%s: invoice %s (%s): fee %s, used %s, closing balance %s\n", r.OrgID, inv.Period, inv.Plan,
				inv.SubscriptionFee, inv.Used, inv.ClosingBalance)
		}
	}
}
