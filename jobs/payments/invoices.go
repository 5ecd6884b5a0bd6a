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

// CreateInvoice creates a draft Stripe invoice for the customer, charged
// automatically to the saved card (auto_advance, collection_method
// charge_automatically, default_payment_method), with one line for the
// amount due. Each call carries its own idempotency key derived from the
// invoice's, so a retry replays what was done: one Stripe invoice, one line.
func (s *Stripe) CreateInvoice(ctx context.Context, in jobs.StripeInvoice) (string, error) {
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
	if inv.Status != stripe.InvoiceStatusDraft || (inv.Lines != nil && len(inv.Lines.Data) > 0) {
		return inv.ID, nil // its line is on it already
	}
	item := &stripe.InvoiceItemParams{
		Customer:    stripe.String(in.Customer),
		Invoice:     stripe.String(inv.ID),
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
		return "", classify(err)
	}
	return inv.ID, nil
}

// PayInvoice finalizes the Stripe invoice if it is still a draft and pays
// it off-session, under idempotency keys derived from the invoice's. An
// invoice Stripe reports paid, before or when asked to pay, is a success.
func (s *Stripe) PayInvoice(ctx context.Context, id string, in jobs.StripeInvoice) error {
	gp := &stripe.InvoiceParams{}
	gp.Context = ctx
	inv, err := s.api.Invoices.Get(id, gp)
	if err != nil {
		return classify(err)
	}
	if inv.Status == stripe.InvoiceStatusDraft {
		fp := &stripe.InvoiceFinalizeInvoiceParams{}
		fp.Context = ctx
		fp.SetIdempotencyKey(in.IdempotencyKey + ":finalize")
		if inv, err = s.api.Invoices.FinalizeInvoice(id, fp); err != nil {
			return classify(err)
		}
	}
	if inv.Status == stripe.InvoiceStatusPaid {
		return nil
	}
	pp := &stripe.InvoicePayParams{OffSession: stripe.Bool(true)}
	pp.Context = ctx
	pp.SetIdempotencyKey(in.IdempotencyKey + ":pay")
	paid, err := s.api.Invoices.Pay(id, pp)
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && string(se.Code) == errInvoiceAlreadyPaid:
		return nil
	case err != nil:
		return classify(err)
	case paid.Status != stripe.InvoiceStatusPaid:
		return &jobs.ChargeDeclined{Code: "invoice_" + string(paid.Status), Message: "invoice " + id + " is " + string(paid.Status)}
	}
	return nil
}
