package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/creditd/creditd/ledger"
)

// InvoiceHeader is the header row of InvoiceCSV. Every row carries the org,
// period and currency, so the CSVs of many invoices can be concatenated.
var InvoiceHeader = []string{"org", "period", "currency", "section", "item", "kind", "count", "rejected", "credits", "amount", "date"}

// Sections of InvoiceCSV, in the order they are written.
const (
	SectionInvoice      = "invoice"          // item status (kind: the status), period_start, period_end (date), created, paid
	SectionSubscription = "subscription"     // item: the plan; amount: the fee
	SectionPayment      = "payment"          // item: the payment id; kind: purchase or recharge; credits, amount, date
	SectionFeature      = "usage_by_feature" // item: the feature; count: events; rejected; credits
	SectionTeam         = "usage_by_team"    // item: the team; count: events; rejected; credits
	SectionRuns         = "runs"             // items runs, included, overage (count); overage also credits
	SectionBalance      = "balance"          // items opening_balance, granted, used, expired, taken, closing_balance, closing_debt (credits)
	SectionTotal        = "total"            // items subscription, payments, due (amount)
)

// InvoiceCSV writes the invoice as CSV: InvoiceHeader, then one row per
// line of each section. Empty cells are fields that do not apply to the row.
func InvoiceCSV(w io.Writer, inv ledger.Invoice) error {
	cw := csv.NewWriter(w)
	row := func(section, item, kind, count, rejected, credits, amount, date string) {
		_ = cw.Write([]string{cell(inv.OrgID), inv.Period, inv.Currency, section, cell(item), kind, count, rejected, credits, amount, date})
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	cur := func(minor int64) string { return money(minor, inv.Currency) }

	_ = cw.Write(InvoiceHeader)
	row(SectionInvoice, "status", inv.Status, "", "", "", "", "")
	row(SectionInvoice, "period_start", "", "", "", "", "", stamp(inv.PeriodStart))
	row(SectionInvoice, "period_end", "", "", "", "", "", stamp(inv.PeriodEnd))
	row(SectionInvoice, "created", "", "", "", "", "", stamp(inv.CreatedAt))
	if inv.PaidAt != nil {
		row(SectionInvoice, "paid", "", "", "", "", "", stamp(*inv.PaidAt))
	}
	row(SectionSubscription, inv.Plan, "", "", "", "", inv.SubscriptionFee.Decimal(), "")
	for _, p := range inv.Payments {
		row(SectionPayment, p.PaymentID, p.Kind, "", "", p.Credits.String(), p.Amount.Decimal(), stamp(p.PaidAt))
	}
	for _, l := range inv.UsageByFeature {
		row(SectionFeature, label(l.Key), "", n(l.Events), n(l.Rejected), l.Credits.String(), "", "")
	}
	for _, l := range inv.UsageByTeam {
		row(SectionTeam, label(l.Key), "", n(l.Events), n(l.Rejected), l.Credits.String(), "", "")
	}
	row(SectionRuns, "runs", "", n(inv.Runs.Runs), "", "", "", "")
	row(SectionRuns, "included", "", n(inv.Runs.Included), "", "", "", "")
	row(SectionRuns, "overage", "", n(inv.Runs.Overage), "", inv.Runs.OverageCredits.String(), "", "")
	for _, b := range []struct {
		item string
		v    fmt.Stringer
	}{
		{"opening_balance", inv.OpeningBalance}, {"granted", inv.Granted}, {"used", inv.Used}, {"expired", inv.Expired},
		{"taken", inv.Taken}, {"closing_balance", inv.ClosingBalance}, {"closing_debt", inv.ClosingDebt},
	} {
		row(SectionBalance, b.item, "", "", "", b.v.String(), "", "")
	}
	row(SectionTotal, "subscription", "", "", "", "", cur(inv.Totals.Subscription), "")
	row(SectionTotal, "payments", "", "", "", "", cur(inv.Totals.Payments), "")
	row(SectionTotal, "due", "", "", "", "", cur(inv.Totals.Due), "")
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("invoice %s %s: csv: %w", inv.OrgID, inv.Period, err)
	}
	return nil
}

// ReportHeader is the header row of ReportCSV.
var ReportHeader = []string{"section", "key", "applied", "rejected", "credits", "units", "runs", "overage_runs"}

// ReportCSV writes a usage report as CSV: ReportHeader, one row per group
// (section: the grouping, team, user or feature; key: the group's name),
// then the totals (section "total", key empty).
func ReportCSV(w io.Writer, rep ledger.UsageReport) error {
	cw := csv.NewWriter(w)
	row := func(section, key string, u ledger.ReportUsage) {
		_ = cw.Write([]string{section, cell(key), strconv.FormatInt(u.Applied, 10), strconv.FormatInt(u.Rejected, 10),
			u.Credits.String(), strconv.FormatInt(u.Units, 10), strconv.FormatInt(u.Runs, 10), strconv.FormatInt(u.OverageRuns, 10)})
	}
	_ = cw.Write(ReportHeader)
	for _, g := range rep.Groups {
		row(string(rep.By), label(g.Key), g.ReportUsage)
	}
	row("total", "", rep.Totals)
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report %s: csv: %w", rep.OrgID, err)
	}
	return nil
}

// cell guards a name a user chose (an org, team, user, feature or payment
// id) against spreadsheet formula injection: a name starting with = + - @
// or a tab or carriage return gets a leading apostrophe, which spreadsheets
// show as text and never evaluate. Numbers are written as they are.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// stamp prints an instant in RFC 3339, UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
