package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Stripe webhooks: the endpoint verifies and stores each event by id, then
// enqueues a stripe:event task, so it answers fast and a duplicate delivery
// is a no-op; the task acts on the event once.
const TypeStripeEvent = "stripe:event"

// StripeEventPayloadVersion is the version this code writes.
const StripeEventPayloadVersion = 1

// StripeEventPayload names a stored event.
type StripeEventPayload struct {
	Version int    `json:"v"`
	EventID string `json:"event_id"`
}

// NewStripeEventTask builds the task that processes one stored event; its
// id is the event's, so a second delivery enqueues nothing while the first
// is in Redis.
func NewStripeEventTask(eventID string) (*asynq.Task, error) {
	if eventID == "" {
		return nil, &PayloadError{Field: "event_id", Reason: "required"}
	}
	data, err := encodePayload(StripeEventPayload{Version: StripeEventPayloadVersion, EventID: eventID}, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeStripeEvent, data, asynq.Queue(QueuePayments), asynq.TaskID(TypeStripeEvent+":"+eventID),
		asynq.MaxRetry(RechargeMaxRetry), asynq.Timeout(time.Minute)), nil
}

// StripeEventHandler acts on stored Stripe events.
type StripeEventHandler struct {
	Ledger *ledger.Ledger
	DB     interface {
		ledger.DBTX
		ledger.TxBeginner
	}
}

// ProcessTask acts on the event unless it was processed before.
// payment_intent.succeeded credits a recharge (metadata recharge_attempt)
// or a one-time purchase (metadata package or credits, else the catalog's
// rate), as checkout.session.completed does for a paid one-time Checkout;
// either is keyed by the PaymentIntent, so an event delivered again or out
// of order, and the recharge task's own success, credit it once.
// setup_intent.succeeded and payment_method.attached save the card as the
// org's default; payment_method.detached removes it. charge.refunded and
// charge.dispute.created take back the payment's credits. Other types are
// recorded as ignored.
func (h *StripeEventHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p StripeEventPayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if p.Version < 1 || p.Version > StripeEventPayloadVersion {
		return permanent(&PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d", p.Version)})
	}
	ev, err := h.Ledger.GetStripeEvent(ctx, h.DB, p.EventID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return permanent(&PayloadError{Field: "event_id", Reason: "no stored event " + p.EventID})
	case err != nil:
		return err
	case ev.ProcessedAt != nil:
		return nil
	}
	var event stripe.Event
	if err := json.Unmarshal(ev.Payload, &event); err != nil {
		return permanent(fmt.Errorf("stripe event %s: %w", ev.ID, err))
	}
	if event.Data == nil || len(event.Data.Raw) == 0 {
		return permanent(&PayloadError{Field: "data", Reason: "stripe event " + ev.ID + " has no data object"})
	}
	var org, result string
	var act func(tx pgx.Tx) (string, error)
	switch event.Type {
	case "payment_intent.succeeded":
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(event.Data.Raw, &pi); err != nil {
			return permanent(fmt.Errorf("stripe event %s: payment intent: %w", ev.ID, err))
		}
		if paysInvoice(&pi) {
			result = "ignored: pays invoice " + pi.Invoice.ID
		} else if org, err = h.orgOf(ctx, pi.ID, pi.Metadata, pi.Customer); err != nil {
			result = err.Error() // not ours to credit: recorded, visible, not retried
		} else {
			act = func(tx pgx.Tx) (string, error) { return h.credit(ctx, tx, org, &pi) }
		}
	case "setup_intent.succeeded":
		var si stripe.SetupIntent
		if err := json.Unmarshal(event.Data.Raw, &si); err != nil {
			return permanent(fmt.Errorf("stripe event %s: setup intent: %w", ev.ID, err))
		}
		if org, err = h.orgOf(ctx, si.ID, si.Metadata, si.Customer); err != nil {
			result = err.Error()
		} else {
			act = func(tx pgx.Tx) (string, error) { return h.saveCard(ctx, tx, org, &si) }
		}
	case "charge.refunded", "charge.dispute.created", "charge.dispute.funds_withdrawn":
		r, inquiry, err := reversalOf(&event)
		if err != nil {
			return permanent(err)
		}
		if inquiry != "" {
			result = "ignored: dispute inquiry (" + inquiry + "), no funds withdrawn"
			break
		}
		act = func(tx pgx.Tx) (res string, err error) { org, res, err = h.reverse(ctx, tx, r); return res, err }
	case "checkout.session.completed", "checkout.session.async_payment_succeeded":
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(event.Data.Raw, &cs); err != nil {
			return permanent(fmt.Errorf("stripe event %s: checkout session: %w", ev.ID, err))
		}
		org, result, act = h.checkout(ctx, &cs)
	case "payment_method.attached", "payment_method.detached":
		var pm stripe.PaymentMethod
		if err := json.Unmarshal(event.Data.Raw, &pm); err != nil {
			return permanent(fmt.Errorf("stripe event %s: payment method: %w", ev.ID, err))
		}
		if event.Type == "payment_method.attached" {
			org, result, act = h.attachCard(ctx, &pm)
		} else {
			act = func(tx pgx.Tx) (res string, err error) { org, res, err = h.detachCard(ctx, tx, pm.ID); return res, err }
		}
	case "invoice.paid", "invoice.payment_failed":
		var in stripe.Invoice
		if err := json.Unmarshal(event.Data.Raw, &in); err != nil {
			return permanent(fmt.Errorf("stripe event %s: invoice: %w", ev.ID, err))
		}
		org, act, result = h.invoiceEvent(ctx, event.Type, &in)
	default:
		result = "ignored: " + string(event.Type)
	}
	return ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
		res := result
		if act != nil {
			var err error
			if res, err = act(tx); err != nil {
				return err
			}
		}
		return h.Ledger.FinishStripeEvent(ctx, tx, ev.ID, org, res)
	})
}

// saveCard makes a confirmed SetupIntent's card the org's default for
// off-session charges (the host application set it up with metadata org_id).
func (h *StripeEventHandler) saveCard(ctx context.Context, tx pgx.Tx, org string, si *stripe.SetupIntent) (string, error) {
	if si.Customer == nil || si.PaymentMethod == nil {
		return "refused: setup intent " + si.ID + " names no customer or payment method", nil
	}
	p := ledger.PaymentMethod{OrgID: org, CustomerID: si.Customer.ID, PaymentMethodID: si.PaymentMethod.ID}
	if c := si.PaymentMethod.Card; c != nil {
		p.Brand, p.Last4 = string(c.Brand), c.Last4
	}
	if err := p.Validate(); err != nil {
		return "refused: " + err.Error(), nil
	}
	if _, err := h.Ledger.SetPaymentMethod(ctx, tx, p); err != nil {
		return "", err
	}
	return "saved card " + p.PaymentMethodID, nil
}

// orgOf matches a payment to its org: metadata org_id, else the org whose
// saved card belongs to the customer.
func (h *StripeEventHandler) orgOf(ctx context.Context, id string, metadata map[string]string, customer *stripe.Customer) (string, error) {
	if org := metadata["org_id"]; org != "" {
		if _, err := h.Ledger.GetOrg(ctx, h.DB, org); err != nil {
			return "", fmt.Errorf("unmatched: org %s of %s: %w", org, id, err)
		}
		return org, nil
	}
	if customer != nil && customer.ID != "" {
		org, err := h.Ledger.OrgOfCustomer(ctx, h.DB, customer.ID)
		if err != nil {
			return "", fmt.Errorf("unmatched: %s: %w", id, err)
		}
		return org, nil
	}
	return "", fmt.Errorf("unmatched: %s names no org_id and no customer", id)
}

func (h *StripeEventHandler) credit(ctx context.Context, tx pgx.Tx, org string, pi *stripe.PaymentIntent) (string, error) {
	if attempt := pi.Metadata["recharge_attempt"]; attempt != "" {
		var res ledger.GrantResult
		refused, err := refusable(ctx, tx, func(sp pgx.Tx) (err error) {
			res, err = h.Ledger.CompleteRecharge(ctx, sp, org, attempt, pi.ID)
			if errors.Is(err, ledger.ErrNotFound) { // no such attempt of this org: not ours to credit
				err = &ledger.ValidationError{Field: "recharge_attempt", Reason: err.Error()}
			}
			return err
		})
		switch {
		case err != nil:
			return "", fmt.Errorf("recharge %s: %w", attempt, err)
		case refused != nil:
			return fmt.Sprintf("refused: recharge %s: %v", attempt, refused), nil
		}
		return fmt.Sprintf("recharge %s: %s credits (replayed %v)", attempt, res.Amount, res.Replayed), nil
	}
	paid := credits.Money{Minor: pi.AmountReceived, Currency: strings.ToUpper(string(pi.Currency))}
	if paid.Minor == 0 {
		paid.Minor = pi.Amount
	}
	return h.purchase(ctx, tx, org, pi.ID, paid, pi.Metadata) // e.g. below the minimum: recorded as refused
}

// EnqueueStripeEvent enqueues the processing of a stored event. An event
// whose task is in Redis already (a second delivery) enqueues nothing; one
// whose task was archived is enqueued again.
func (c *Client) EnqueueStripeEvent(ctx context.Context, eventID string) error {
	task, err := NewStripeEventTask(eventID)
	if err != nil {
		return err
	}
	return c.enqueue(ctx, task, QueuePayments, TypeStripeEvent+":"+eventID)
}
