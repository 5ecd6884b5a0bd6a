package ledger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// invoiceRow is an invoice computed and what storing it needs.
type invoiceRow struct {
	inv     Invoice
	through int64 // the last entry dated before the period's end (0: none)
	loc     *time.Location
	dueAt   time.Time // orgs.next_invoice_at as read: moved on only from there
}

// The three statements of a page of invoices, each one pass over the page's
// orgs: k(org_id, start_at, end_at) with the previous month's invoice p (its
// closing balance and last entry), if there is one. Every per-org read is a
// LATERAL subquery with OFFSET 0 (one index probe per org; see loadNeeds).

// The previous invoice of the org, the last entry dated before the period's
// end after that invoice's last one, and one pass over the entries in
// between: a single-row aggregate per org whose FILTER clauses sort each
// entry into the invoice's columns. What moved lots and debt (amount +
// held_delta) counts by sign: every credit added is granted, whatever its
// kind; a credit removed is expired (expiry), used (usage and captures) or
// taken (refunds, disputes, negative adjustments and any other kind). Holds
// count apart (held), as they move credits between available and held only.
// Before the period only the effect on the balance (amount) and on debt
// counts.
const invoiceEntriesSQL = `
SELECT k.org_id, p.org_id IS NOT NULL, coalesce(p.closing_balance, 0), coalesce(p.closing_debt, 0),
       coalesce(p.through_entry_id, 0), coalesce(x.entry_id, 0), x.balance_after,
       s.before, s.before_debt, s.granted, s.used, s.expired, s.taken, s.held, s.debt
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS k(org_id, start_at, end_at)
LEFT JOIN LATERAL (
    SELECT p.org_id, p.closing_balance, p.closing_debt, p.through_entry_id FROM invoices p
    WHERE p.org_id = k.org_id AND p.period_end = k.start_at
    OFFSET 0
) p ON true
LEFT JOIN LATERAL (
    SELECT e.entry_id, e.balance_after FROM entries e
    WHERE e.org_id = k.org_id AND e.entry_id > coalesce(p.through_entry_id, 0) AND e.at < k.end_at
    ORDER BY e.entry_id DESC LIMIT 1
) x ON true
CROSS JOIN LATERAL (
    SELECT coalesce(sum(e.amount) FILTER (WHERE e.at < k.start_at), 0) AS before,
           coalesce(sum(e.debt_delta) FILTER (WHERE e.at < k.start_at), 0) AS before_debt,
           coalesce(sum(e.amount + e.held_delta) FILTER (WHERE e.at >= k.start_at AND e.amount + e.held_delta > 0), 0) AS granted,
           coalesce(-sum(e.amount + e.held_delta) FILTER (WHERE e.at >= k.start_at AND e.amount + e.held_delta < 0
                                                          AND e.kind IN ('usage', 'capture')), 0) AS used,
           coalesce(-sum(e.amount + e.held_delta) FILTER (WHERE e.at >= k.start_at AND e.amount + e.held_delta < 0
                                                          AND e.kind = 'expiry'), 0) AS expired,
           coalesce(-sum(e.amount + e.held_delta) FILTER (WHERE e.at >= k.start_at AND e.amount + e.held_delta < 0
                                                          AND e.kind NOT IN ('usage', 'capture', 'expiry')), 0) AS taken,
           coalesce(sum(e.held_delta) FILTER (WHERE e.at >= k.start_at), 0) AS held,
           coalesce(sum(e.debt_delta) FILTER (WHERE e.at >= k.start_at), 0) AS debt
    FROM entries e
    WHERE e.org_id = k.org_id AND e.entry_id > coalesce(p.through_entry_id, 0) AND e.at < k.end_at
    OFFSET 0
) s`

// The usage events recorded in the period (the same instants as their
// entries), by feature and team, each org's aggregated on its own (a few
// groups per org, where one grouping of the whole page's events cost twice
// as much): applied events, their credits and runs, and rejected events.
// computeInvoices adds the groups up into lines by feature and by team.
const invoiceUsageSQL = `
SELECT k.org_id, coalesce(u.feature, ''), coalesce(u.team, ''), u.applied, u.credits, u.rejected, u.runs, u.overage_runs,
       u.overage_credits
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS k(org_id, start_at, end_at)
JOIN LATERAL (
    SELECT u.feature, u.team,
           count(*) FILTER (WHERE u.status = 'applied') AS applied,
           coalesce(sum(u.amount) FILTER (WHERE u.status = 'applied'), 0) AS credits,
           count(*) FILTER (WHERE u.status = 'rejected') AS rejected,
           coalesce(sum(u.runs) FILTER (WHERE u.status = 'applied'), 0) AS runs,
           coalesce(sum(u.overage_runs) FILTER (WHERE u.status = 'applied'), 0) AS overage_runs,
           coalesce(sum(u.amount) FILTER (WHERE u.status = 'applied' AND u.runs > 0), 0) AS overage_credits
    FROM usage_events u
    WHERE u.org_id = k.org_id AND u.recorded_at >= k.start_at AND u.recorded_at < k.end_at
    GROUP BY u.feature, u.team
) u ON true`

const invoicePaymentsSQL = `
SELECT k.org_id, x.payment_id, x.kind, x.credits, x.amount_minor, x.currency, x.paid_at
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS k(org_id, start_at, end_at)
JOIN LATERAL (
    SELECT y.payment_id, y.kind, y.credits, y.amount_minor, y.currency, y.paid_at FROM payments y
    WHERE y.org_id = k.org_id AND y.paid_at >= k.start_at AND y.paid_at < k.end_at
    OFFSET 0
) x ON true
ORDER BY k.org_id, x.paid_at, x.payment_id`

// invoiceSums is what the entries of one org say.
type invoiceSums struct {
	hasPrev                       bool
	prevClosing, prevDebt         int64
	prevThrough, lastID           int64
	lastBalance                   *int64
	before, beforeDebt            int64 // entries after the previous invoice and before the period
	granted, used, expired, taken int64
	held, debt                    int64
}

// computeInvoices computes the invoices of the dues, for all their orgs at
// once (three statements in one round trip). An org whose invoice cannot be
// made (its plan is missing, or its invoice does not reconcile) is in
// failed with the reason; the others are returned.
func (l *Ledger) computeInvoices(ctx context.Context, tx pgx.Tx, dues []invoiceDue) ([]invoiceRow, map[string]string, error) {
	failed := map[string]string{}
	if len(dues) == 0 {
		return nil, failed, nil
	}
	ids, starts, ends := make([]string, len(dues)), make([]time.Time, len(dues)), make([]time.Time, len(dues))
	for i, d := range dues {
		ids[i], starts[i], ends[i] = d.org.ID, d.start, d.end
	}
	// These reads are index probes per org whose page estimates pass
	// jit_above_cost: the sessions run without JIT (ConfigureSessions).
	b := &pgx.Batch{}
	b.Queue(invoiceEntriesSQL, ids, starts, ends)
	b.Queue(invoiceUsageSQL, ids, starts, ends)
	b.Queue(invoicePaymentsSQL, ids, starts, ends)
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	sums := make(map[string]*invoiceSums, len(dues))
	rows, _ := br.Query()
	for rows.Next() {
		var id string
		s := &invoiceSums{}
		if err := rows.Scan(&id, &s.hasPrev, &s.prevClosing, &s.prevDebt, &s.prevThrough, &s.lastID, &s.lastBalance,
			&s.before, &s.beforeDebt, &s.granted, &s.used, &s.expired, &s.taken, &s.held, &s.debt); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("invoices: %w", err)
		}
		sums[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapError(fmt.Errorf("invoices: %w", err))
	}

	invs := make(map[string]*Invoice, len(dues))
	for _, d := range dues {
		invs[d.org.ID] = &Invoice{OrgID: d.org.ID, UsageByFeature: []UsageLine{}, UsageByTeam: []UsageLine{},
			Payments: []InvoicePayment{}}
	}
	rows, _ = br.Query()
	for rows.Next() {
		var id, feature, team string
		var line UsageLine
		var runs, overage, overageCredits int64
		if err := rows.Scan(&id, &feature, &team, &line.Events, &line.Credits, &line.Rejected, &runs, &overage,
			&overageCredits); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("invoices: %w", err)
		}
		inv := invs[id]
		inv.UsageByFeature = addUsage(inv.UsageByFeature, feature, line)
		inv.UsageByTeam = addUsage(inv.UsageByTeam, team, line)
		inv.Runs.Runs += runs
		inv.Runs.Overage += overage
		inv.Runs.OverageCredits += credits.Credits(overageCredits)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapError(fmt.Errorf("invoices: %w", err))
	}
	rows, _ = br.Query()
	for rows.Next() {
		var id string
		var p InvoicePayment
		if err := rows.Scan(&id, &p.PaymentID, &p.Kind, &p.Credits, &p.Amount.Minor, &p.Amount.Currency, &p.PaidAt); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("invoices: %w", err)
		}
		p.PaidAt = p.PaidAt.UTC()
		invs[id].Payments = append(invs[id].Payments, p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapError(fmt.Errorf("invoices: %w", err))
	}

	now := l.now()
	out := make([]invoiceRow, 0, len(dues))
	for _, d := range dues {
		inv := invs[d.org.ID]
		s := sums[d.org.ID]
		if err := l.finishInvoice(inv, d, s, now); err != nil {
			failed[d.org.ID] = err.Error()
			continue
		}
		out = append(out, invoiceRow{inv: *inv, through: max(s.lastID, s.prevThrough), loc: d.loc, dueAt: d.next})
	}
	return out, failed, nil
}

// finishInvoice fills in the plan, fee, balances and totals, and refuses an
// invoice that does not reconcile.
func (l *Ledger) finishInvoice(inv *Invoice, d invoiceDue, s *invoiceSums, now time.Time) error {
	o := d.org
	terms, err := l.Terms(o)
	if err != nil {
		return err
	}
	plan, _ := l.catalog.Plan(o.Plan)
	fee := plan.PriceMoney
	if o.Price != nil {
		fee = credits.Money{Minor: *o.Price, Currency: o.Currency}
	}
	if fee.Minor == 0 {
		fee.Currency = o.Currency
	}
	if fee.Currency != o.Currency {
		return fmt.Errorf("invoice %s: the plan %s is priced in %s and the org pays in %s: set the org's own price",
			d.period, o.Plan, fee.Currency, o.Currency)
	}
	inv.Period, inv.Currency, inv.TimeZone, inv.Plan = d.period, o.Currency, o.TimeZone, o.Plan
	inv.PeriodStart, inv.PeriodEnd, inv.CreatedAt = d.start, d.end, now
	inv.SubscriptionFee = fee
	inv.Runs.Included = terms.IncludedRuns
	inv.Granted, inv.Used, inv.Expired, inv.Taken = credits.Credits(s.granted), credits.Credits(s.used),
		credits.Credits(s.expired), credits.Credits(s.taken)
	inv.HeldChange = credits.Credits(s.held)

	opening := s.prevClosing + s.before
	if s.hasPrev && s.before != 0 {
		return fmt.Errorf("invoice %s does not reconcile: entries dated before %s were added after the invoice of the month before (%s)",
			d.period, d.start.Format(time.RFC3339), credits.Credits(s.before))
	}
	closing := opening + s.granted - s.used - s.expired - s.taken - s.held
	switch {
	case s.lastBalance != nil && *s.lastBalance != closing:
		return fmt.Errorf("invoice %s does not reconcile: opening %s + granted %s - used %s - expired %s - taken %s - held %s = %s, but the balance after the last entry of the month is %s",
			d.period, credits.Credits(opening), inv.Granted, inv.Used, inv.Expired, inv.Taken, inv.HeldChange,
			credits.Credits(closing), credits.Credits(*s.lastBalance))
	case s.lastBalance == nil && closing != s.prevClosing:
		return fmt.Errorf("invoice %s does not reconcile: no entries, yet the balance moved from %s to %s",
			d.period, credits.Credits(s.prevClosing), credits.Credits(closing))
	}
	var usage credits.Credits
	for _, line := range inv.UsageByFeature {
		usage += line.Credits
	}
	if usage != inv.Used {
		return fmt.Errorf("invoice %s does not reconcile: the usage events recorded %s credits, the entries %s",
			d.period, usage, inv.Used)
	}
	inv.OpeningBalance, inv.ClosingBalance = credits.Credits(opening), credits.Credits(closing)
	inv.ClosingDebt = credits.Credits(s.prevDebt + s.beforeDebt + s.debt)
	if inv.ClosingDebt < 0 {
		return fmt.Errorf("invoice %s does not reconcile: debt at the end is %s", d.period, inv.ClosingDebt)
	}

	inv.Totals.Subscription = fee.Minor
	for _, p := range inv.Payments {
		if p.Amount.Currency != inv.Currency {
			return fmt.Errorf("invoice %s: payment %s is in %s, the org pays in %s", d.period, p.PaymentID,
				p.Amount.Currency, inv.Currency)
		}
		inv.Totals.Payments += p.Amount.Minor
	}
	inv.Totals.Due = fee.Minor
	inv.Status = InvoiceOpen
	if inv.Totals.Due == 0 {
		// Nothing to pay: settled as it is made.
		inv.Status, inv.PaidAt = InvoicePaid, &inv.CreatedAt
	}
	sortLines(inv.UsageByFeature)
	sortLines(inv.UsageByTeam)
	return nil
}

// addUsage adds a group of usage events to the line of key, a new one if
// there is none yet (an org has a few lines: a linear search).
func addUsage(lines []UsageLine, key string, g UsageLine) []UsageLine {
	for i := range lines {
		if lines[i].Key == key {
			lines[i].Events += g.Events
			lines[i].Credits += g.Credits
			lines[i].Rejected += g.Rejected
			return lines
		}
	}
	g.Key = key
	return append(lines, g)
}

func sortLines(lines []UsageLine) {
	slices.SortFunc(lines, func(a, b UsageLine) int { return compareStrings(a.Key, b.Key) })
}
