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

// Each check returns rows of (org_id, detail) that break one invariant. The
// checks that compare a table with the entries do it as one UNION ALL and
// GROUP BY: a single pass over each table that stays linear whatever the
// planner's statistics say (a join of two aggregates can turn into a nested
// loop on a freshly loaded, unanalyzed database).
var verifyChecks = []struct{ name, sql string }{
	{"balance_equals_entries", `
SELECT org_id, format('stored available=%s held=%s debt=%s, entries sum to available=%s held=%s debt=%s',
       sum(s_avail), sum(s_held), sum(s_debt), sum(e_avail), sum(e_held), sum(e_debt))
FROM (SELECT org_id, available AS s_avail, held AS s_held, debt AS s_debt, 0 AS e_avail, 0 AS e_held, 0 AS e_debt
      FROM balances
      UNION ALL
      SELECT org_id, 0, 0, 0, amount, held_delta, debt_delta FROM entries) x
GROUP BY org_id
HAVING sum(s_avail) <> sum(e_avail) OR sum(s_held) <> sum(e_held) OR sum(s_debt) <> sum(e_debt)`},
	{"balance_equals_lots", `
SELECT org_id, format('available=%s but lots remaining %s - held %s - debt %s = %s',
       sum(avail), sum(remaining), sum(held), sum(debt), sum(remaining) - sum(held) - sum(debt))
FROM (SELECT org_id, available AS avail, held, debt, 0 AS remaining FROM balances
      UNION ALL
      SELECT org_id, 0, 0, 0, remaining FROM lots) x
GROUP BY org_id
HAVING sum(avail) <> sum(remaining) - sum(held) - sum(debt)`},
	{"lot_equals_entries", `
SELECT org_id, format('lot %s remaining=%s, its entries sum to %s', lot_id, sum(remaining), sum(delta))
FROM (SELECT org_id, lot_id, remaining, 0 AS delta FROM lots
      UNION ALL
      SELECT org_id, lot_id, 0, lot_delta FROM entries WHERE lot_id IS NOT NULL) x
GROUP BY org_id, lot_id
HAVING sum(remaining) <> sum(delta)`},
	{"held_equals_holds", `
SELECT org_id, format('held=%s, active holds sum to %s', sum(held), sum(active))
FROM (SELECT org_id, held, 0 AS active FROM balances
      UNION ALL
      SELECT org_id, 0, amount FROM holds WHERE status = 'active') x
GROUP BY org_id
HAVING sum(held) <> sum(active)`},
	{"running_balance", `
SELECT org_id, format('entry %s has balance_after=%s, running sum is %s', entry_id, balance_after, running)
FROM (SELECT org_id, entry_id, balance_after,
             sum(amount) OVER (PARTITION BY org_id ORDER BY entry_id) AS running
      FROM entries) x
WHERE balance_after <> running`},
	{"debt_only_when_lots_empty", `
SELECT org_id, format('debt=%s while lots hold %s unspent', sum(debt), sum(remaining))
FROM (SELECT org_id, debt, 0 AS remaining FROM balances WHERE debt > 0
      UNION ALL
      SELECT org_id, 0, remaining FROM lots WHERE remaining > 0) x
GROUP BY org_id
HAVING sum(debt) > 0 AND sum(remaining) > 0`},
	{"usage_equals_entries", `
SELECT org_id, format('event %s is %s for %s but its entries debit %s', event_id, max(status), sum(cost), sum(debited))
FROM (SELECT org_id, event_id, status, CASE WHEN status = 'applied' THEN amount ELSE 0 END AS cost, 0 AS debited
      FROM usage_events
      UNION ALL
      SELECT org_id, event_id, NULL, 0, debt_delta - lot_delta FROM entries
      WHERE kind IN ('usage', 'capture') AND event_id IS NOT NULL) x
GROUP BY org_id, event_id
HAVING sum(cost) <> sum(debited) OR max(status) IS NULL`},
	{"rows_belong_to_orgs", `
SELECT x.org_id, format('%s row of an org that does not exist', x.tbl)
FROM (SELECT DISTINCT org_id, 'lots' AS tbl FROM lots
      UNION ALL SELECT DISTINCT org_id, 'entries' FROM entries
      UNION ALL SELECT DISTINCT org_id, 'usage_events' FROM usage_events
      UNION ALL SELECT DISTINCT org_id, 'operations' FROM operations
      UNION ALL SELECT DISTINCT org_id, 'cycle_usage' FROM cycle_usage
      UNION ALL SELECT DISTINCT org_id, 'invoices' FROM invoices) x
WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = x.org_id)`},
	{"entry_lot_exists", `
SELECT org_id, format('entries name lot %s, which the org does not have', lot_id)
FROM (SELECT org_id, lot_id, 1 AS is_lot FROM lots
      UNION ALL
      SELECT DISTINCT org_id, lot_id, 0 FROM entries WHERE lot_id IS NOT NULL) x
GROUP BY org_id, lot_id
HAVING max(is_lot) = 0`},
	{"next_expiry_matches_lots", `
SELECT org_id, format('next_expiry_at=%s, the soonest expiry of an open lot is %s', max(stored), min(soonest))
FROM (SELECT org_id, next_expiry_at AS stored, NULL::timestamptz AS soonest FROM balances
      UNION ALL
      SELECT org_id, NULL, expires_at FROM lots WHERE remaining > 0 AND expires_at IS NOT NULL) x
GROUP BY org_id
HAVING max(stored) IS DISTINCT FROM min(soonest)`},
	{"allocation_once_per_cycle", `
SELECT org_id, format('%s allocation lots with key %s', count(*), key)
FROM lots WHERE source = 'allocation' AND key LIKE 'allocation:%'
GROUP BY org_id, key
HAVING count(*) > 1`},
	{"reversals_equal_entries", `
SELECT org_id, format('payment %s has %s credits taken back, its refund and dispute entries take %s',
       payment_id, sum(taken), -sum(amount))
FROM (SELECT org_id, payment_id, taken_back AS taken, 0 AS amount FROM payments
      UNION ALL
      SELECT org_id, payment_id, 0, amount FROM entries WHERE kind IN ('refund', 'dispute')) x
GROUP BY org_id, payment_id
HAVING sum(taken) <> -sum(amount)`},
	{"reversal_arithmetic", `
SELECT p.org_id, format('payment %s of %s credits for %s, refunded %s, disputed %s (disputes sum to %s): taken back %s',
       p.payment_id, p.credits, p.amount_minor, p.refunded_minor, p.disputed_minor, coalesce(d.sum, 0), p.taken_back)
FROM payments p
LEFT JOIN (SELECT payment_id, sum(amount_minor) AS sum FROM payment_disputes GROUP BY payment_id) d ON d.payment_id = p.payment_id
WHERE p.disputed_minor <> coalesce(d.sum, 0)
   OR p.taken_back <> floor(p.credits::numeric * least(p.amount_minor, p.refunded_minor + p.disputed_minor) / p.amount_minor)`},
	{"invoice_closes_at_its_last_entry", `
SELECT i.org_id, format('invoice %s closes at %s, its last entry %s recorded %s', i.period, i.closing_balance,
       i.through_entry_id, coalesce(e.balance_after, 0))
FROM invoices i LEFT JOIN entries e ON e.org_id = i.org_id AND e.entry_id = i.through_entry_id
WHERE i.closing_balance <> coalesce(e.balance_after, 0)`},
	{"invoice_opens_at_previous_close", `
SELECT i.org_id, format('invoice %s opens at %s, the invoice of the month before closed at %s', i.period,
       i.opening_balance, p.closing_balance)
FROM invoices i JOIN invoices p ON p.org_id = i.org_id AND p.period_end = i.period_start
WHERE i.opening_balance <> p.closing_balance`},
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
// the soonest expiry the expiry sweep pages by is that of the open lots, no
// cycle was allocated twice, every refunded or disputed payment took back
// exactly floor(credits × returned / paid) in its entries, every invoice
// closes at the balance its last entry recorded and opens at the previous
// month's close, and entries are
// protected from change. It reads only.
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
