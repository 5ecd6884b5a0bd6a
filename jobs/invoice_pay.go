package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

// TypeInvoicePay charges one open invoice of an org that pays automatically
// through a Stripe invoice. Every Stripe call of it carries an idempotency key
// derived from the org and the period, so however often the task runs (a
// retry, a crash after Stripe answered, a second sweep) Stripe makes one
// invoice and one charge.
const TypeInvoicePay = "invoice:pay"

// InvoicePayPayloadVersion is the version this code writes.
const InvoicePayPayloadVersion = 1

// InvoicePayPayload names one invoice.
type InvoicePayPayload struct {
	Version int    `json:"v"`
	OrgID   string `json:"org_id"`
	Period  string `json:"period"`
}

func (p InvoicePayPayload) validate() error {
	switch {
	case p.Version < 1 || p.Version > InvoicePayPayloadVersion:
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, InvoicePayPayloadVersion)}
	case p.OrgID == "":
		return &PayloadError{Field: "org_id", Reason: "required"}
	case ledger.ValidPeriod(p.Period) != nil:
		return &PayloadError{Field: "period", Reason: "must be a month like 2026-11"}
	}
	return nil
}

// InvoicePayTaskID is the task id of an invoice's charge.
func InvoicePayTaskID(orgID, period string) string {
	return TypeInvoicePay + ":" + orgID + ":" + period
}

// NewInvoicePayTask builds the task that charges one invoice.
func NewInvoicePayTask(orgID, period string) (*asynq.Task, error) {
	p := InvoicePayPayload{Version: InvoicePayPayloadVersion, OrgID: orgID, Period: period}
	if err := p.validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeInvoicePay, data, asynq.Queue(QueuePayments), asynq.TaskID(InvoicePayTaskID(orgID, period)),
		asynq.MaxRetry(RechargeMaxRetry), asynq.Timeout(time.Minute)), nil
}

// StripeInvoice is an invoice to create in Stripe and charge to a saved card.
type StripeInvoice struct {
	// IdempotencyKey is the same for every try of one invoice; each call
	// derives its own key from it.
	IdempotencyKey string
	Customer       string
	PaymentMethod  string
	AmountMinor    int64
	Currency       string
	Description    string
	Metadata       map[string]string
}

// Invoicer creates and charges Stripe invoices (payments.Stripe). Creating
// and paying are two calls so that the Stripe invoice's id is recorded in
// between: a retry, however late, pays that invoice rather than creating
// another (Stripe may forget idempotency keys after 24 hours).
type Invoicer interface {
	// CreateInvoice creates the Stripe invoice with its one line, a draft.
	CreateInvoice(ctx context.Context, inv StripeInvoice) (stripeInvoiceID string, err error)
	// PayInvoice finalizes the Stripe invoice if it is a draft and pays it;
	// one paid already is a success. A refusal is a *ChargeDeclined.
	PayInvoice(ctx context.Context, stripeInvoiceID string, inv StripeInvoice) error
}

// InvoiceIdempotencyKey is the base of the Stripe idempotency keys of an
// org's invoice of a period.
func InvoiceIdempotencyKey(orgID, period string) string {
	return "creditd-invoice:" + orgID + ":" + period
}

// InvoicePayHandler charges open invoices through Stripe.
type InvoicePayHandler struct {
	Ledger *ledger.Ledger
	DB     interface {
		ledger.DBTX
		ledger.TxBeginner
	}
	Invoicer Invoicer     // nil: payments are off; the invoice stays open with the reason recorded
	Clock    ledger.Clock // when an invoice was paid; ledger.SystemClock when nil
}

// ProcessTask creates the Stripe invoice unless one is recorded, records it,
// and pays it, unless the invoice is settled. A refused payment is recorded
// on the invoice (which stays open; Stripe retries it and invoice.paid or
// invoice.payment_failed follow as webhooks) and not retried here.
func (h *InvoicePayHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p InvoicePayPayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	charges, err := h.Ledger.InvoiceCharges(ctx, h.DB, []string{p.OrgID})
	if err != nil {
		return err
	}
	var c *ledger.InvoiceCharge
	for i := range charges {
		if charges[i].Period == p.Period {
			c = &charges[i]
		}
	}
	if c == nil {
		return nil // paid, charged already, or not to be charged automatically
	}
	id := c.StripeInvoiceID
	in := StripeInvoice{
		IdempotencyKey: InvoiceIdempotencyKey(c.OrgID, c.Period), Customer: c.CustomerID,
		PaymentMethod: c.PaymentMethodID, AmountMinor: c.DueMinor, Currency: c.Currency,
		Description: fmt.Sprintf("%s plan, %s", c.Plan, c.Period),
		Metadata:    map[string]string{"org_id": c.OrgID, "period": c.Period},
	}
	switch {
	case h.Invoicer == nil:
		err = errPaymentsOff
	case id == "":
		if id, err = h.Invoicer.CreateInvoice(ctx, in); err == nil {
			err = ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
				return h.Ledger.SetStripeInvoice(ctx, tx, c.OrgID, c.Period, id)
			})
		}
	}
	if err == nil {
		err = h.Invoicer.PayInvoice(ctx, id, in)
	}
	var declined *ChargeDeclined
	switch {
	case err == nil:
		return ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
			clock := h.Clock
			if clock == nil {
				clock = ledger.SystemClock
			}
			return h.Ledger.MarkInvoicePaid(ctx, tx, c.OrgID, c.Period, id, clock.Now())
		})
	case errors.As(err, &declined):
		if ferr := ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
			return h.Ledger.MarkInvoicePaymentFailed(ctx, tx, c.OrgID, c.Period, id, declined.Error())
		}); ferr != nil {
			return errors.Join(err, ferr)
		}
		return permanent(fmt.Errorf("invoice %s %s: %w", c.OrgID, c.Period, err))
	}
	return fmt.Errorf("invoice %s %s: %w", c.OrgID, c.Period, err)
}
