package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	Log *slog.Logger
}

// ProcessTask acts on the event unless it was processed before.
// payment_intent.succeeded credits a recharge (metadata recharge_attempt)
// or a one-time purchase at the catalog's rate; either is keyed by the
// PaymentIntent, so an event delivered again or out of order, and the
// recharge task's own success, credit it once. Other types are recorded as
// ignored.
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
	var org, result string
	var pi stripe.PaymentIntent
	if event.Type == "payment_intent.succeeded" {
		if err := json.Unmarshal(event.Data.Raw, &pi); err != nil {
			return permanent(fmt.Errorf("stripe event %s: payment intent: %w", ev.ID, err))
		}
		if org, err = h.orgOf(ctx, &pi); err != nil {
			result = err.Error() // not ours to credit: recorded, visible, not retried
		}
	} else {
		result = "ignored: " + string(event.Type)
	}
	return ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
		res := result
		if org != "" {
			var err error
			if res, err = h.credit(ctx, tx, org, &pi); err != nil {
				return err
			}
		}
		return h.Ledger.FinishStripeEvent(ctx, tx, ev.ID, org, res)
	})
}

// orgOf matches a payment to its org: metadata org_id, else the org whose
// saved card belongs to the customer.
func (h *StripeEventHandler) orgOf(ctx context.Context, pi *stripe.PaymentIntent) (string, error) {
	if org := pi.Metadata["org_id"]; org != "" {
		if _, err := h.Ledger.GetOrg(ctx, h.DB, org); err != nil {
			return "", fmt.Errorf("unmatched: org %s of payment %s: %w", org, pi.ID, err)
		}
		return org, nil
	}
	if pi.Customer != nil && pi.Customer.ID != "" {
		org, err := h.Ledger.OrgOfCustomer(ctx, h.DB, pi.Customer.ID)
		if err != nil {
			return "", fmt.Errorf("unmatched: payment %s: %w", pi.ID, err)
		}
		return org, nil
	}
	return "", fmt.Errorf("unmatched: payment %s names no org_id and no customer", pi.ID)
}

func (h *StripeEventHandler) credit(ctx context.Context, tx pgx.Tx, org string, pi *stripe.PaymentIntent) (string, error) {
	if attempt := pi.Metadata["recharge_attempt"]; attempt != "" {
		res, err := h.Ledger.CompleteRecharge(ctx, tx, org, attempt, pi.ID)
		if err != nil {
			return "", fmt.Errorf("recharge %s: %w", attempt, err)
		}
		return fmt.Sprintf("recharge %s: %s credits (replayed %v)", attempt, res.Amount, res.Replayed), nil
	}
	paid := credits.Money{Minor: pi.AmountReceived, Currency: strings.ToUpper(string(pi.Currency))}
	if paid.Minor == 0 {
		paid.Minor = pi.Amount
	}
	res, err := h.Ledger.CreditPurchase(ctx, tx, org, pi.ID, paid)
	var v *ledger.ValidationError
	if errors.As(err, &v) {
		return "refused: " + v.Error(), nil // e.g. below the minimum purchase: recorded, not credited
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("purchase: %s credits (replayed %v)", res.Amount, res.Replayed), nil
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
