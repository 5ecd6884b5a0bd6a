package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// TypeUsage records one usage event. Its payload is UsagePayload.
const TypeUsage = "usage:record"

// UsagePayloadVersion is the payload version this code writes. Workers read
// every version up to it, so tasks enqueued before an upgrade keep working.
const UsagePayloadVersion = 1

// UsagePayload is one usage event on the queue. Amounts are decimal credit
// strings ("2.5"), never JSON numbers, so no float ever touches them.
type UsagePayload struct {
	Version    int             `json:"v"`
	OrgID      string          `json:"org_id"`
	EventID    string          `json:"event_id"`
	Amount     *string         `json:"amount,omitempty"`
	Feature    string          `json:"feature,omitempty"`
	Units      int64           `json:"units,omitempty"`
	Runs       int64           `json:"runs,omitempty"`
	Team       string          `json:"team,omitempty"`
	User       string          `json:"user,omitempty"`
	OccurredAt *time.Time      `json:"occurred_at,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// Event validates the payload and turns it into a ledger event. Errors are
// *PayloadError naming the field.
func (p UsagePayload) Event() (ledger.UsageEvent, error) {
	if p.Version < 1 || p.Version > UsagePayloadVersion {
		return ledger.UsageEvent{}, &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, UsagePayloadVersion)}
	}
	ev := ledger.UsageEvent{OrgID: p.OrgID, EventID: p.EventID, Feature: p.Feature, Units: p.Units, Runs: p.Runs,
		Team: p.Team, User: p.User, Metadata: p.Metadata}
	if p.Amount != nil {
		c, err := credits.Parse(*p.Amount)
		if err != nil {
			return ledger.UsageEvent{}, &PayloadError{Field: "amount", Reason: fmt.Sprintf("%q: %v", *p.Amount, err)}
		}
		ev.Amount = &c
	}
	if p.OccurredAt != nil {
		ev.OccurredAt = *p.OccurredAt
	}
	if err := ev.Validate(); err != nil {
		return ledger.UsageEvent{}, payloadError(err)
	}
	return ev, nil
}

// payloadError turns a ledger validation error into a *PayloadError.
func payloadError(err error) error {
	var v *ledger.ValidationError
	if errors.As(err, &v) {
		return &PayloadError{Field: v.Field, Reason: v.Reason}
	}
	return err
}

// NewUsageTask validates p and builds its task: queue usage, a task id
// derived from the org and event (so a duplicate enqueued while the first is
// still waiting is refused by Redis), and retries with asynq's backoff for
// transient failures.
func NewUsageTask(p UsagePayload) (*asynq.Task, error) {
	if p.Version == 0 {
		p.Version = UsagePayloadVersion
	}
	if _, err := p.Event(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeUsage, data,
		asynq.Queue(QueueUsage),
		asynq.TaskID(UsageTaskID(p.OrgID, p.EventID)),
		asynq.MaxRetry(25),
		asynq.Timeout(30*time.Second),
	), nil
}

// UsageTaskID is the asynq task id of a usage event.
func UsageTaskID(orgID, eventID string) string { return "usage:" + orgID + ":" + eventID }

// UsageHandler applies usage tasks through a Batcher.
type UsageHandler struct {
	Batcher *ledger.Batcher
}

// ProcessTask decodes, validates and applies one usage event. Bad payloads
// and events the ledger refuses for good (unknown org, unknown feature, an
// event id reused with other content) are archived; database trouble is
// retried.
func (h *UsageHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p UsagePayload
	if err := decodeStrict(t.Payload(), &p); err != nil {
		return permanent(err)
	}
	ev, err := p.Event()
	if err != nil {
		return permanent(err)
	}
	if id, ok := asynq.GetTaskID(ctx); ok {
		ev.TaskID = id
	}
	if _, err := h.Batcher.Apply(ctx, ev); err != nil {
		if ledger.IsPermanent(err) {
			return permanent(payloadError(err))
		}
		return fmt.Errorf("usage %s/%s: %w", ev.OrgID, ev.EventID, err)
	}
	return nil
}
