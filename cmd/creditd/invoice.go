package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// invoiceList is `creditd invoices ORG --json`.
type invoiceList struct {
	OrgID    string           `json:"org"`
	Invoices []ledger.Invoice `json:"invoices"`
}

// runInvoice prints an org's invoice of a month. The invoice the sweep made
// is read; a month that has ended and has none yet (the sweep has not
// reached the org) is invoiced first, exactly as the sweep would, once.
func runInvoice(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	period := fs.String("period", "", "the month, YYYY-MM, in the org's time zone (required)")
	asJSON := jsonFlag(fs)
	asCSV := fs.Bool("csv", false, "print CSV, one row per line: "+strings.Join(render.InvoiceHeader, ","))
	asHTML := fs.Bool("html", false, "print the invoice as a printable HTML page")
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if n := countTrue(*asJSON, *asCSV, *asHTML); n > 1 {
		return usageErrorf(c, "give one of --json, --csv and --html")
	}
	if !isSet(fs, "period") {
		return invalid("period", "required (a month like 2026-11)")
	}
	if err := ledger.ValidPeriod(*period); err != nil {
		return err
	}
	org, err := a.openOrg(pos[0])
	if err != nil {
		return err
	}
	var inv ledger.Invoice
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		inv, err = a.ledger.MakeInvoice(a.ctx, tx, org.ID, *period)
		return err
	})
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		return a.printJSON(inv)
	case *asCSV:
		return render.InvoiceCSV(a.stdout, inv)
	case *asHTML:
		return render.InvoiceHTML(a.stdout, inv)
	}
	a.printInvoice(inv)
	return nil
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// runInvoices lists an org's invoices, newest first.
func runInvoices(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	org, err := a.openOrg(pos[0])
	if err != nil {
		return err
	}
	invs, err := a.ledger.Invoices(a.ctx, a.pool, org.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(invoiceList{OrgID: org.ID, Invoices: invs})
	}
	if len(invs) == 0 {
		a.printf("org %s has no invoices yet\n", org.ID)
		return nil
	}
	tw := a.table()
	fmt.Fprintf(tw, "PERIOD\tSTATUS\tPLAN\tDUE\tUSED\tCLOSING BALANCE\n")
	for _, inv := range invs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inv.Period, inv.Status, inv.Plan, money(inv.Totals.Due, inv.Currency),
			inv.Used, inv.ClosingBalance)
	}
	return tw.Flush()
}

func money(minor int64, currency string) string {
	return credits.Money{Minor: minor, Currency: currency}.String()
}

// printInvoice prints a short readable summary of an invoice.
func (a *app) printInvoice(inv ledger.Invoice) {
	tw := a.table()
	fmt.Fprintf(tw, "invoice\t%s %s (%s)\n", inv.OrgID, inv.Period, inv.Status)
	fmt.Fprintf(tw, "period\t%s to %s (%s)\n", inv.PeriodStart.Format(time.RFC3339), inv.PeriodEnd.Format(time.RFC3339), inv.TimeZone)
	fmt.Fprintf(tw, "plan\t%s, fee %s\n", inv.Plan, inv.SubscriptionFee)
	for _, p := range inv.Payments {
		fmt.Fprintf(tw, "paid\t%s %s for %s credits (%s)\n", p.Kind, p.Amount, p.Credits, p.PaidAt.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "credits\topening %s, granted %s, used %s, expired %s, taken %s, held %s, closing %s, debt %s\n",
		inv.OpeningBalance, inv.Granted, inv.Used, inv.Expired, inv.Taken, inv.HeldChange, inv.ClosingBalance, inv.ClosingDebt)
	fmt.Fprintf(tw, "runs\t%d (%d included, %d overage for %s credits)\n", inv.Runs.Runs, inv.Runs.Included, inv.Runs.Overage,
		inv.Runs.OverageCredits)
	for _, l := range inv.UsageByFeature {
		fmt.Fprintf(tw, "feature %s\t%d events, %s credits, %d rejected\n", orDash(l.Key), l.Events, l.Credits, l.Rejected)
	}
	for _, l := range inv.UsageByTeam {
		fmt.Fprintf(tw, "team %s\t%d events, %s credits, %d rejected\n", orDash(l.Key), l.Events, l.Credits, l.Rejected)
	}
	fmt.Fprintf(tw, "due\t%s (payments in the period %s)\n", money(inv.Totals.Due, inv.Currency), money(inv.Totals.Payments, inv.Currency))
	if inv.StripeInvoiceID != "" {
		fmt.Fprintf(tw, "stripe\t%s\n", inv.StripeInvoiceID)
	}
	if inv.PaymentError != "" {
		fmt.Fprintf(tw, "payment error\t%s\n", inv.PaymentError)
	}
	tw.Flush()
}
