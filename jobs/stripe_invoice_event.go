package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/ledger"
)

// invoiceEvent follows a Stripe invoice that charges a creditd invoice
// (metadata org_id and period, set by ChargeInvoice): invoice.paid marks it
// paid, invoice.payment_failed records why it was not (it stays open, and
// Stripe retries). Other Stripe invoices are recorded as not ours.
func (h *StripeEventHandler) invoiceEvent(ctx context.Context, typ stripe.EventType, in *stripe.Invoice) (org string, act func(tx pgx.Tx) (string, error), result string) {
	org, period := in.Metadata["org_id"], in.Metadata["period"]
	if org == "" || ledger.ValidPeriod(period) != nil {
		return "", nil, "ignored: invoice " + in.ID + " is not a creditd invoice (no org_id and period)"
	}
	if _, err := h.Ledger.GetInvoice(ctx, h.DB, org, period); err != nil {
		return "", nil, fmt.Sprintf("unmatched: invoice %s: %v", in.ID, err)
	}
	return org, func(tx pgx.Tx) (string, error) {
		var err error
		switch typ {
		case "invoice.paid":
			at := time.Unix(in.Created, 0)
			if in.StatusTransitions != nil && in.StatusTransitions.PaidAt > 0 {
				at = time.Unix(in.StatusTransitions.PaidAt, 0)
			}
			err = h.Ledger.MarkInvoicePaid(ctx, tx, org, period, in.ID, at)
		default:
			err = h.Ledger.MarkInvoicePaymentFailed(ctx, tx, org, period, in.ID,
				fmt.Sprintf("Stripe invoice %s: payment failed (attempt %d)", in.ID, in.AttemptCount))
		}
		if errors.Is(err, ledger.ErrConflict) {
			return "refused: " + err.Error(), nil
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: invoice %s %s", typ, org, period), nil
	}, ""
}

// paysInvoice says whether a PaymentIntent is a Stripe invoice's payment:
// the invoice events account for it, so it is not credited as a purchase.
func paysInvoice(pi *stripe.PaymentIntent) bool { return pi.Invoice != nil && pi.Invoice.ID != "" }
