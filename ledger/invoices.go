package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Monthly invoices. Each org has a queue of months to invoice: the month it
// was created in (in its time zone), then every later one; orgs.next_invoice_at
// is the end of the first month not invoiced yet. MakeInvoices invoices, for
// each org it is given, every month that has ended by now and has no invoice,
// oldest first, each as of the month's end:
//
//   - the entries dated in [PeriodStart, PeriodEnd) say what happened to the
//     credits (granted, used, expired, taken, held), the usage events
//     recorded in it say by feature and team what was used, and the payments
//     credited in it what was paid;
//   - the opening balance is the previous invoice's closing balance (for the
//     first invoice, the sum of the entries before the month), and the
//     closing balance is the opening plus the month's entries. Both are
//     checked against the balance the last entry of the month recorded, and
//     the usage lines against the entries: an invoice that does not
//     reconcile is refused (an error for that org, which stays due).
//
// Entries are dated when they are written, never before the org's last entry,
// and a lot's expiry is dated at its expiry: once the cycle engine has
// performed every boundary and expiry before the month's end, no entry can be
// added to the month any more. MakeInvoices performs that work first for the
// orgs that need it (as AdvanceCycles would), in the same transaction.
//
// One invoice per org and period is enforced by the table's primary key: a
// second call (a re-run sweep, a concurrent one, a retried task) finds the
// invoice made and makes nothing, and the invoice-ready alert is raised only
// in the transaction that inserted the invoice.

// MaxInvoiceMonths bounds the months one MakeInvoices call invoices per org;
// an org further behind stays due and the next sweep continues.
const MaxInvoiceMonths = 36

// InvoiceReport is what MakeInvoices did, or PreviewInvoices would do, for one org.
type InvoiceReport struct {
	OrgID string `json:"org"`
	// Made are the invoices this call made, oldest first.
	Made []Invoice `json:"made"`
	// Behind: more months are due than one call invoices.
	Behind bool `json:"behind,omitempty"`
	// Error says why the org could not be invoiced; it stays due.
	Error string `json:"error,omitempty"`
}

// invoiceDue is an org with a month to invoice, and what the invoice needs
// of it.
type invoiceDue struct {
	org         Org
	next        time.Time // orgs.next_invoice_at
	nextCycle   time.Time
	nextExpiry  *time.Time
	period      string
	start, end  time.Time
	loc         *time.Location
	invalidZone error
}

const dueInvoicesSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT ` + orgSelect + `, o.next_invoice_at, b.next_expiry_at
    FROM orgs o JOIN balances b ON b.org_id = o.org_id
    WHERE o.org_id = k.org_id AND o.next_invoice_at <= $2
    OFFSET 0
) x ON true`

// dueInvoices reads the orgs among ids that have a month ended by now and
// not invoiced, with that month's bounds in the org's zone.
func (l *Ledger) dueInvoices(ctx context.Context, db DBTX, ids []string, now time.Time) ([]invoiceDue, error) {
	rows, err := db.Query(ctx, dueInvoicesSQL, ids, now)
	if err != nil {
		return nil, mapError(fmt.Errorf("invoices due: %w", err))
	}
	defer rows.Close()
	var out []invoiceDue
	for rows.Next() {
		var r orgRow
		var d invoiceDue
		if err := rows.Scan(append(r.dest(), &d.next, &d.nextExpiry)...); err != nil {
			return nil, fmt.Errorf("invoices due: %w", err)
		}
		if d.org, err = r.finish(); err != nil {
			return nil, err
		}
		d.next, d.nextCycle = d.next.UTC(), d.org.NextCycleAt
		d.loc, d.invalidZone = loadZone(d.org.TimeZone)
		if d.invalidZone == nil {
			// The month that ends at next_invoice_at, computed in Go's zone
			// data (the trigger that set the first one used Postgres's).
			d.start, d.end, d.period = MonthOf(d.next.Add(-time.Microsecond), d.loc)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("invoices due: %w", err))
	}
	return out, nil
}

// MonthOf returns the calendar month in loc that contains t: its start and
// end (midnights of the 1st, as instants) and its name, YYYY-MM.
func MonthOf(t time.Time, loc *time.Location) (start, end time.Time, period string) {
	local := t.In(loc)
	start = time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	end = time.Date(local.Year(), local.Month()+1, 1, 0, 0, 0, 0, loc)
	return start.UTC(), end.UTC(), start.Format("2006-01")
}

// ready says whether every entry the month can have is written: the cycle
// boundaries and lot expiries before its end are performed.
func (d invoiceDue) ready() bool {
	return !d.nextCycle.Before(d.end) && (d.nextExpiry == nil || !d.nextExpiry.Before(d.end))
}

// MakeInvoices makes the invoices due by now for the orgs (see the top of
// this file), in the caller's transaction, and raises an invoice-ready alert
// for each invoice made. now may not be more than MaxClockSkew past the
// ledger's clock. Reports come in org-id order, for the orgs that had a
// month due.
func (l *Ledger) MakeInvoices(ctx context.Context, tx pgx.Tx, orgIDs []string, now time.Time) ([]InvoiceReport, error) {
	if err := l.notAhead(now, "PreviewInvoices"); err != nil {
		return nil, err
	}
	return l.makeInvoices(ctx, tx, orgIDs, now)
}

// PreviewInvoices is a dry run of MakeInvoices: what would be invoiced as of
// now, computed in a transaction that is rolled back. now may be any
// instant, also in the future.
func (l *Ledger) PreviewInvoices(ctx context.Context, db TxBeginner, orgIDs []string, now time.Time) ([]InvoiceReport, error) {
	return rolledBack(ctx, db, func(tx pgx.Tx) ([]InvoiceReport, error) { return l.makeInvoices(ctx, tx, orgIDs, now) })
}

func (l *Ledger) makeInvoices(ctx context.Context, tx pgx.Tx, orgIDs []string, now time.Time) ([]InvoiceReport, error) {
	ids, err := pageOrgs(orgIDs)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	reports := map[string]*InvoiceReport{}
	report := func(id string) *InvoiceReport {
		if reports[id] == nil {
			reports[id] = &InvoiceReport{OrgID: id, Made: []Invoice{}}
		}
		return reports[id]
	}
	for month := 0; len(ids) > 0; month++ {
		dues, err := l.dueInvoices(ctx, tx, ids, now)
		if err != nil {
			return nil, err
		}
		if month == MaxInvoiceMonths {
			for _, d := range dues {
				report(d.org.ID).Behind = true
			}
			break
		}
		if month == 0 {
			if dues, err = l.catchUpCycles(ctx, tx, dues, now); err != nil {
				return nil, err
			}
		}
		ready := make([]invoiceDue, 0, len(dues))
		for _, d := range dues {
			switch {
			case d.invalidZone != nil:
				report(d.org.ID).Error = d.invalidZone.Error()
			case !d.ready():
				report(d.org.ID).Error = "its cycle work before " + d.end.Format(time.RFC3339) + " is not done (see creditd cycle)"
			default:
				ready = append(ready, d)
			}
		}
		invoices, failed, err := l.computeInvoices(ctx, tx, ready)
		if err != nil {
			return nil, err
		}
		for id, msg := range failed {
			report(id).Error = msg
		}
		made, err := l.storeInvoices(ctx, tx, invoices)
		if err != nil {
			return nil, err
		}
		for _, inv := range made {
			report(inv.OrgID).Made = append(report(inv.OrgID).Made, inv)
		}
		if err := l.raiseInvoiceAlerts(ctx, tx, made); err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, r := range invoices {
			ids = append(ids, r.inv.OrgID)
		}
	}
	out := make([]InvoiceReport, 0, len(reports))
	for _, r := range reports {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b InvoiceReport) int { return compareStrings(a.OrgID, b.OrgID) })
	return out, nil
}

// catchUpCycles performs the cycle work as of now of the orgs whose month
// is not complete yet (a boundary or expiry before its end not performed: the
// cycle sweep is late or has not reached them), then reads them again.
func (l *Ledger) catchUpCycles(ctx context.Context, tx pgx.Tx, dues []invoiceDue, now time.Time) ([]invoiceDue, error) {
	var behind []string
	for _, d := range dues {
		if d.invalidZone == nil && !d.ready() {
			behind = append(behind, d.org.ID)
		}
	}
	if len(behind) == 0 {
		return dues, nil
	}
	if _, err := l.advanceCycles(ctx, tx, behind, now); err != nil {
		return nil, fmt.Errorf("invoices: cycle work first: %w", err)
	}
	ids := make([]string, len(dues))
	for i, d := range dues {
		ids[i] = d.org.ID
	}
	return l.dueInvoices(ctx, tx, ids, now)
}

const insertInvoicesSQL = `
INSERT INTO invoices (org_id, period, period_start, period_end, status, currency, due_minor, opening_balance,
                      closing_balance, closing_debt, through_entry_id, document, created_at, paid_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::int8[],
                     $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::jsonb[], $13::timestamptz[], $14::timestamptz[])
ON CONFLICT (org_id, period) DO NOTHING
RETURNING org_id, period`

// next_invoice_at moves from the month just invoiced to the next one only:
// a call that lost the race to another, or that made a later month out of
// turn (MakeInvoice), leaves it where it is.
const advanceInvoiceSQL = `
UPDATE orgs SET next_invoice_at = u.next_at
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(org_id, due_at, next_at)
WHERE orgs.org_id = u.org_id AND orgs.next_invoice_at = u.due_at`

// storeInvoices inserts the invoices (those already made are left as they
// are), moves each org to its next month, and returns the invoices this
// call inserted.
func (l *Ledger) storeInvoices(ctx context.Context, tx pgx.Tx, invoices []invoiceRow) ([]Invoice, error) {
	if len(invoices) == 0 {
		return nil, nil
	}
	n := len(invoices)
	var (
		org, period, status, currency        = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		start, end, created                  = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		paid                                 = make([]*time.Time, n)
		due, opening, closing, debt, through = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		docs                                 = make([]string, n)
		dueAt, next                          = make([]time.Time, n), make([]time.Time, n)
		byKey                                = make(map[[2]string]Invoice, n)
	)
	for i, r := range invoices {
		inv := r.inv
		doc, err := json.Marshal(inv)
		if err != nil {
			return nil, fmt.Errorf("invoice %s %s: %w", inv.OrgID, inv.Period, err)
		}
		org[i], period[i], status[i], currency[i] = inv.OrgID, inv.Period, inv.Status, inv.Currency
		start[i], end[i], created[i], paid[i] = inv.PeriodStart, inv.PeriodEnd, inv.CreatedAt, inv.PaidAt
		due[i], opening[i], closing[i], debt[i] = inv.Totals.Due, int64(inv.OpeningBalance), int64(inv.ClosingBalance), int64(inv.ClosingDebt)
		through[i], docs[i] = r.through, string(doc)
		_, next[i], _ = MonthOf(inv.PeriodEnd, r.loc)
		dueAt[i] = r.dueAt
		byKey[[2]string{inv.OrgID, inv.Period}] = inv
	}
	rows, err := tx.Query(ctx, insertInvoicesSQL, org, period, start, end, status, currency, due, opening, closing, debt,
		through, docs, created, paid)
	if err != nil {
		return nil, mapError(fmt.Errorf("store invoices: %w", err))
	}
	made, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Invoice, error) {
		var k [2]string
		err := row.Scan(&k[0], &k[1])
		return byKey[k], err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("store invoices: %w", err))
	}
	if _, err := tx.Exec(ctx, advanceInvoiceSQL, org, dueAt, next); err != nil {
		return nil, mapError(fmt.Errorf("store invoices: next month: %w", err))
	}
	slices.SortFunc(made, func(a, b Invoice) int { return compareStrings(a.OrgID, b.OrgID) })
	return made, nil
}

// invoiceAlertKey names the invoice-ready alert of a period: one per org and
// period.
func invoiceAlertKey(period string) string { return "invoice:" + period }

// raiseInvoiceAlerts records an invoice-ready alert for each invoice made,
// for all their orgs at once (RaiseAlert's work, batched).
func (l *Ledger) raiseInvoiceAlerts(ctx context.Context, tx pgx.Tx, made []Invoice) error {
	if len(made) == 0 {
		return nil
	}
	ids := make([]string, 0, len(made))
	for _, inv := range made {
		ids = append(ids, inv.OrgID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	states, err := l.load(ctx, tx, ids, loadNeeds{})
	if err != nil {
		return err
	}
	sets, err := l.loadAlerts(ctx, tx, states, ids)
	if err != nil {
		return err
	}
	for _, inv := range made {
		l.notify(states[inv.OrgID], sets[inv.OrgID].webhooks, notificationRow{kind: AlertInvoiceReady,
			key: invoiceAlertKey(inv.Period), details: map[string]string{
				"period": inv.Period, "status": inv.Status,
				"due": credits.Money{Minor: inv.Totals.Due, Currency: inv.Currency}.String(),
			}})
	}
	return l.persist(ctx, tx, states)
}
