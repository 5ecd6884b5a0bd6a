package render

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

//go:embed templates/invoice.html.tmpl
var templates embed.FS

// invoicePage is parsed once; html/template escapes every value for the
// context it appears in (text, attribute), so names like "<Acme & Co>"
// print as text.
var invoicePage = template.Must(template.New("invoice.html.tmpl").Funcs(template.FuncMap{"label": label}).
	ParseFS(templates, "templates/invoice.html.tmpl"))

// invoiceView is the invoice with what the template cannot compute itself:
// dates in the org's zone and money with its currency.
type invoiceView struct {
	ledger.Invoice
	Month       string // "November 2026"
	FirstDay    string // "1 Nov 2026"
	LastDay     string // "30 Nov 2026"
	Created     string
	Paid        string // "" while unpaid
	Fee         string
	Payments    []paymentView
	Subtotal    credits.Credits // credits bought by the payments
	TotalFee    string
	TotalPaid   string
	TotalDue    string
	HasRejected bool
}

type paymentView struct {
	ledger.InvoicePayment
	Date   string
	Amount string
}

// dateLayout is how dates print on the page.
const dateLayout = "2 Jan 2006"

// InvoiceHTML writes the invoice as a printable HTML page (A4, no external
// resources, no JavaScript). Dates are in the invoice's time zone.
func InvoiceHTML(w io.Writer, inv ledger.Invoice) error {
	zone, err := time.LoadLocation(inv.TimeZone)
	if err != nil || inv.TimeZone == "" {
		return fmt.Errorf("invoice %s %s: time zone %q: %w", inv.OrgID, inv.Period, inv.TimeZone, err)
	}
	withCurrency := func(minor int64) string { return credits.Money{Minor: minor, Currency: inv.Currency}.String() }
	v := invoiceView{
		Invoice:   inv,
		Month:     inv.PeriodStart.In(zone).Format("January 2006"),
		FirstDay:  inv.PeriodStart.In(zone).Format(dateLayout),
		LastDay:   inv.PeriodEnd.Add(-time.Nanosecond).In(zone).Format(dateLayout),
		Created:   inv.CreatedAt.In(zone).Format(dateLayout),
		Fee:       inv.SubscriptionFee.String(),
		TotalFee:  withCurrency(inv.Totals.Subscription),
		TotalPaid: withCurrency(inv.Totals.Payments),
		TotalDue:  withCurrency(inv.Totals.Due),
	}
	if inv.PaidAt != nil {
		v.Paid = inv.PaidAt.In(zone).Format(dateLayout)
	}
	for _, p := range inv.Payments {
		v.Payments = append(v.Payments, paymentView{InvoicePayment: p, Date: p.PaidAt.In(zone).Format(dateLayout), Amount: p.Amount.String()})
		v.Subtotal += p.Credits
	}
	for _, l := range append(append([]ledger.UsageLine{}, inv.UsageByFeature...), inv.UsageByTeam...) {
		v.HasRejected = v.HasRejected || l.Rejected > 0
	}
	// Render into a buffer: a template error must not leave half a page.
	var buf bytes.Buffer
	if err := invoicePage.Execute(&buf, v); err != nil {
		return fmt.Errorf("invoice %s %s: html: %w", inv.OrgID, inv.Period, err)
	}
	_, err = buf.WriteTo(w)
	return err
}
