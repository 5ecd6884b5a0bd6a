package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// copyRowsMin is the number of entries, or of usage rows, from which persist
// writes them with COPY instead of an INSERT from arrays: COPY takes its own
// round trip but half the server time for large batches (4,000 entries: 35
// instead of 77 ms here), which is what a page of cycle boundaries or a large
// usage batch writes. For usage rows it is also Go time saved under the org's
// lock, where pgx would encode 18 arrays before sending them: one org's
// 1,000-event batches went from 30,700 to 36,300-37,800 events/s with COPY
// for both and the events' hashing moved out of the lock (`creditd load
// --mode batch --events 1000000 --orgs 1`, 2 cores). COPY keeps the rows'
// order, so entry ids follow the order of posting, as with the INSERT.
const copyRowsMin = 500

var entryCopyColumns = []string{"org_id", "kind", "amount", "balance_after", "lot_id", "lot_delta", "hold_id",
	"held_delta", "debt_delta", "key", "event_id", "team", "user_id", "feature", "task_id", "payment_id", "at", "carried"}

func (c *entryColumns) copy(ctx context.Context, tx pgx.Tx) error {
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryCopyColumns, &entryCopySource{c: c, i: -1})
	if err != nil {
		return fmt.Errorf("write entries: %w", err)
	}
	if n != int64(len(c.org)) {
		return fmt.Errorf("write entries: wrote %d of %d", n, len(c.org))
	}
	return nil
}

// entryCopySource feeds entryColumns to COPY row by row, in the order of
// entryCopyColumns.
type entryCopySource struct {
	c   *entryColumns
	i   int
	row [18]any
}

func (s *entryCopySource) Next() bool {
	s.i++
	return s.i < len(s.c.org)
}

func (s *entryCopySource) Values() ([]any, error) {
	c, i := s.c, s.i
	s.row = [18]any{c.org[i], c.kind[i], c.amount[i], c.balanceAfter[i], c.lotID[i], c.lotDelta[i], c.holdID[i],
		c.heldDelta[i], c.debtDelta[i], c.key[i], c.eventID[i], c.team[i], c.user[i], c.feature[i], c.taskID[i],
		c.paymentID[i], c.at[i], c.carried[i]}
	return s.row[:], nil
}

func (s *entryCopySource) Err() error { return nil }

var usageCopyColumns = []string{"org_id", "event_id", "status", "reason", "feature", "units", "runs", "overage_runs",
	"amount", "team", "user_id", "occurred_at", "recorded_at", "cycle_start", "metadata", "debt", "balance_after",
	"request_hash"}

// usageCopy is the usage rows of a transaction, for COPY.
type usageCopy struct {
	rows []usageCopyRow
}

type usageCopyRow struct {
	org        string
	recordedAt time.Time
	cycle      time.Time
	u          *usageRow
}

func (c *usageCopy) add(s *orgState) {
	for i := range s.events {
		c.rows = append(c.rows, usageCopyRow{org: s.org.ID, recordedAt: s.at, cycle: s.cycle.Start, u: &s.events[i]})
	}
}

func (c *usageCopy) copy(ctx context.Context, tx pgx.Tx) error {
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_events"}, usageCopyColumns, &usageCopySource{c: c, i: -1})
	if err != nil {
		return fmt.Errorf("write usage events: %w", err)
	}
	if n != int64(len(c.rows)) {
		return fmt.Errorf("write usage events: wrote %d of %d", n, len(c.rows))
	}
	return nil
}

// usageCopySource feeds usage rows to COPY, in the order of usageCopyColumns.
type usageCopySource struct {
	c   *usageCopy
	i   int
	row [18]any
}

func (s *usageCopySource) Next() bool {
	s.i++
	return s.i < len(s.c.rows)
}

func (s *usageCopySource) Values() ([]any, error) {
	r := s.c.rows[s.i]
	u := r.u
	s.row = [18]any{r.org, u.eventID, u.status, u.reason, u.feature, u.units, u.runs, u.overageRuns, u.amount, u.team,
		u.user, u.occurredAt, r.recordedAt, r.cycle, u.metadata, u.debt, u.balance, u.hash}
	return s.row[:], nil
}

func (s *usageCopySource) Err() error { return nil }
