package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Hold task types: reserve credits before work starts, capture the actual
// amount when it is done, or release the hold on a technical failure. Their
// payload is HoldPayload; their result (asynq's task result, kept for
// HoldResultRetention) is HoldTaskResult.
const (
	TypeHoldReserve = "hold:reserve"
	TypeHoldCapture = "hold:capture"
	TypeHoldRelease = "hold:release"
)

// HoldPayloadVersion is the hold payload version this code writes.
const HoldPayloadVersion = 1

// HoldResultRetention is how long a completed hold task and its result stay in
// Redis: the client reads the result from there, and a retried call within
// it finds the first answer instead of enqueuing again.
const HoldResultRetention = time.Hour

// HoldPayload is one hold operation. Amount is a decimal credit string;
// TTLSeconds is for reserve only, Amount for reserve and capture.
type HoldPayload struct {
	Version    int     `json:"v"`
	OrgID      string  `json:"org_id"`
	HoldID     string  `json:"hold_id"`
	Amount     *string `json:"amount,omitempty"`
	TTLSeconds int64   `json:"ttl_seconds,omitempty"`
	Feature    string  `json:"feature,omitempty"`
	Team       string  `json:"team,omitempty"`
	User       string  `json:"user,omitempty"`
}

// HoldTaskResult is what a hold task leaves for its caller: the hold's state,
// or the refusal the caller acts on (insufficient credits). Payload and
// ledger errors that no retry can fix archive the task instead.
type HoldTaskResult struct {
	Hold  *ledger.HoldResult `json:"hold,omitempty"`
	Error string             `json:"error,omitempty"`
}

// holdErrInsufficient is HoldTaskResult.Error for ledger.ErrInsufficientCredits.
const holdErrInsufficient = "insufficient_credits"

func (p HoldPayload) amount() (credits.Credits, error) {
	if p.Amount == nil {
		return 0, &PayloadError{Field: "amount", Reason: "required"}
	}
	c, err := credits.Parse(*p.Amount)
	if err != nil {
		return 0, &PayloadError{Field: "amount", Reason: fmt.Sprintf("%q: %v", *p.Amount, err)}
	}
	return c, nil
}

// validate checks the payload for task type typ; errors are *PayloadError.
func (p HoldPayload) validate(typ string) error {
	if p.Version < 1 || p.Version > HoldPayloadVersion {
		return &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, HoldPayloadVersion)}
	}
	switch typ {
	case TypeHoldReserve:
		r, err := p.reservation()
		if err != nil {
			return err
		}
		return payloadError(r.Validate())
	case TypeHoldCapture:
		if _, err := p.amount(); err != nil {
			return err
		}
	case TypeHoldRelease:
		if p.Amount != nil {
			return &PayloadError{Field: "amount", Reason: "a release takes no amount"}
		}
	default:
		return &PayloadError{Field: "type", Reason: fmt.Sprintf("unknown hold task type %q", typ)}
	}
	if typ != TypeHoldReserve && (p.TTLSeconds != 0 || p.Feature != "" || p.Team != "" || p.User != "") {
		return &PayloadError{Field: "ttl_seconds", Reason: "only a reserve takes ttl_seconds, feature, team or user"}
	}
	// The org and hold id are checked the way the ledger will check them.
	probe := ledger.Reservation{OrgID: p.OrgID, HoldID: p.HoldID, Amount: 1, TTL: time.Second}
	return payloadError(probe.Validate())
}

func (p HoldPayload) reservation() (ledger.Reservation, error) {
	amount, err := p.amount()
	if err != nil {
		return ledger.Reservation{}, err
	}
	if p.TTLSeconds < 1 || p.TTLSeconds > int64(ledger.MaxHoldTTL/time.Second) {
		return ledger.Reservation{}, &PayloadError{Field: "ttl_seconds", Reason: fmt.Sprintf("must be between 1 and %d", int64(ledger.MaxHoldTTL/time.Second))}
	}
	return ledger.Reservation{OrgID: p.OrgID, HoldID: p.HoldID, Amount: amount, TTL: time.Duration(p.TTLSeconds) * time.Second,
		Feature: p.Feature, Team: p.Team, User: p.User}, nil
}

// NewHoldTask validates p and builds a task of type typ (TypeHoldReserve,
// TypeHoldCapture or TypeHoldRelease). Its id is derived from the operation,
// org and hold, and it is kept HoldResultRetention after completion so the
// caller can read its result.
func NewHoldTask(typ string, p HoldPayload) (*asynq.Task, error) {
	if p.Version == 0 {
		p.Version = HoldPayloadVersion
	}
	if err := p.validate(typ); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(typ, data,
		asynq.Queue(QueueUsage),
		asynq.TaskID(HoldTaskID(typ, p.OrgID, p.HoldID)),
		asynq.MaxRetry(25),
		asynq.Timeout(30*time.Second),
		asynq.Retention(HoldResultRetention),
	), nil
}

// HoldTaskID is the asynq task id of a hold operation.
func HoldTaskID(typ, orgID, holdID string) string { return typ + ":" + orgID + ":" + holdID }

// HoldHandler applies the three hold task types to the ledger, each in its
// own transaction: a hold is one decision the caller is waiting for, so
// there is nothing to batch.
type HoldHandler struct {
	Ledger *ledger.Ledger
	DB     ledger.TxBeginner
}

// ProcessTask applies one hold operation and writes its HoldTaskResult.
func (h *HoldHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p HoldPayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	if err := p.validate(t.Type()); err != nil {
		return permanent(err)
	}
	taskID, _ := asynq.GetTaskID(ctx)
	var res ledger.HoldResult
	err := ledger.WithRetry(ctx, h.DB, func(tx pgx.Tx) (err error) {
		switch t.Type() {
		case TypeHoldReserve:
			r, _ := p.reservation() // validated above
			res, err = h.Ledger.Reserve(ctx, tx, r)
		case TypeHoldCapture:
			amount, _ := p.amount()
			res, err = h.Ledger.Capture(ctx, tx, p.OrgID, p.HoldID, amount, taskID)
		default:
			res, err = h.Ledger.Release(ctx, tx, p.OrgID, p.HoldID)
		}
		return err
	})
	out := HoldTaskResult{Hold: &res}
	switch {
	case errors.Is(err, ledger.ErrInsufficientCredits):
		out = HoldTaskResult{Error: holdErrInsufficient}
	case err != nil && ledger.IsPermanent(err):
		return permanent(fmt.Errorf("%s %s/%s: %w", t.Type(), p.OrgID, p.HoldID, payloadError(err)))
	case err != nil:
		return fmt.Errorf("%s %s/%s: %w", t.Type(), p.OrgID, p.HoldID, err)
	}
	// If the write fails the retry replays the ledger's answer and writes it.
	return writeResult(t, out)
}

// Reserve sets amount credits aside for ttl under holdID and waits for the
// worker's answer. It returns an error wrapping ledger.ErrInsufficientCredits
// when the org cannot cover it. Calling it again with the same arguments
// returns the first answer.
func (c *Client) Reserve(ctx context.Context, orgID, holdID string, amount credits.Credits, ttl time.Duration, opts ...UsageOption) (ledger.HoldResult, error) {
	var u UsagePayload
	for _, o := range opts {
		o(&u)
	}
	s := amount.String()
	p := HoldPayload{OrgID: orgID, HoldID: holdID, Amount: &s, TTLSeconds: int64(ttl / time.Second),
		Feature: u.Feature, Team: u.Team, User: u.User}
	return c.hold(ctx, TypeHoldReserve, p)
}

// Capture spends amount credits of a hold (more or less than was held) and
// waits for the answer.
func (c *Client) Capture(ctx context.Context, orgID, holdID string, amount credits.Credits) (ledger.HoldResult, error) {
	s := amount.String()
	return c.hold(ctx, TypeHoldCapture, HoldPayload{OrgID: orgID, HoldID: holdID, Amount: &s})
}

// Release gives a hold's credits back and waits for the answer.
func (c *Client) Release(ctx context.Context, orgID, holdID string) (ledger.HoldResult, error) {
	return c.hold(ctx, TypeHoldRelease, HoldPayload{OrgID: orgID, HoldID: holdID})
}

func (c *Client) hold(ctx context.Context, typ string, p HoldPayload) (ledger.HoldResult, error) {
	task, err := NewHoldTask(typ, p)
	if err != nil {
		return ledger.HoldResult{}, err
	}
	// The same operation queued or done already (within the retention) is
	// not enqueued again: its answer is the one to wait for.
	if err := c.enqueue(ctx, task, QueueUsage, HoldTaskID(typ, p.OrgID, p.HoldID)); err != nil {
		return ledger.HoldResult{}, fmt.Errorf("enqueue %s %s/%s: %w", typ, p.OrgID, p.HoldID, err)
	}
	info, err := c.Wait(ctx, QueueUsage, HoldTaskID(typ, p.OrgID, p.HoldID))
	if err != nil {
		return ledger.HoldResult{}, err
	}
	var out HoldTaskResult
	if err := json.Unmarshal(info.Result, &out); err != nil {
		return ledger.HoldResult{}, fmt.Errorf("%s %s/%s: unreadable result: %w", typ, p.OrgID, p.HoldID, err)
	}
	switch {
	case out.Error == holdErrInsufficient:
		// Not a lasting answer: once credits are added the same reservation
		// may succeed, so the retained task must not answer for it again.
		if err := c.inspector.DeleteTask(QueueUsage, HoldTaskID(typ, p.OrgID, p.HoldID)); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return ledger.HoldResult{}, fmt.Errorf("%s %s/%s: %w (and forgetting the answer failed: %v)", typ, p.OrgID, p.HoldID, ledger.ErrInsufficientCredits, err)
		}
		return ledger.HoldResult{}, fmt.Errorf("%s %s/%s: %w", typ, p.OrgID, p.HoldID, ledger.ErrInsufficientCredits)
	case out.Error != "" || out.Hold == nil:
		return ledger.HoldResult{}, fmt.Errorf("%s %s/%s: unexpected result %q", typ, p.OrgID, p.HoldID, info.Result)
	}
	return *out.Hold, nil
}
