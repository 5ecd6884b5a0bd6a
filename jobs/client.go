package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Client is what applications use to record usage and holds on the queue.
type Client struct {
	asynq     *asynq.Client
	inspector *asynq.Inspector // follows tasks whose answer a caller waits for
}

// NewClient connects to Redis.
func NewClient(redis asynq.RedisConnOpt) *Client {
	return &Client{asynq: asynq.NewClient(redis), inspector: asynq.NewInspector(redis)}
}

// Close releases the Redis connections.
func (c *Client) Close() error { return errors.Join(c.asynq.Close(), c.inspector.Close()) }

// UsageOption sets what a usage event costs or who caused it.
type UsageOption func(*UsagePayload)

// WithAmount charges an exact number of credits.
func WithAmount(a credits.Credits) UsageOption {
	return func(p *UsagePayload) { s := a.String(); p.Amount = &s }
}

// WithFeature prices the event by the catalog's rate for feature × units (at
// least 1); with WithAmount or WithRuns it only labels the event.
func WithFeature(feature string, units int64) UsageOption {
	return func(p *UsagePayload) { p.Feature, p.Units = feature, units }
}

// WithRuns counts runs against the plan's included runs.
func WithRuns(n int64) UsageOption { return func(p *UsagePayload) { p.Runs = n } }

// WithTeam names the team, for team limits and reports.
func WithTeam(team string) UsageOption { return func(p *UsagePayload) { p.Team = team } }

// WithUser names the user, for user limits and reports.
func WithUser(user string) UsageOption { return func(p *UsagePayload) { p.User = user } }

// WithOccurredAt says when the usage happened (default: when it is applied).
func WithOccurredAt(t time.Time) UsageOption {
	return func(p *UsagePayload) { t := t.UTC(); p.OccurredAt = &t }
}

// RecordUsage enqueues one usage event. Enqueueing the same event again is
// harmless: while the first is still in Redis the duplicate is not enqueued
// (and reported as success), and afterwards the ledger ignores the replay.
// The same event id with other content while the first is still in Redis is
// ledger.ErrConflict; an archived task of the same id is replaced.
func (c *Client) RecordUsage(ctx context.Context, orgID, eventID string, opts ...UsageOption) error {
	p := UsagePayload{Version: UsagePayloadVersion, OrgID: orgID, EventID: eventID}
	for _, o := range opts {
		o(&p)
	}
	return c.EnqueueUsage(ctx, p)
}

// EnqueueUsage validates and enqueues a usage payload.
func (c *Client) EnqueueUsage(ctx context.Context, p UsagePayload) error {
	task, err := NewUsageTask(p)
	if err != nil {
		return err
	}
	if err := c.enqueue(ctx, task, QueueUsage, UsageTaskID(p.OrgID, p.EventID)); err != nil {
		return fmt.Errorf("enqueue usage %s/%s: %w", p.OrgID, p.EventID, err)
	}
	return nil
}

// enqueue enqueues task (whose id is id, on queue). A task with that id may
// be in Redis already: asynq keeps ids while a task waits, retries, is
// archived or is retained after completion.
//   - The same payload, not archived: a duplicate, fine; nothing is enqueued.
//   - Another payload: ledger.ErrConflict (the caller changed a request it had
//     sent; the first one is still to be applied, or was).
//   - Archived (refused for good, for its own reason): this request replaces
//     it, since nothing would ever apply it otherwise. The refusal stays in
//     the worker's log and metrics.
func (c *Client) enqueue(ctx context.Context, task *asynq.Task, queue, id string) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		_, err := c.asynq.EnqueueContext(ctx, task)
		if err == nil || !errors.Is(err, asynq.ErrTaskIDConflict) || attempt == attempts {
			return err
		}
		info, err := c.inspector.GetTaskInfo(queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			continue // it completed and was deleted meanwhile: enqueue again
		case err != nil:
			return fmt.Errorf("task %s exists already and cannot be read: %w", id, err)
		case info.State == asynq.TaskStateArchived:
			if err := c.inspector.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
				return fmt.Errorf("replace archived task %s: %w", id, err)
			}
			continue
		case !bytes.Equal(info.Payload, task.Payload()):
			return fmt.Errorf("%w: task %s exists already with another payload", ledger.ErrConflict, id)
		}
		return nil
	}
}
