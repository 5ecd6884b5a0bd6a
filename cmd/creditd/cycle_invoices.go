package main

import (
	"time"

	"github.com/creditd/creditd/ledger"
)

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
