package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Payment kinds: what a credited payment was.
const (
	PaymentPurchase = "purchase"
	PaymentRecharge = "recharge"
)

// Payment is one payment credited to an org: the lot it bought and what was
// paid for it.
type Payment struct {
	OrgID     string          `json:"org"`
	PaymentID string          `json:"payment_id"` // the Stripe PaymentIntent
	Kind      string          `json:"kind"`       // purchase or recharge
	LotID     int64           `json:"lot_id"`
	Credits   credits.Credits `json:"credits"`
	Paid      credits.Money   `json:"paid"`
	PaidAt    time.Time       `json:"paid_at"`
}

// The row is written once, with the lot: a replayed grant finds it there.
const insertPaymentSQL = `
INSERT INTO payments (org_id, payment_id, kind, lot_id, credits, amount_minor, currency, paid_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (org_id, payment_id) DO NOTHING`

// recordPayment notes what a credited payment paid, in the grant's
// transaction, and applies the refunds and disputes of it that arrived
// before it was credited (see applyPendingReversals).
func (l *Ledger) recordPayment(ctx context.Context, tx pgx.Tx, kind, paymentID string, g GrantResult, paid credits.Money) error {
	tag, err := tx.Exec(ctx, insertPaymentSQL, g.OrgID, paymentID, kind, g.LotID, int64(g.Amount), paid.Minor, paid.Currency, l.now())
	if err != nil {
		return mapError(fmt.Errorf("record payment %s: %w", paymentID, err))
	}
	if tag.RowsAffected() == 0 {
		return nil // recorded by the first credit
	}
	if err := lockPayment(ctx, tx, paymentID); err != nil {
		return err
	}
	return l.applyPendingReversals(ctx, tx, paymentID)
}

const selectPaymentsSQL = `
SELECT payment_id, kind, lot_id, credits, amount_minor, currency, paid_at FROM payments
WHERE org_id = $1 AND paid_at >= $2 AND paid_at < $3 ORDER BY paid_at, payment_id`

// Payments lists the payments credited to the org in [from, to), oldest
// first.
func (l *Ledger) Payments(ctx context.Context, db DBTX, orgID string, from, to time.Time) ([]Payment, error) {
	rows, err := db.Query(ctx, selectPaymentsSQL, orgID, from, to)
	if err != nil {
		return nil, mapError(fmt.Errorf("payments of org %s: %w", orgID, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Payment, error) {
		p := Payment{OrgID: orgID}
		err := row.Scan(&p.PaymentID, &p.Kind, &p.LotID, &p.Credits, &p.Paid.Minor, &p.Paid.Currency, &p.PaidAt)
		p.PaidAt = p.PaidAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("payments of org %s: %w", orgID, err))
	}
	return out, nil
}

const selectPaymentSQL = `
SELECT org_id, kind, lot_id, credits, amount_minor, currency, paid_at FROM payments WHERE payment_id = $1`

// GetPayment reads a credited payment by its PaymentIntent id; ErrNotFound
// when no org was credited for it.
func (l *Ledger) GetPayment(ctx context.Context, db DBTX, paymentID string) (Payment, error) {
	p := Payment{PaymentID: paymentID}
	err := db.QueryRow(ctx, selectPaymentSQL, paymentID).Scan(&p.OrgID, &p.Kind, &p.LotID, &p.Credits, &p.Paid.Minor,
		&p.Paid.Currency, &p.PaidAt)
	if err != nil {
		return Payment{}, fmt.Errorf("payment %s: %w", paymentID, mapError(err))
	}
	p.PaidAt = p.PaidAt.UTC()
	return p, nil
}
