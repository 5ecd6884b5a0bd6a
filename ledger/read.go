package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Balance is an org's balance at one instant, as `creditd balance --json`
// prints it.
type Balance struct {
	OrgID     string          `json:"org"`
	At        time.Time       `json:"at"`
	Available credits.Credits `json:"available"`
	Held      credits.Credits `json:"held"`
	Debt      credits.Credits `json:"debt"`
	Paused    bool            `json:"paused"`
	Lots      []LotBalance    `json:"lots"`
}

// LotBalance is what remains of one lot.
type LotBalance struct {
	ID        int64           `json:"id"`
	Source    string          `json:"source"`
	Amount    credits.Credits `json:"amount"`
	Remaining credits.Credits `json:"remaining"`
	GrantedAt time.Time       `json:"granted_at"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

// The lots as of $2, rebuilt from the entries: what each lot held then, for
// lots granted by then and not yet expired.
const lotsAtSQL = `
SELECT l.lot_id, l.source, l.amount, coalesce(sum(e.lot_delta), 0), l.granted_at, l.expires_at
FROM lots l
LEFT JOIN entries e ON e.org_id = l.org_id AND e.lot_id = l.lot_id AND e.at <= $2
WHERE l.org_id = $1 AND l.granted_at <= $2 AND (l.expires_at IS NULL OR l.expires_at > $2)
GROUP BY l.org_id, l.lot_id
HAVING coalesce(sum(e.lot_delta), 0) > 0
ORDER BY l.expires_at ASC NULLS LAST, l.granted_at, l.lot_id`

// Holds that were open at $2 and not yet due to expire.
const heldAtSQL = `
SELECT coalesce(sum(amount), 0) FROM holds
WHERE org_id = $1 AND created_at <= $2 AND (closed_at IS NULL OR closed_at > $2) AND expires_at > $2`

const debtAtSQL = `
SELECT coalesce(sum(debt_delta), 0) FROM entries WHERE org_id = $1 AND at <= $2`

// BalanceAt returns the org's balance as it was (or, for a future instant,
// will be if nothing else happens) at t. Credits whose expiry had passed at t
// and holds whose time was up count as gone, whether or not a sweep has
// written that down yet; so the balance now is BalanceAt(now).
func (l *Ledger) BalanceAt(ctx context.Context, db DBTX, orgID string, t time.Time) (Balance, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return Balance{}, err
	}
	t = t.UTC().Truncate(time.Microsecond)
	b := &pgx.Batch{}
	b.Queue(lotsAtSQL, orgID, t)
	b.Queue(heldAtSQL, orgID, t)
	b.Queue(debtAtSQL, orgID, t)
	br := db.SendBatch(ctx, b)
	defer br.Close()
	rows, _ := br.Query()
	lots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LotBalance, error) {
		var lb LotBalance
		err := r.Scan(&lb.ID, &lb.Source, &lb.Amount, &lb.Remaining, &lb.GrantedAt, &lb.ExpiresAt)
		lb.GrantedAt = lb.GrantedAt.UTC()
		if lb.ExpiresAt != nil {
			e := lb.ExpiresAt.UTC()
			lb.ExpiresAt = &e
		}
		return lb, err
	})
	if err != nil {
		return Balance{}, fmt.Errorf("balance %s: %w", orgID, err)
	}
	bal := Balance{OrgID: orgID, At: t, Lots: lots}
	if err := br.QueryRow().Scan(&bal.Held); err != nil {
		return Balance{}, fmt.Errorf("balance %s: %w", orgID, err)
	}
	if err := br.QueryRow().Scan(&bal.Debt); err != nil {
		return Balance{}, fmt.Errorf("balance %s: %w", orgID, err)
	}
	for _, lot := range lots {
		bal.Available += lot.Remaining
	}
	bal.Available -= bal.Held + bal.Debt
	bal.Paused = bal.Available < 0 || bal.Debt > 0
	return bal, nil
}

// Balance returns the balance now.
func (l *Ledger) Balance(ctx context.Context, db DBTX, orgID string) (Balance, error) {
	return l.BalanceAt(ctx, db, orgID, l.now())
}

// Entry is one immutable change of an org's balance.
type Entry struct {
	ID           int64           `json:"id"`
	Kind         string          `json:"kind"`
	Amount       credits.Credits `json:"amount"`
	BalanceAfter credits.Credits `json:"balance_after"`
	Key          string          `json:"key"`
	At           time.Time       `json:"at"`
	LotID        *int64          `json:"lot_id,omitempty"`
	LotChange    credits.Credits `json:"lot_change"`
	HoldID       *string         `json:"hold_id,omitempty"`
	HeldChange   credits.Credits `json:"held_change"`
	DebtChange   credits.Credits `json:"debt_change"`
	EventID      *string         `json:"event_id,omitempty"`
	Team         *string         `json:"team,omitempty"`
	User         *string         `json:"user,omitempty"`
	Feature      *string         `json:"feature,omitempty"`
	TaskID       *string         `json:"task_id,omitempty"`
	PaymentID    *string         `json:"payment_id,omitempty"`
	// Carried is set on rollover entries: the allocation credits carried
	// into the new cycle (after the rollover cap).
	Carried *credits.Credits `json:"carried,omitempty"`
}

const historySQL = `
SELECT entry_id, kind, amount, balance_after, key, at, lot_id, lot_delta, hold_id, held_delta, debt_delta,
       event_id, team, user_id, feature, task_id, payment_id, carried
FROM entries WHERE org_id = $1 AND entry_id > $2
ORDER BY entry_id LIMIT $3`

// MaxHistoryPage bounds one page of history.
const MaxHistoryPage = 10000

// HistoryPage is entries of an org, oldest first: `creditd history --json`
// (every entry) and GET /v1/orgs/{org}/history (one page) print it.
type HistoryPage struct {
	Entries []Entry `json:"entries"`
	// NextAfter, when set, is the id to pass as after for the next page:
	// the page was full, so more entries may follow.
	NextAfter *int64 `json:"next_after,omitempty"`
}

// History returns up to limit entries of the org after entry id `after`,
// oldest first. Page with the last ID returned.
func (l *Ledger) History(ctx context.Context, db DBTX, orgID string, after int64, limit int) ([]Entry, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxHistoryPage {
		limit = MaxHistoryPage
	}
	rows, err := db.Query(ctx, historySQL, orgID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", orgID, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.ID, &e.Kind, &e.Amount, &e.BalanceAfter, &e.Key, &e.At, &e.LotID, &e.LotChange, &e.HoldID,
			&e.HeldChange, &e.DebtChange, &e.EventID, &e.Team, &e.User, &e.Feature, &e.TaskID, &e.PaymentID, &e.Carried)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", orgID, err)
	}
	return entries, nil
}

// UsageRecord is a usage event as stored, applied or rejected.
type UsageRecord struct {
	EventID     string          `json:"event_id"`
	Status      UsageStatus     `json:"status"`
	Reason      *string         `json:"reason,omitempty"`
	Feature     *string         `json:"feature,omitempty"`
	Units       *int64          `json:"units,omitempty"`
	Runs        *int64          `json:"runs,omitempty"`
	OverageRuns int64           `json:"overage_runs"`
	Amount      credits.Credits `json:"amount"`
	Debt        credits.Credits `json:"debt"`
	// BalanceAfter is the org's available balance right after the event.
	BalanceAfter credits.Credits `json:"balance_after"`
	Team         *string         `json:"team,omitempty"`
	User         *string         `json:"user,omitempty"`
	OccurredAt   time.Time       `json:"occurred_at"`
	RecordedAt   time.Time       `json:"recorded_at"`
}

const usageEventSQL = `
SELECT event_id, status, reason, feature, units, runs, overage_runs, amount, debt, balance_after, team, user_id,
       occurred_at, recorded_at
FROM usage_events WHERE org_id = $1 AND event_id = $2`

// UsageEventStatus reads a recorded usage event; ErrNotFound until it is applied.
func (l *Ledger) UsageEventStatus(ctx context.Context, db DBTX, orgID, eventID string) (UsageRecord, error) {
	var u UsageRecord
	var status string
	err := db.QueryRow(ctx, usageEventSQL, orgID, eventID).Scan(&u.EventID, &status, &u.Reason, &u.Feature, &u.Units,
		&u.Runs, &u.OverageRuns, &u.Amount, &u.Debt, &u.BalanceAfter, &u.Team, &u.User, &u.OccurredAt, &u.RecordedAt)
	if err != nil {
		return UsageRecord{}, fmt.Errorf("usage event %s/%s: %w", orgID, eventID, mapError(err))
	}
	u.Status = UsageStatus(status)
	return u, nil
}

// Result is the record as the UsageResult its first application returned.
func (u UsageRecord) Result(orgID string) UsageResult {
	r := UsageResult{OrgID: orgID, EventID: u.EventID, Status: u.Status, Cost: u.Amount, Debt: u.Debt,
		OverageRuns: u.OverageRuns, BalanceAfter: u.BalanceAfter}
	if u.Reason != nil {
		r.Reason = *u.Reason
	}
	return r
}
