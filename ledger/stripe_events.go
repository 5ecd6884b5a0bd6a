package ledger

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

var eventIDPattern = regexp.MustCompile(`^evt_[A-Za-z0-9_]{1,250}$`)

const insertStripeEventSQL = `
INSERT INTO stripe_events (event_id, type, payload, received_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (event_id) DO NOTHING`

// RecordStripeEvent stores a verified webhook event by its id. It reports
// whether the id is new: a delivery seen before stores nothing.
func (l *Ledger) RecordStripeEvent(ctx context.Context, db DBTX, id, typ string, payload []byte) (bool, error) {
	if !eventIDPattern.MatchString(id) {
		return false, invalid("id", "%q is not a Stripe event id", id)
	}
	tag, err := db.Exec(ctx, insertStripeEventSQL, id, typ, payload, l.now())
	if err != nil {
		return false, mapError(fmt.Errorf("record stripe event %s: %w", id, err))
	}
	return tag.RowsAffected() == 1, nil
}

// StripeEvent is a stored webhook event.
type StripeEvent struct {
	ID          string
	Type        string
	OrgID       string
	Payload     []byte
	ProcessedAt *time.Time
	Result      string
}

const selectStripeEventSQL = `
SELECT type, coalesce(org_id, ''), payload, processed_at, coalesce(result, '') FROM stripe_events WHERE event_id = $1`

// GetStripeEvent reads a stored event; ErrNotFound when there is none.
func (l *Ledger) GetStripeEvent(ctx context.Context, db DBTX, id string) (StripeEvent, error) {
	e := StripeEvent{ID: id}
	if err := db.QueryRow(ctx, selectStripeEventSQL, id).Scan(&e.Type, &e.OrgID, &e.Payload, &e.ProcessedAt, &e.Result); err != nil {
		return StripeEvent{}, fmt.Errorf("stripe event %s: %w", id, mapError(err))
	}
	return e, nil
}

const finishStripeEventSQL = `
UPDATE stripe_events SET processed_at = $2, result = $3, org_id = nullif($4, '') WHERE event_id = $1`

// FinishStripeEvent records what processing the event did, in the caller's
// transaction (with the ledger change it made).
func (l *Ledger) FinishStripeEvent(ctx context.Context, tx pgx.Tx, id, orgID, result string) error {
	if _, err := tx.Exec(ctx, finishStripeEventSQL, id, l.now(), result, orgID); err != nil {
		return mapError(fmt.Errorf("finish stripe event %s: %w", id, err))
	}
	return nil
}

const orgOfCustomerSQL = `SELECT org_id FROM payment_methods WHERE customer_id = $1 ORDER BY org_id LIMIT 1`

// OrgOfCustomer finds the org whose saved card belongs to a Stripe
// customer; ErrNotFound when none does.
func (l *Ledger) OrgOfCustomer(ctx context.Context, db DBTX, customerID string) (string, error) {
	var org string
	if err := db.QueryRow(ctx, orgOfCustomerSQL, customerID).Scan(&org); err != nil {
		return "", fmt.Errorf("customer %s: %w", customerID, mapError(err))
	}
	return org, nil
}

// CreditPurchase credits a one-time purchase at the catalog's rate (at
// least its minimum): CreditOrder without a package or custom credits.
func (l *Ledger) CreditPurchase(ctx context.Context, tx pgx.Tx, orgID, paymentID string, paid credits.Money) (GrantResult, error) {
	return l.CreditOrder(ctx, tx, orgID, paymentID, paid, PurchaseOrder{})
}
