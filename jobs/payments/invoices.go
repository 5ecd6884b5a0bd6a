package payments

import (
	"context"
	"errors"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs"
)

// errInvoiceAlreadyPaid is Stripe's code for paying an invoice that is paid
// (stripe-go v76 has no constant for it).
const errInvoiceAlreadyPaid = "invoice_already_paid"

// ChargeInvoice creates a Stripe invoice for the customer with one line (the
// amount due), charged automatically to the saved card, then finalizes and
// pays it. Each call carries its own idempotency key derived from the
// invoice's, so a retry at any point replays what was done and continues:
// one Stripe invoice, one line, one charge. An invoice Stripe reports paid
// already is a success.
func (s *Stripe) ChargeInvoice(ctx context.Context, in jobs.StripeInvoice) (string, error) {
	ip := &stripe.InvoiceParams{
		Customer:                    stripe.String(in.Customer),
		AutoAdvance:                 stripe.Bool(true),
		CollectionMethod:            stripe.String(string(stripe.InvoiceCollectionMethodChargeAutomatically)),
		DefaultPaymentMethod:        stripe.String(in.PaymentMethod),
		Currency:                    stripe.String(strings.ToLower(in.Currency)),
		Description:                 stripe.String(in.Description),
		PendingInvoiceItemsBehavior: stripe.String("exclude"),
	}
	ip.Context = ctx
	ip.SetIdempotencyKey(in.IdempotencyKey + ":invoice")
	for k, v := range in.Metadata {
		ip.AddMetadata(k, v)
	}
	inv, err := s.api.Invoices.New(ip)
	if err != nil {
		return "", classify(err)
	}
	id := inv.ID
	if inv.Status == stripe.InvoiceStatusDraft {
		item := &stripe.InvoiceItemParams{
			Customer:    stripe.String(in.Customer),
			Invoice:     stripe.String(id),
			Amount:      stripe.Int64(in.AmountMinor),
			Currency:    stripe.String(strings.ToLower(in.Currency)),
			Description: stripe.String(in.Description),
		}
		item.Context = ctx
		item.SetIdempotencyKey(in.IdempotencyKey + ":item")
		for k, v := range in.Metadata {
			item.AddMetadata(k, v)
		}
		if _, err := s.api.InvoiceItems.New(item); err != nil {
			return id, classify(err)
		}
	}
	// The invoice as it is now: a retry finds it finalized or paid.
	gp := &stripe.InvoiceParams{}
	gp.Context = ctx
	if inv, err = s.api.Invoices.Get(id, gp); err != nil {
		return id, classify(err)
	}
	if inv.Status == stripe.InvoiceStatusDraft {
		fp := &stripe.InvoiceFinalizeInvoiceParams{}
		fp.Context = ctx
		fp.SetIdempotencyKey(in.IdempotencyKey + ":finalize")
		if inv, err = s.api.Invoices.FinalizeInvoice(id, fp); err != nil {
			return id, classify(err)
		}
	}
	if inv.Status == stripe.InvoiceStatusPaid {
		return id, nil
	}
	pp := &stripe.InvoicePayParams{OffSession: stripe.Bool(true)}
	pp.Context = ctx
	pp.SetIdempotencyKey(in.IdempotencyKey + ":pay")
	paid, err := s.api.Invoices.Pay(id, pp)
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && string(se.Code) == errInvoiceAlreadyPaid:
		return id, nil
	case err != nil:
		return id, classify(err)
	case paid.Status != stripe.InvoiceStatusPaid:
		return id, &jobs.ChargeDeclined{Code: "invoice_" + string(paid.Status), Message: "invoice " + id + " is " + string(paid.Status)}
	}
	return id, nil
}
