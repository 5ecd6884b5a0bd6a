package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/ledger"
)

// attachCard decides what payment_method.attached does: the card becomes
// the default of the org named by its metadata org_id or owning its
// customer. The card already saved is left as it is (saving it again would
// end a pause a decline left); a card Stripe detached before is refused.
func (h *StripeEventHandler) attachCard(ctx context.Context, pm *stripe.PaymentMethod) (org, result string, act func(pgx.Tx) (string, error)) {
	if pm.Customer == nil || pm.Customer.ID == "" {
		return "", "refused: payment method " + pm.ID + " names no customer", nil
	}
	org, err := h.orgOf(ctx, pm.ID, pm.Metadata, pm.Customer)
	if err != nil {
		return "", err.Error(), nil
	}
	p := ledger.PaymentMethod{OrgID: org, CustomerID: pm.Customer.ID, PaymentMethodID: pm.ID}
	if c := pm.Card; c != nil {
		p.Brand, p.Last4 = string(c.Brand), c.Last4
	}
	return org, "", func(tx pgx.Tx) (string, error) {
		if cur, err := h.Ledger.GetPaymentMethod(ctx, tx, org); err == nil && cur.PaymentMethodID == p.PaymentMethodID {
			return "card " + p.PaymentMethodID + " is saved already", nil
		} else if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return "", err
		}
		refused, err := refusable(ctx, tx, func(sp pgx.Tx) error {
			_, err := h.Ledger.SetPaymentMethod(ctx, sp, p)
			return err
		})
		switch {
		case err != nil:
			return "", err
		case refused != nil:
			return "refused: " + refused.Error(), nil
		}
		return "saved card " + p.PaymentMethodID, nil
	}
}

// detachCard is payment_method.detached: the org that has the card saved
// loses it and its auto-recharge pauses (see ledger.DetachPaymentMethod);
// the card is remembered as detached either way.
func (h *StripeEventHandler) detachCard(ctx context.Context, tx pgx.Tx, pmID string) (org, result string, err error) {
	refused, err := refusable(ctx, tx, func(sp pgx.Tx) (err error) {
		org, err = h.Ledger.DetachPaymentMethod(ctx, sp, pmID)
		return err
	})
	switch {
	case err != nil:
		return "", "", err
	case refused != nil:
		return "", "refused: " + refused.Error(), nil
	case org == "":
		return "", fmt.Sprintf("unmatched: payment method %s is no org's saved card (remembered as detached)", pmID), nil
	}
	return org, "detached card " + pmID + ": removed, auto-recharge paused", nil
}
