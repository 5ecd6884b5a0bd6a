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

// Auto-recharge: a ledger write that leaves an org at or below its threshold
// opens a recharge attempt in its own transaction (ledger.triggerRecharges);
// the Relay hands pending attempts to the queue as payments:recharge tasks;
// the RechargeHandler charges the saved card off-session under the
// attempt's id as idempotency key and credits the result once.
const TypeRecharge = "payments:recharge"

// RechargePayloadVersion is the version this code writes.
const RechargePayloadVersion = 1

// RechargeMaxRetry bounds the attempts at one charge's transient failures
// (network, Stripe 429/5xx); every retry is the same charge.
const RechargeMaxRetry = 16

// RechargePayload names one attempt.
type RechargePayload struct {
	Version   int    `json:"v"`
	OrgID     string `json:"org_id"`
	AttemptID string `json:"attempt_id"`
}

func (p RechargePayload) validate() error {
	if p.Version < 1 || p.Version > RechargePayloadVersion {
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, RechargePayloadVersion)}
	}
	if p.OrgID == "" {
		return &PayloadError{Field: "org_id", Reason: "required"}
	}
	if p.AttemptID == "" {
		return &PayloadError{Field: "attempt_id", Reason: "required"}
	}
	return nil
}

// RechargeTaskID is the task id of an attempt's charge.
func RechargeTaskID(ref ledger.RechargeRef) string {
	return TypeRecharge + ":" + ref.OrgID + ":" + ref.AttemptID
}

// NewRechargeTask builds the task that charges one attempt.
func NewRechargeTask(ref ledger.RechargeRef) (*asynq.Task, error) {
	p := RechargePayload{Version: RechargePayloadVersion, OrgID: ref.OrgID, AttemptID: ref.AttemptID}
	if err := p.validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeRecharge, data, asynq.Queue(QueuePayments), asynq.TaskID(RechargeTaskID(ref)),
		asynq.MaxRetry(RechargeMaxRetry), asynq.Timeout(time.Minute)), nil
}

// Charge is one off-session charge of a saved card.
type Charge struct {
	IdempotencyKey string // the same for every try of one attempt
	Customer       string
	PaymentMethod  string
	AmountMinor    int64
	Currency       string
	Description    string
	Metadata       map[string]string
}

// ChargeDeclined is a charge Stripe refused for good: a declined card, one
// that needs the customer to authenticate, a missing or detached card.
type ChargeDeclined struct {
	Code, DeclineCode, Message string
}

func (e *ChargeDeclined) Error() string {
	s := "charge declined: " + e.Code
	if e.DeclineCode != "" {
		s += " (" + e.DeclineCode + ")"
	}
	return s + ": " + e.Message
}

// Charger charges saved cards (payments.Stripe).
type Charger interface {
	ChargeOffSession(ctx context.Context, c Charge) (paymentIntentID string, err error)
}

// errPaymentsOff is the failure recorded when STRIPE_SECRET_KEY is not set.
var errPaymentsOff = &ChargeDeclined{Code: "payments_not_configured", Message: "payments are not configured: set STRIPE_SECRET_KEY"}

// RechargeHandler charges pending attempts.
type RechargeHandler struct {
	Ledger *ledger.Ledger
	DB     interface {
		ledger.DBTX
		ledger.TxBeginner
	}
	Charger Charger // nil: payments are off, and attempts fail saying so
}

// ProcessTask charges the attempt unless it is finished, then credits or
// fails it. A crash after Stripe's success and before the commit is mended
// by the retry: the same idempotency key returns the same PaymentIntent,
// and the ledger credits it once (its lot is keyed by the PaymentIntent).
func (h *RechargeHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p RechargePayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(); err != nil {
		return permanent(err)
	}
	a, err := h.Ledger.GetRechargeAttempt(ctx, h.DB, p.OrgID, p.AttemptID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return permanent(&PayloadError{Field: "attempt_id", Reason: fmt.Sprintf("no recharge attempt %s of org %s", p.AttemptID, p.OrgID)})
	case err != nil:
		return err
	case a.Status != ledger.RechargePending:
		return nil // finished: a second task for it, or a re-run from the UI
	}
	var pi string
	if h.Charger == nil {
		err = errPaymentsOff
	} else {
		pi, err = h.Charger.ChargeOffSession(ctx, Charge{
			IdempotencyKey: a.ID, Customer: a.CustomerID, PaymentMethod: a.PaymentMethodID,
			AmountMinor: a.Amount.Minor, Currency: a.Amount.Currency,
			Description: fmt.Sprintf("creditd auto-recharge: %s credits", a.Credits),
			Metadata:    map[string]string{"org_id": a.OrgID, "recharge_attempt": a.ID, "credits": a.Credits.String()},
		})
	}
	var declined *ChargeDeclined
	switch {
	case err == nil:
		return ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
			_, err := h.Ledger.CompleteRecharge(ctx, tx, a.OrgID, a.ID, pi)
			return err
		})
	case errors.As(err, &declined):
		if ferr := ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) error {
			return h.Ledger.FailRecharge(ctx, tx, a.OrgID, a.ID, ledger.RechargeError{
				Code: declined.Code, DeclineCode: declined.DeclineCode, Message: declined.Message})
		}); ferr != nil {
			return errors.Join(err, ferr)
		}
		return permanent(fmt.Errorf("recharge %s of org %s: %w", a.ID, a.OrgID, err))
	}
	return fmt.Errorf("recharge %s of org %s: %w", a.ID, a.OrgID, err)
}
