package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InvoiceSettings change how an org's invoices are billed; nil fields keep
// what the org has.
type InvoiceSettings struct {
	OrgID string
	// AutoPay: charge the org's invoices to its saved card.
	AutoPay *bool
	// Price is the org's own monthly price in minor units of its currency
	// (enterprise terms); a negative value removes it (the plan's price
	// applies again). It applies to invoices made from then on.
	Price *int64
}

const setInvoiceSettingsSQL = `
UPDATE orgs SET auto_pay = coalesce($2, auto_pay),
                price_minor = CASE WHEN $3::int8 IS NULL THEN price_minor WHEN $3 < 0 THEN NULL ELSE $3 END
WHERE org_id = $1`

// SetInvoiceSettings changes the org's invoice settings and returns the org.
func (l *Ledger) SetInvoiceSettings(ctx context.Context, tx pgx.Tx, s InvoiceSettings) (Org, error) {
	if err := validOrgID(s.OrgID); err != nil {
		return Org{}, err
	}
	if s.Price != nil && *s.Price > int64(MaxAmount) {
		return Org{}, invalid("price", "must be at most %d minor units", int64(MaxAmount))
	}
	tag, err := tx.Exec(ctx, setInvoiceSettingsSQL, s.OrgID, s.AutoPay, s.Price)
	if err != nil {
		return Org{}, mapError(fmt.Errorf("org %s: invoice settings: %w", s.OrgID, err))
	}
	if tag.RowsAffected() == 0 {
		return Org{}, fmt.Errorf("org %s: %w", s.OrgID, ErrNotFound)
	}
	return l.GetOrg(ctx, tx, s.OrgID)
}

// InvoiceCharge is an open invoice to charge through Stripe: the org pays
// automatically and has a saved card, and no attempt failed (a failed one
// waits for Stripe's own retries and their webhooks, or for an operator).
// StripeInvoiceID is set once the Stripe invoice was created.
type InvoiceCharge struct {
	OrgID           string `json:"org"`
	Period          string `json:"period"`
	DueMinor        int64  `json:"due_minor"`
	Currency        string `json:"currency"`
	Plan            string `json:"plan"`
	CustomerID      string `json:"customer_id"`
	PaymentMethodID string `json:"payment_method_id"`
	StripeInvoiceID string `json:"stripe_invoice_id,omitempty"`
}

const invoiceChargesSQL = `
SELECT i.org_id, i.period, i.due_minor, i.currency, i.document->>'plan', m.customer_id, m.payment_method_id,
       coalesce(i.stripe_invoice_id, '')
FROM unnest($1::text[]) AS k(org_id)
JOIN orgs o ON o.org_id = k.org_id AND o.auto_pay
JOIN payment_methods m ON m.org_id = k.org_id
JOIN invoices i ON i.org_id = k.org_id AND i.status = 'open' AND i.due_minor > 0 AND i.payment_error IS NULL
ORDER BY i.org_id, i.period`

// InvoiceCharges lists the invoices of the orgs that are to be charged
// through Stripe and are not paid yet: level-triggered, so a task lost after
// the invoice was made is found again by the next one.
func (l *Ledger) InvoiceCharges(ctx context.Context, db DBTX, orgIDs []string) ([]InvoiceCharge, error) {
	rows, err := db.Query(ctx, invoiceChargesSQL, orgIDs)
	if err != nil {
		return nil, mapError(fmt.Errorf("invoice charges: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (InvoiceCharge, error) {
		var c InvoiceCharge
		err := row.Scan(&c.OrgID, &c.Period, &c.DueMinor, &c.Currency, &c.Plan, &c.CustomerID, &c.PaymentMethodID,
			&c.StripeInvoiceID)
		return c, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("invoice charges: %w", err))
	}
	return out, nil
}

const setStripeInvoiceSQL = `
UPDATE invoices SET stripe_invoice_id = $3
WHERE org_id = $1 AND period = $2 AND (stripe_invoice_id IS NULL OR stripe_invoice_id = $3)`

// SetStripeInvoice records the Stripe invoice that charges the org's
// invoice. Recording the same one again changes nothing; another one is
// ErrConflict.
func (l *Ledger) SetStripeInvoice(ctx context.Context, tx pgx.Tx, orgID, period, stripeInvoiceID string) error {
	if err := ValidPeriod(period); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, setStripeInvoiceSQL, orgID, period, stripeInvoiceID)
	if err != nil {
		return mapError(fmt.Errorf("invoice %s %s: stripe invoice: %w", orgID, period, err))
	}
	if tag.RowsAffected() == 0 {
		if _, err := l.GetInvoice(ctx, tx, orgID, period); err != nil {
			return err
		}
		return fmt.Errorf("%w: invoice %s %s has another Stripe invoice", ErrConflict, orgID, period)
	}
	return nil
}

// The paid state is final: a late failure event does not reopen it.
const markInvoicePaidSQL = `
UPDATE invoices SET status = 'paid', paid_at = $4, payment_error = NULL,
                    stripe_invoice_id = coalesce(stripe_invoice_id, nullif($3, ''))
WHERE org_id = $1 AND period = $2 AND status = 'open'`

const markInvoiceFailedSQL = `
UPDATE invoices SET payment_error = $4, stripe_invoice_id = coalesce(stripe_invoice_id, nullif($3, ''))
WHERE org_id = $1 AND period = $2 AND status = 'open'`

// MarkInvoicePaid records that Stripe collected the invoice (invoice.paid).
// An invoice paid already stays as it was.
func (l *Ledger) MarkInvoicePaid(ctx context.Context, tx pgx.Tx, orgID, period, stripeInvoiceID string, at time.Time) error {
	return l.markInvoice(ctx, tx, markInvoicePaidSQL, orgID, period, stripeInvoiceID, at.UTC())
}

// MarkInvoicePaymentFailed records why Stripe could not collect the invoice
// (invoice.payment_failed); the invoice stays open.
func (l *Ledger) MarkInvoicePaymentFailed(ctx context.Context, tx pgx.Tx, orgID, period, stripeInvoiceID, reason string) error {
	if reason == "" {
		reason = "payment failed"
	}
	return l.markInvoice(ctx, tx, markInvoiceFailedSQL, orgID, period, stripeInvoiceID, reason)
}

func (l *Ledger) markInvoice(ctx context.Context, tx pgx.Tx, query, orgID, period, stripeInvoiceID string, arg any) error {
	if err := validOrgID(orgID); err != nil {
		return err
	}
	if err := ValidPeriod(period); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, query, orgID, period, stripeInvoiceID, arg); err != nil {
		return mapError(fmt.Errorf("invoice %s %s: %w", orgID, period, err))
	}
	if _, err := l.GetInvoice(ctx, tx, orgID, period); err != nil {
		return err
	}
	return nil
}
