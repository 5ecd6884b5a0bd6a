package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

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
// harmless: while the first is still queued Redis refuses the duplicate
// (reported here as success), and afterwards the ledger ignores the replay.
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
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue usage %s/%s: %w", p.OrgID, p.EventID, err)
	}
	return nil
}
