package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// RestoreWindow is how long after a usage event its credits can be restored.
const RestoreWindow = 7 * 24 * time.Hour

// ErrRestoreWindow: the event is older than RestoreWindow.
var ErrRestoreWindow = fmt.Errorf("%w: the event is older than the 7-day restore window", ErrConflict)

// RestoreResult is what a restoration gave back.
type RestoreResult struct {
	OrgID        string          `json:"org"`
	EventID      string          `json:"event_id"`
	Restored     credits.Credits `json:"restored"`
	BalanceAfter credits.Credits `json:"balance_after"`
	Replayed     bool            `json:"replayed,omitempty"`
}

const restoreSourceSQL = `
SELECT u.recorded_at, u.status, e.lot_id, -e.lot_delta, e.debt_delta, l.expires_at
FROM usage_events u
LEFT JOIN entries e ON e.org_id = u.org_id AND e.key = $3 AND e.kind = 'usage'
LEFT JOIN lots l ON l.org_id = e.org_id AND l.lot_id = e.lot_id
WHERE u.org_id = $1 AND u.event_id = $2
ORDER BY e.entry_id`

// Restore gives back the credits a usage event spent, when the event failed
// through the platform's fault, within 7 days of it. Credits return in new
// lots with the expiry of the lots they came from; what the event booked as
// debt is forgiven. Restoring twice returns the first result.
func (l *Ledger) Restore(ctx context.Context, tx pgx.Tx, orgID, eventID string) (RestoreResult, error) {
	if err := validOrgID(orgID); err != nil {
		return RestoreResult{}, err
	}
	if err := validKey("event_id", eventID); err != nil {
		return RestoreResult{}, err
	}
	if strings.HasPrefix(eventID, CapturePrefix) {
		return RestoreResult{}, invalid("event_id", "captured holds cannot be restored, only usage events")
	}
	key := "restore:" + eventID
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{keys: []string{key}})
	if err != nil {
		return RestoreResult{}, err
	}
	s := states[orgID]
	hash := hashRequest(struct{ EventID string }{eventID})
	var res RestoreResult
	if found, err := s.replay(key, hash, &res); found {
		return replayed(ctx, l, tx, states, res, err)
	}
	type part struct {
		lotID     *int64
		taken     *int64
		debt      *int64
		expiresAt *time.Time
	}
	rows, err := tx.Query(ctx, restoreSourceSQL, orgID, eventID, usageKey(eventID))
	if err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	var recordedAt time.Time
	var status string
	var parts []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&recordedAt, &status, &p.lotID, &p.taken, &p.debt, &p.expiresAt); err != nil {
			rows.Close()
			return RestoreResult{}, fmt.Errorf("restore: %w", err)
		}
		if p.taken != nil {
			parts = append(parts, p)
		}
	}
	if err := rows.Err(); err != nil {
		return RestoreResult{}, fmt.Errorf("restore: %w", err)
	}
	if recordedAt.IsZero() {
		return RestoreResult{}, fmt.Errorf("usage event %s: %w", eventID, ErrNotFound)
	}
	if status != string(UsageApplied) {
		return RestoreResult{}, fmt.Errorf("%w: usage event %s was %s, nothing was spent", ErrConflict, eventID, status)
	}
	if s.at.Sub(recordedAt) > RestoreWindow {
		return RestoreResult{}, ErrRestoreWindow
	}
	// The event's debt first: what is still owed is forgiven; what later
	// credits already repaid comes back as a never-expiring lot. Forgiving
	// first also keeps the restored lots from repaying that same debt.
	var restored int64
	for _, p := range parts {
		if p.debt == nil || *p.debt <= 0 {
			continue
		}
		forgive := min(*p.debt, s.debt)
		if forgive > 0 {
			s.post(entryRow{kind: "restore", key: key, eventID: &eventID, debtDelta: -forgive})
		}
		if repaid := *p.debt - forgive; repaid > 0 {
			s.addLot("restore", SourceRestore, repaid, nil, key, entryRow{eventID: &eventID})
		}
		restored += *p.debt
	}
	// Credits keep the expiry of the lot they came from: those whose expiry
	// has passed would expire at once, so they are not restored at all.
	for _, p := range parts {
		if p.lotID == nil || *p.taken <= 0 || (p.expiresAt != nil && !p.expiresAt.After(s.at)) {
			continue
		}
		s.addLot("restore", SourceRestore, *p.taken, p.expiresAt, key, entryRow{eventID: &eventID})
		restored += *p.taken
	}
	res = RestoreResult{OrgID: orgID, EventID: eventID, Restored: credits.Credits(restored), BalanceAfter: credits.Credits(s.available)}
	s.remember(key, "restore", hash, res)
	return res, l.persist(ctx, tx, states)
}
