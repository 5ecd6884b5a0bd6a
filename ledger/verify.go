package ledger

import (
	"context"
	"fmt"
)

// Violation is one broken ledger invariant.
type Violation struct {
	OrgID  string `json:"org,omitempty"`
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	OK         bool        `json:"ok"`
	Orgs       int64       `json:"orgs"`
	Entries    int64       `json:"entries"`
	Violations []Violation `json:"violations"`
}

// maxViolationsPerCheck bounds the report: a corrupted database should give a
// readable report, not millions of lines.
const maxViolationsPerCheck = 100

// Each check returns rows of (org_id, detail) that break one invariant.
var verifyChecks = []struct{ name, sql string }{
	{"balance_equals_entries", `
SELECT b.org_id, format('stored available=%s held=%s debt=%s, entries sum to available=%s held=%s debt=%s',
       b.available, b.held, b.debt, coalesce(e.amount, 0), coalesce(e.held, 0), coalesce(e.debt, 0))
FROM balances b
LEFT JOIN (SELECT org_id, sum(amount) AS amount, sum(held_delta) AS held, sum(debt_delta) AS debt
           FROM entries GROUP BY org_id) e ON e.org_id = b.org_id
WHERE b.available <> coalesce(e.amount, 0) OR b.held <> coalesce(e.held, 0) OR b.debt <> coalesce(e.debt, 0)`},
	{"balance_equals_lots", `
SELECT b.org_id, format('available=%s but lots remaining %s - held %s - debt %s = %s',
       b.available, coalesce(l.remaining, 0), b.held, b.debt, coalesce(l.remaining, 0) - b.held - b.debt)
FROM balances b
LEFT JOIN (SELECT org_id, sum(remaining) AS remaining FROM lots GROUP BY org_id) l ON l.org_id = b.org_id
WHERE b.available <> coalesce(l.remaining, 0) - b.held - b.debt`},
	{"lot_equals_entries", `
SELECT l.org_id, format('lot %s remaining=%s, its entries sum to %s', l.lot_id, l.remaining, coalesce(e.delta, 0))
FROM lots l
LEFT JOIN (SELECT org_id, lot_id, sum(lot_delta) AS delta FROM entries WHERE lot_id IS NOT NULL
           GROUP BY org_id, lot_id) e ON e.org_id = l.org_id AND e.lot_id = l.lot_id
WHERE l.remaining <> coalesce(e.delta, 0)`},
	{"held_equals_holds", `
SELECT b.org_id, format('held=%s, active holds sum to %s', b.held, coalesce(h.amount, 0))
FROM balances b
LEFT JOIN (SELECT org_id, sum(amount) AS amount FROM holds WHERE status = 'active' GROUP BY org_id) h
       ON h.org_id = b.org_id
WHERE b.held <> coalesce(h.amount, 0)`},
	{"running_balance", `
SELECT org_id, format('entry %s has balance_after=%s, running sum is %s', entry_id, balance_after, running)
FROM (SELECT org_id, entry_id, balance_after,
             sum(amount) OVER (PARTITION BY org_id ORDER BY entry_id) AS running
      FROM entries) x
WHERE balance_after <> running`},
	{"debt_only_when_lots_empty", `
SELECT b.org_id, format('debt=%s while lots hold %s unspent', b.debt, l.remaining)
FROM balances b
JOIN (SELECT org_id, sum(remaining) AS remaining FROM lots
      GROUP BY org_id) l ON l.org_id = b.org_id
WHERE b.debt > 0 AND l.remaining > 0`},
	{"usage_equals_entries", `
SELECT u.org_id, format('event %s is %s for %s but its entries debit %s', u.event_id, u.status, u.amount, coalesce(-e.amount, 0))
FROM usage_events u
LEFT JOIN (SELECT org_id, event_id, sum(lot_delta - debt_delta) AS amount FROM entries
           WHERE kind IN ('usage', 'capture') GROUP BY org_id, event_id) e ON e.org_id = u.org_id AND e.event_id = u.event_id
WHERE (u.status = 'applied' AND u.amount <> coalesce(-e.amount, 0))
   OR (u.status = 'rejected' AND coalesce(e.amount, 0) <> 0)`},
	{"rows_belong_to_orgs", `
SELECT x.org_id, format('%s row of an org that does not exist', x.tbl)
FROM (SELECT DISTINCT org_id, 'lots' AS tbl FROM lots
      UNION ALL SELECT DISTINCT org_id, 'entries' FROM entries
      UNION ALL SELECT DISTINCT org_id, 'usage_events' FROM usage_events
      UNION ALL SELECT DISTINCT org_id, 'operations' FROM operations
      UNION ALL SELECT DISTINCT org_id, 'cycle_usage' FROM cycle_usage) x
WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = x.org_id)`},
	{"entry_lot_exists", `
SELECT e.org_id, format('entry %s names lot %s, which the org does not have', e.entry_id, e.lot_id)
FROM entries e
WHERE e.lot_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM lots l WHERE l.org_id = e.org_id AND l.lot_id = e.lot_id)`},
	{"entries_append_only", `
SELECT NULL::text, 'the trigger refusing UPDATE and DELETE on entries is missing or disabled'
WHERE NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'entries_no_update'
                  AND tgrelid = 'entries'::regclass AND tgenabled <> 'D')`},
}

// Verify checks every ledger invariant for every org: the stored balance
// equals its entries and its lots, each lot equals its entries, the running
// balance of every entry is right, held equals the active holds, debt exists
// only when no unspent credits do, every usage event was debited exactly its
// cost, every row belongs to an existing org and every entry to a lot of its
// org (the checks the high-volume tables' missing foreign keys would make),
// and entries are protected from change. It reads only.
func (l *Ledger) Verify(ctx context.Context, db DBTX) (VerifyReport, error) {
	rep := VerifyReport{Violations: []Violation{}}
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM orgs), (SELECT count(*) FROM entries)`).
		Scan(&rep.Orgs, &rep.Entries); err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	for _, c := range verifyChecks {
		rows, err := db.Query(ctx, c.sql+fmt.Sprintf("\nLIMIT %d", maxViolationsPerCheck))
		if err != nil {
			return rep, fmt.Errorf("verify %s: %w", c.name, err)
		}
		for rows.Next() {
			var org *string
			v := Violation{Check: c.name}
			if err := rows.Scan(&org, &v.Detail); err != nil {
				rows.Close()
				return rep, fmt.Errorf("verify %s: %w", c.name, err)
			}
			if org != nil {
				v.OrgID = *org
			}
			rep.Violations = append(rep.Violations, v)
		}
		if err := rows.Err(); err != nil {
			return rep, fmt.Errorf("verify %s: %w", c.name, err)
		}
	}
	rep.OK = len(rep.Violations) == 0
	return rep, nil
}
