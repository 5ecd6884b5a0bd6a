package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

var periodPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// ValidPeriod checks a period name, YYYY-MM.
func ValidPeriod(period string) error {
	if !periodPattern.MatchString(period) {
		return invalid("period", "%q is not a month like 2026-11", period)
	}
	return nil
}

// The document holds what was computed; the columns what changes after:
// the status, the Stripe invoice, the payment.
const invoiceColumns = `document, status, stripe_invoice_id, payment_error, paid_at`

func scanInvoice(row pgx.Row) (Invoice, error) {
	var doc []byte
	var status string
	var stripeID, payErr *string
	var paidAt *time.Time
	if err := row.Scan(&doc, &status, &stripeID, &payErr, &paidAt); err != nil {
		return Invoice{}, err
	}
	var inv Invoice
	if err := json.Unmarshal(doc, &inv); err != nil {
		return Invoice{}, fmt.Errorf("invoice document: %w", err)
	}
	inv.Status, inv.StripeInvoiceID, inv.PaymentError, inv.PaidAt = status, "", "", nil
	if stripeID != nil {
		inv.StripeInvoiceID = *stripeID
	}
	if payErr != nil {
		inv.PaymentError = *payErr
	}
	if paidAt != nil {
		t := paidAt.UTC()
		inv.PaidAt = &t
	}
	return inv, nil
}

const selectInvoiceSQL = `SELECT ` + invoiceColumns + ` FROM invoices WHERE org_id = $1 AND period = $2`

// GetInvoice reads the org's invoice of a period; ErrNotFound when it has
// not been made.
func (l *Ledger) GetInvoice(ctx context.Context, db DBTX, orgID, period string) (Invoice, error) {
	if err := validOrgID(orgID); err != nil {
		return Invoice{}, err
	}
	if err := ValidPeriod(period); err != nil {
		return Invoice{}, err
	}
	inv, err := scanInvoice(db.QueryRow(ctx, selectInvoiceSQL, orgID, period))
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s %s: %w", orgID, period, mapError(err))
	}
	return inv, nil
}

// MaxInvoiceList bounds one listing of an org's invoices (ten years).
const MaxInvoiceList = 120

const listInvoicesSQL = `SELECT ` + invoiceColumns + ` FROM invoices WHERE org_id = $1 ORDER BY period DESC LIMIT $2`

// Invoices lists the org's invoices, newest first, at most MaxInvoiceList.
func (l *Ledger) Invoices(ctx context.Context, db DBTX, orgID string) ([]Invoice, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, listInvoicesSQL, orgID, MaxInvoiceList)
	if err != nil {
		return nil, mapError(fmt.Errorf("invoices of %s: %w", orgID, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Invoice, error) { return scanInvoice(row) })
	if err != nil {
		return nil, mapError(fmt.Errorf("invoices of %s: %w", orgID, err))
	}
	return out, nil
}

// MakeInvoice returns the org's invoice of a period, making it first when it
// has not been made: the period must have ended by the ledger's clock and
// may not be before the month the org was created in. Made out of turn (an
// earlier month not invoiced yet), it is the same invoice the sweep would
// make, and the sweep later finds it made.
func (l *Ledger) MakeInvoice(ctx context.Context, tx pgx.Tx, orgID, period string) (Invoice, error) {
	if inv, err := l.GetInvoice(ctx, tx, orgID, period); !errors.Is(err, ErrNotFound) {
		return inv, err
	}
	org, err := l.GetOrg(ctx, tx, orgID)
	if err != nil {
		return Invoice{}, err
	}
	loc, err := loadZone(org.TimeZone)
	if err != nil {
		return Invoice{}, err
	}
	first, _ := time.ParseInLocation("2006-01", period, loc)
	start, end, _ := MonthOf(first, loc)
	created, _, _ := MonthOf(org.CreatedAt, loc)
	now := l.now()
	switch {
	case end.After(now):
		return Invoice{}, invalid("period", "%s has not ended yet in %s", period, org.TimeZone)
	case start.Before(created):
		return Invoice{}, invalid("period", "%s is before org %s was created", period, orgID)
	}
	var nextExpiry *time.Time
	if err := tx.QueryRow(ctx, `SELECT next_expiry_at FROM balances WHERE org_id = $1`, orgID).Scan(&nextExpiry); err != nil {
		return Invoice{}, mapError(fmt.Errorf("invoice %s %s: %w", orgID, period, err))
	}
	// next is the month's end: invoiced in turn, the org moves on to the next
	// month; out of turn (an earlier month is still due) it stays.
	d := invoiceDue{org: org, next: end, nextCycle: org.NextCycleAt, nextExpiry: nextExpiry, period: period, start: start,
		end: end, loc: loc}
	if !d.ready() {
		if _, err := l.advanceCycles(ctx, tx, []string{orgID}, now); err != nil {
			return Invoice{}, fmt.Errorf("invoice %s %s: cycle work first: %w", orgID, period, err)
		}
		if err := tx.QueryRow(ctx, `SELECT b.next_cycle_at, b.next_expiry_at FROM balances b WHERE b.org_id = $1`, orgID).
			Scan(&d.nextCycle, &d.nextExpiry); err != nil {
			return Invoice{}, mapError(fmt.Errorf("invoice %s %s: %w", orgID, period, err))
		}
		if !d.ready() {
			return Invoice{}, fmt.Errorf("%w: org %s: its cycle work before %s cannot be done", ErrConflict, orgID,
				end.Format(time.RFC3339))
		}
	}
	rows, failed, err := l.computeInvoices(ctx, tx, []invoiceDue{d})
	if err != nil {
		return Invoice{}, err
	}
	if msg, ok := failed[orgID]; ok {
		return Invoice{}, fmt.Errorf("%w: %s", ErrConflict, msg)
	}
	made, err := l.storeInvoices(ctx, tx, rows)
	if err != nil {
		return Invoice{}, err
	}
	if err := l.raiseInvoiceAlerts(ctx, tx, made); err != nil {
		return Invoice{}, err
	}
	return l.GetInvoice(ctx, tx, orgID, period)
}
