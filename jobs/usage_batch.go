package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/ledger"
)

// TypeUsageBatch records many usage events in one task and one ledger
// transaction. Its payload is UsageBatchPayload.
const TypeUsageBatch = "usage:batch"

// UsageBatchPayloadVersion is the batch payload version this code writes.
const UsageBatchPayloadVersion = 1

// MaxBatchEvents bounds the events of one batch task (and of one HTTP batch).
const MaxBatchEvents = 1000

// MaxBatchPayloadBytes bounds a batch task's payload.
const MaxBatchPayloadBytes = 1 << 20

// UsageBatchPayload carries up to MaxBatchEvents usage events, of one org or
// of many. Each event is a complete UsagePayload, so a batch is exactly the
// events it holds.
type UsageBatchPayload struct {
	Version int            `json:"v"`
	Events  []UsagePayload `json:"events"`
}

// Validate checks every event; the error names the event by its index
// ("events[3].amount").
func (p UsageBatchPayload) Validate() error {
	_, err := p.events()
	return err
}

func (p UsageBatchPayload) events() ([]ledger.UsageEvent, error) {
	if p.Version < 1 || p.Version > UsageBatchPayloadVersion {
		return nil, &PayloadError{Field: "v", Reason: fmt.Sprintf("unsupported payload version %d (this worker reads 1..%d)", p.Version, UsageBatchPayloadVersion)}
	}
	if len(p.Events) == 0 {
		return nil, &PayloadError{Field: "events", Reason: "required: at least one event"}
	}
	if len(p.Events) > MaxBatchEvents {
		return nil, &PayloadError{Field: "events", Reason: fmt.Sprintf("%d events, at most %d per batch", len(p.Events), MaxBatchEvents)}
	}
	seen := make(map[[2]string]int, len(p.Events))
	evs := make([]ledger.UsageEvent, len(p.Events))
	for i, e := range p.Events {
		if e.Version == 0 {
			e.Version = UsagePayloadVersion
		}
		ev, err := e.Event()
		if err != nil {
			return nil, indexed(i, err)
		}
		k := [2]string{ev.OrgID, ev.EventID}
		if j, dup := seen[k]; dup {
			return nil, &PayloadError{Field: fmt.Sprintf("events[%d].event_id", i), Reason: fmt.Sprintf("%q repeats events[%d]", ev.EventID, j)}
		}
		seen[k] = i
		evs[i] = ev
	}
	return evs, nil
}

// indexed prefixes the field of a payload error with the event's index.
func indexed(i int, err error) error {
	var pe *PayloadError
	if errors.As(err, &pe) {
		return &PayloadError{Field: fmt.Sprintf("events[%d].%s", i, pe.Field), Reason: pe.Reason}
	}
	return fmt.Errorf("events[%d]: %w", i, err)
}

// NewUsageBatchTask validates p and builds its task. The task id is a hash of
// the payload, so the same batch enqueued twice while the first is still
// waiting is refused by Redis; afterwards the ledger ignores the replay.
func NewUsageBatchTask(p UsageBatchPayload) (*asynq.Task, error) {
	if p.Version == 0 {
		p.Version = UsageBatchPayloadVersion
	}
	for i := range p.Events {
		if p.Events[i].Version == 0 {
			p.Events[i].Version = UsagePayloadVersion
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	data, err := encodePayload(p, MaxBatchPayloadBytes)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeUsageBatch, data,
		asynq.Queue(QueueUsage),
		asynq.TaskID(UsageBatchTaskID(data)),
		asynq.MaxRetry(25),
		asynq.Timeout(2*time.Minute),
	), nil
}

// UsageBatchTaskID is the task id of a batch payload: a hash of it.
func UsageBatchTaskID(payload []byte) string {
	sum := sha256.Sum256(payload)
	return "usage-batch:" + hex.EncodeToString(sum[:16])
}

// RecordUsageBatch validates events (up to MaxBatchEvents, of any orgs) and
// enqueues them as one task, applied in one ledger transaction. Nothing is
// enqueued when any event is invalid; the error names it ("events[3].amount").
func (c *Client) RecordUsageBatch(ctx context.Context, events []UsagePayload) error {
	task, err := NewUsageBatchTask(UsageBatchPayload{Version: UsageBatchPayloadVersion, Events: events})
	if err != nil {
		return err
	}
	if err := c.enqueue(ctx, task, QueueUsage, UsageBatchTaskID(task.Payload())); err != nil {
		return fmt.Errorf("enqueue usage batch of %d events: %w", len(events), err)
	}
	return nil
}

// UsageBatchHandler applies usage:batch tasks.
type UsageBatchHandler struct {
	Batcher *ledger.Batcher
}

// ProcessTask applies the batch in one transaction, which other batches of
// the same org may share (Batcher.ApplyAll). Events the ledger refuses
// for good do not hold back the others: those are applied, and the task is
// archived naming the refused events, so its re-run (a replay for the rest)
// is an operator's decision. Database trouble retries the whole batch, which
// the ledger's keys make safe.
func (h *UsageBatchHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p UsageBatchPayload
	if err := decodeStrictN(t.Payload(), &p, MaxBatchPayloadBytes); err != nil {
		return permanent(err)
	}
	evs, err := p.events()
	if err != nil {
		return permanent(err)
	}
	if id, ok := asynq.GetTaskID(ctx); ok {
		for i := range evs {
			evs[i].TaskID = id
		}
	}
	_, errs := h.Batcher.ApplyAll(ctx, evs)
	var refused []error
	for i, err := range errs {
		switch {
		case err == nil:
		case ledger.IsPermanent(err):
			refused = append(refused, indexed(i, payloadError(err)))
		default:
			return fmt.Errorf("usage batch of %d events: %w", len(evs), err)
		}
	}
	if len(refused) > 0 {
		return permanent(fmt.Errorf("%d of %d events refused: %w", len(refused), len(evs), errors.Join(refused...)))
	}
	return nil
}
