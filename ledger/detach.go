package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const insertDetachedSQL = `
INSERT INTO detached_payment_methods (payment_method_id, org_id, detached_at) VALUES ($1, nullif($2, ''), $3)
ON CONFLICT (payment_method_id) DO NOTHING`

const orgOfPaymentMethodSQL = `SELECT org_id FROM payment_methods WHERE payment_method_id = $1 ORDER BY org_id LIMIT 1`

const deletePaymentMethodSQL = `DELETE FROM payment_methods WHERE org_id = $1 AND payment_method_id = $2`

const isDetachedSQL = `SELECT EXISTS (SELECT 1 FROM detached_payment_methods WHERE payment_method_id = $1)`

// DetachPaymentMethod records that Stripe detached a payment method. The
// org that had it saved (orgID, "" when none) loses it, so no recharge can
// charge it: the recharge gate closes, and auto-recharge is paused with
// last error "payment_method_detached" until a card is saved again. The
// payment method is remembered as detached, so a late or replayed
// payment_method.attached never saves it again (Stripe cannot attach it
// again). Detaching again changes nothing.
func (l *Ledger) DetachPaymentMethod(ctx context.Context, tx pgx.Tx, paymentMethodID string) (orgID string, err error) {
	if !paymentMethodIDPattern.MatchString(paymentMethodID) {
		return "", invalid("payment_method", "%q is not a Stripe payment method id (pm_...)", paymentMethodID)
	}
	err = tx.QueryRow(ctx, orgOfPaymentMethodSQL, paymentMethodID).Scan(&orgID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err := tx.Exec(ctx, insertDetachedSQL, paymentMethodID, "", l.now())
		return "", mapError(err)
	case err != nil:
		return "", mapError(fmt.Errorf("detach %s: %w", paymentMethodID, err))
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return "", err
	}
	at := states[orgID].at
	if _, err := tx.Exec(ctx, insertDetachedSQL, paymentMethodID, orgID, at); err != nil {
		return "", mapError(fmt.Errorf("detach %s: %w", paymentMethodID, err))
	}
	tag, err := tx.Exec(ctx, deletePaymentMethodSQL, orgID, paymentMethodID)
	if err != nil {
		return "", mapError(fmt.Errorf("detach %s: %w", paymentMethodID, err))
	}
	if tag.RowsAffected() == 0 {
		return "", nil // another card was saved after the read: nothing of the org's changes
	}
	js, err := json.Marshal(RechargeError{Code: "payment_method_detached", At: at,
		Message: fmt.Sprintf("the saved card %s was detached in Stripe: save a card again", paymentMethodID)})
	if err != nil {
		return "", fmt.Errorf("detach %s: %w", paymentMethodID, err)
	}
	if _, err := tx.Exec(ctx, pauseRechargeSQL, orgID, js, at); err != nil {
		return "", mapError(fmt.Errorf("detach %s: %w", paymentMethodID, err))
	}
	return orgID, setRechargeGate(ctx, tx, orgID)
}

// refuseDetached is the check SetPaymentMethod makes: a payment method
// Stripe detached is never saved again.
func refuseDetached(ctx context.Context, db DBTX, paymentMethodID string) error {
	var detached bool
	if err := db.QueryRow(ctx, isDetachedSQL, paymentMethodID).Scan(&detached); err != nil {
		return mapError(fmt.Errorf("payment method %s: %w", paymentMethodID, err))
	}
	if detached {
		return invalid("payment_method", "%s was detached in Stripe and cannot be saved again", paymentMethodID)
	}
	return nil
}
