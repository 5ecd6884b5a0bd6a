package jobs

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// purchaseOrder reads what a one-time purchase bought from the payment's
// metadata: "package" (a catalog package) or "credits" (custom credits at
// the catalog's per-credit price), neither for the catalog rate. Hosts put
// the same metadata on the Checkout Session and, through
// payment_intent_data.metadata, on its PaymentIntent, so that
// checkout.session.completed and payment_intent.succeeded decide the same
// credits for the one payment.
func purchaseOrder(metadata map[string]string) (ledger.PurchaseOrder, error) {
	o := ledger.PurchaseOrder{Package: metadata["package"]}
	if s := metadata["credits"]; s != "" {
		c, err := credits.Parse(s)
		if err != nil {
			return ledger.PurchaseOrder{}, fmt.Errorf("metadata credits: %w", err)
		}
		o.Credits = c
	}
	return o, nil
}

// purchase credits a one-time purchase keyed by its PaymentIntent, so
// whichever of its events comes first credits it and the others replay. A
// purchase the ledger refuses (wrong price, below the minimum, credited
// before with other credits) is recorded as refused, not retried.
func (h *StripeEventHandler) purchase(ctx context.Context, tx pgx.Tx, org, paymentID string, paid credits.Money,
	metadata map[string]string) (string, error) {
	order, err := purchaseOrder(metadata)
	if err != nil {
		return "refused: " + err.Error(), nil
	}
	var res ledger.GrantResult
	refused, err := refusable(ctx, tx, func(sp pgx.Tx) (err error) {
		res, err = h.Ledger.CreditOrder(ctx, sp, org, paymentID, paid, order)
		return err
	})
	switch {
	case err != nil:
		return "", err
	case refused != nil:
		return "refused: " + refused.Error(), nil
	}
	return fmt.Sprintf("purchase: %s credits (replayed %v)", res.Amount, res.Replayed), nil
}

// checkout decides what a checkout.session.completed (or, for a method
// that pays later, checkout.session.async_payment_succeeded) event does: a
// paid one-time purchase (mode payment) is credited by its PaymentIntent to
// the org named by metadata org_id, else client_reference_id (when it names
// an org), else the org of its customer. Other sessions are ignored:
// subscriptions and setups are not purchases, and an unpaid session is
// credited by the later event.
func (h *StripeEventHandler) checkout(ctx context.Context, cs *stripe.CheckoutSession) (org, result string, act func(pgx.Tx) (string, error)) {
	switch {
	case cs.Mode != stripe.CheckoutSessionModePayment:
		return "", fmt.Sprintf("ignored: checkout session %s is mode %s", cs.ID, cs.Mode), nil
	case cs.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid:
		return "", fmt.Sprintf("ignored: checkout session %s is %s", cs.ID, cs.PaymentStatus), nil
	case cs.PaymentIntent == nil || cs.PaymentIntent.ID == "":
		return "", "refused: checkout session " + cs.ID + " names no payment intent", nil
	}
	md := maps.Clone(cs.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if md["org_id"] == "" && cs.ClientReferenceID != "" {
		if _, err := h.Ledger.GetOrg(ctx, h.DB, cs.ClientReferenceID); err == nil {
			md["org_id"] = cs.ClientReferenceID
		}
	}
	org, err := h.orgOf(ctx, cs.ID, md, cs.Customer)
	if err != nil {
		return "", err.Error(), nil
	}
	paid := credits.Money{Minor: cs.AmountTotal, Currency: strings.ToUpper(string(cs.Currency))}
	piID := cs.PaymentIntent.ID
	return org, "", func(tx pgx.Tx) (string, error) { return h.purchase(ctx, tx, org, piID, paid, cs.Metadata) }
}
