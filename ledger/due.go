package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DueKind is a kind of work the sweeps find due and hand to AdvanceCycles
// (which does every kind for the orgs it is given).
type DueKind string

const (
	// DueCycles: orgs with a cycle boundary at or before now not yet
	// performed (balances.next_cycle_at).
	DueCycles DueKind = "cycles"
	// DueLots: orgs with an open lot whose expiry is at or before now
	// (balances.next_expiry_at).
	DueLots DueKind = "lots"
	// DueHolds: orgs with an active hold whose time is up.
	DueHolds DueKind = "holds"
	// DueAlerts: orgs with alert rules, all of them: the sweep evaluates
	// their rules again (the runway rule needs it; for the others it is a
	// safety net, as every write evaluates what it may cross).
	DueAlerts DueKind = "alerts"
	// DueInvoices: orgs with a calendar month (in their zone) that has
	// ended and has no invoice (orgs.next_invoice_at). Not one of DueKinds:
	// its pages go to MakeInvoices, not to AdvanceCycles.
	DueInvoices DueKind = "invoices"
)

// DueKinds are all kinds of due work.
var DueKinds = []DueKind{DueCycles, DueLots, DueHolds, DueAlerts}

// MaxDuePage bounds one page of due orgs.
const MaxDuePage = 10000

// DueCursor is where a page of due orgs ended: pass it back for the next
// page. The zero value starts at the beginning. Pages are in order of the
// instant the work became due, then org id.
type DueCursor struct {
	At    time.Time `json:"at"`
	OrgID string    `json:"org"`
}

// DuePage is one page of due orgs.
type DuePage struct {
	Orgs []string  `json:"orgs"`
	Next DueCursor `json:"next"`
	// More is set when the page is full: more due orgs may follow.
	More bool `json:"more"`
}

// Each kind is a keyset page over an index on (due instant, org_id): the
// row comparison and the bound on now are one range of the index, so a page
// reads only its own rows whether a few orgs are due or a million (the
// instants of a month boundary are mostly equal; org_id breaks the ties).
var dueSQL = map[DueKind]string{
	DueCycles: `
SELECT org_id, next_cycle_at FROM balances
WHERE next_cycle_at <= $1 AND (next_cycle_at, org_id) > ($2::timestamptz, $3::text)
ORDER BY next_cycle_at, org_id LIMIT $4`,
	DueLots: `
SELECT org_id, next_expiry_at FROM balances
WHERE next_expiry_at <= $1 AND (next_expiry_at, org_id) > ($2::timestamptz, $3::text)
ORDER BY next_expiry_at, org_id LIMIT $4`,
	// One row per hold: an org with several elapsed holds may appear twice
	// (AdvanceCycles does nothing the second time), and a page may hold
	// fewer than limit orgs.
	DueHolds: `
SELECT org_id, expires_at FROM holds
WHERE status = 'active' AND expires_at <= $1 AND (expires_at, org_id) > ($2::timestamptz, $3::text)
ORDER BY expires_at, org_id LIMIT $4`,
	DueInvoices: `
SELECT org_id, next_invoice_at FROM orgs
WHERE next_invoice_at <= $1 AND (next_invoice_at, org_id) > ($2::timestamptz, $3::text)
ORDER BY next_invoice_at, org_id LIMIT $4`,
	// Orgs in id order (the cursor's instant stays zero): a loose index
	// scan over the rules' primary key, one probe per org, however many
	// rules each has.
	DueAlerts: `
WITH RECURSIVE o AS (
    (SELECT org_id FROM alert_rules WHERE org_id > $1 ORDER BY org_id LIMIT 1)
    UNION ALL
    SELECT (SELECT r.org_id FROM alert_rules r WHERE r.org_id > o.org_id ORDER BY r.org_id LIMIT 1)
    FROM o WHERE o.org_id IS NOT NULL
)
SELECT org_id, '0001-01-01T00:00:00Z'::timestamptz FROM o WHERE org_id IS NOT NULL LIMIT $2`,
}

// DueOrgs returns a page of the orgs that have work of the kind due at now,
// after the cursor. A sweep pages with it and hands each page to
// AdvanceCycles (directly, or as a task per page). Orgs whose work is done
// meanwhile leave the set; orgs that become due behind the cursor are found
// by the next sweep, as sweeps are level-triggered.
func (l *Ledger) DueOrgs(ctx context.Context, db DBTX, kind DueKind, now time.Time, after DueCursor, limit int) (DuePage, error) {
	query, ok := dueSQL[kind]
	if !ok {
		return DuePage{}, invalid("kind", "must be cycles, lots, holds, alerts or invoices, not %q", kind)
	}
	if limit <= 0 || limit > MaxDuePage {
		return DuePage{}, invalid("limit", "must be from 1 to %d", MaxDuePage)
	}
	// QueryExecModeExec plans each page with its own parameters (an unnamed
	// statement), never with a generic plan cached while the table was small.
	args := []any{pgx.QueryExecModeExec, now.UTC(), after.At.UTC(), after.OrgID, limit}
	if kind == DueAlerts {
		args = []any{pgx.QueryExecModeExec, after.OrgID, limit}
	}
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return DuePage{}, fmt.Errorf("due %s: %w", kind, mapError(err))
	}
	defer rows.Close()
	page := DuePage{Orgs: []string{}, Next: after}
	seen := map[string]bool{}
	n := 0
	for rows.Next() {
		var org string
		var at time.Time
		if err := rows.Scan(&org, &at); err != nil {
			return DuePage{}, fmt.Errorf("due %s: %w", kind, err)
		}
		n++
		if !seen[org] {
			seen[org] = true
			page.Orgs = append(page.Orgs, org)
		}
		page.Next = DueCursor{At: at.UTC(), OrgID: org}
	}
	if err := rows.Err(); err != nil {
		return DuePage{}, fmt.Errorf("due %s: %w", kind, mapError(err))
	}
	page.More = n == limit
	return page, nil
}
