package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// paymentLockSQL serializes, per payment id, crediting a payment with
// refunding or disputing it: without it, a refund that found no payment
// (the credit not yet committed) and was kept pending after the credit read
// the pending rows would never be applied. A reversal takes it before
// reading the payment; a credit takes it after inserting the payment row
// (only a first credit does), so a credit holding the org's lock never waits
// on a reversal that holds this lock and waits for the org's. The first key
// is a class of its own (two int4 keys never collide with goose's single
// bigint key).
const paymentLockSQL = `SELECT pg_advisory_xact_lock(8, hashtext($1))`

func lockPayment(ctx context.Context, tx pgx.Tx, paymentID string) error {
	if _, err := tx.Exec(ctx, paymentLockSQL, paymentID); err != nil {
		return mapError(fmt.Errorf("lock payment %s: %w", paymentID, err))
	}
	return nil
}

const keepRefundSQL = `
INSERT INTO pending_reversals (payment_id, kind, dispute_id, amount_minor, currency, received_at)
VALUES ($1, 'refund', '', $2, $3, $4)
ON CONFLICT (payment_id, kind, dispute_id) DO UPDATE
SET amount_minor = greatest(pending_reversals.amount_minor, excluded.amount_minor)`

const keepDisputeSQL = `
INSERT INTO pending_reversals (payment_id, kind, dispute_id, amount_minor, currency, received_at)
VALUES ($1, 'dispute', $2, $3, $4, $5)
ON CONFLICT (payment_id, kind, dispute_id) DO NOTHING`

// keepReversal remembers a refund or dispute of a payment no org was
// credited for (yet).
func (l *Ledger) keepReversal(ctx context.Context, tx pgx.Tx, r Reversal) error {
	var err error
	if r.Kind == ReversalRefund {
		_, err = tx.Exec(ctx, keepRefundSQL, r.PaymentID, r.Amount.Minor, r.Amount.Currency, l.now())
	} else {
		_, err = tx.Exec(ctx, keepDisputeSQL, r.PaymentID, r.DisputeID, r.Amount.Minor, r.Amount.Currency, l.now())
	}
	if err != nil {
		return mapError(fmt.Errorf("keep %s of %s: %w", r.Kind, r.PaymentID, err))
	}
	return nil
}

const selectPendingSQL = `
SELECT kind, dispute_id, amount_minor, currency FROM pending_reversals WHERE payment_id = $1 ORDER BY received_at, kind DESC, dispute_id`

const deletePendingSQL = `DELETE FROM pending_reversals WHERE payment_id = $1`

// applyPendingReversals applies, in the transaction that credits a payment,
// the refunds and disputes of it that arrived first. One that cannot apply
// (another currency, a dispute id recorded for another payment) is dropped:
// it must not undo the credit.
func (l *Ledger) applyPendingReversals(ctx context.Context, tx pgx.Tx, paymentID string) error {
	rows, err := tx.Query(ctx, selectPendingSQL, paymentID)
	if err != nil {
		return mapError(fmt.Errorf("pending reversals of %s: %w", paymentID, err))
	}
	pending, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reversal, error) {
		r := Reversal{PaymentID: paymentID}
		err := row.Scan(&r.Kind, &r.DisputeID, &r.Amount.Minor, &r.Amount.Currency)
		return r, err
	})
	if err != nil {
		return mapError(fmt.Errorf("pending reversals of %s: %w", paymentID, err))
	}
	if len(pending) == 0 {
		return nil
	}
	for _, r := range pending {
		_, err := l.reverse(ctx, tx, r)
		var v *ValidationError
		if err != nil && !errors.As(err, &v) && !errors.Is(err, ErrConflict) {
			return err
		}
	}
	if _, err := tx.Exec(ctx, deletePendingSQL, paymentID); err != nil {
		return mapError(fmt.Errorf("pending reversals of %s: %w", paymentID, err))
	}
	return nil
}
