package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// reversalOf reads a charge.refunded, charge.dispute.created or
// charge.dispute.funds_withdrawn event as a ledger reversal of the
// PaymentIntent it charged. A refund carries the charge's cumulative
// amount_refunded, so the ledger takes back only what is new; a dispute is
// keyed by its id, so its two events take back once. An inquiry (status
// warning_*: no funds withdrawn, the payment can still be refunded) is no
// reversal: inquiry names its status and nothing is taken; should it
// escalate, funds_withdrawn takes the credits back.
func reversalOf(event *stripe.Event) (r ledger.Reversal, inquiry string, err error) {
	if event.Type == "charge.refunded" {
		var ch stripe.Charge
		if err := json.Unmarshal(event.Data.Raw, &ch); err != nil {
			return ledger.Reversal{}, "", fmt.Errorf("stripe event %s: charge: %w", event.ID, err)
		}
		r = ledger.Reversal{Kind: ledger.ReversalRefund,
			Amount: credits.Money{Minor: ch.AmountRefunded, Currency: strings.ToUpper(string(ch.Currency))}}
		if ch.PaymentIntent != nil {
			r.PaymentID = ch.PaymentIntent.ID
		}
		return r, "", nil
	}
	var dp stripe.Dispute
	if err := json.Unmarshal(event.Data.Raw, &dp); err != nil {
		return ledger.Reversal{}, "", fmt.Errorf("stripe event %s: dispute: %w", event.ID, err)
	}
	if strings.HasPrefix(string(dp.Status), "warning_") {
		return ledger.Reversal{}, string(dp.Status), nil
	}
	r = ledger.Reversal{Kind: ledger.ReversalDispute, DisputeID: dp.ID,
		Amount: credits.Money{Minor: dp.Amount, Currency: strings.ToUpper(string(dp.Currency))}}
	switch {
	case dp.PaymentIntent != nil:
		r.PaymentID = dp.PaymentIntent.ID
	case dp.Charge != nil && dp.Charge.PaymentIntent != nil: // the charge expanded
		r.PaymentID = dp.Charge.PaymentIntent.ID
	}
	return r, "", nil
}

// reverse takes back the credits of a refunded or disputed payment (see
// ledger.ReversePayment). A payment no org was credited for is recorded as
// unmatched on the event, and kept by the ledger in case it is credited
// later; a reversal the ledger refuses is recorded as refused. Neither is
// retried.
func (h *StripeEventHandler) reverse(ctx context.Context, tx pgx.Tx, r ledger.Reversal) (org, result string, err error) {
	if r.PaymentID == "" {
		return "", "unmatched: " + r.Kind + " names no payment intent", nil
	}
	var res ledger.ReversalResult
	refused, err := refusable(ctx, tx, func(sp pgx.Tx) (err error) {
		res, err = h.Ledger.ReversePayment(ctx, sp, r)
		return err
	})
	switch {
	case err != nil:
		return "", "", err
	case refused != nil:
		return "", "refused: " + refused.Error(), nil
	case res.Pending:
		return "", fmt.Sprintf("unmatched: payment %s was not credited to any org (the %s is kept and taken back if it is)",
			r.PaymentID, r.Kind), nil
	}
	return res.OrgID, fmt.Sprintf("%s of %s: %s credits taken back (%s from its lot, %s from other credits, %s debt; %s in all)",
		r.Kind, r.PaymentID, res.Taken, res.FromLot, res.FromOther, res.Debt, res.TakenTotal), nil
}
