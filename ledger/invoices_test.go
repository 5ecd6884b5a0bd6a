package ledger_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// makeInvoices runs MakeInvoices for the orgs at now in a committed
// transaction.
func (f *fixture) makeInvoices(now time.Time, orgs ...string) []ledger.InvoiceReport {
	f.t.Helper()
	var reps []ledger.InvoiceReport
	f.tx(func(tx pgx.Tx) (err error) {
		reps, err = f.l.MakeInvoices(f.ctx, tx, orgs, now)
		return err
	})
	for _, r := range reps {
		if r.Error != "" {
			f.t.Fatalf("org %s: %s", r.OrgID, r.Error)
		}
	}
	return reps
}

func (f *fixture) invoice(org, period string) ledger.Invoice {
	f.t.Helper()
	inv, err := f.l.GetInvoice(f.ctx, f.pool, org, period)
	if err != nil {
		f.t.Fatalf("invoice %s %s: %v", org, period, err)
	}
	return inv
}

func (f *fixture) usage(ev ledger.UsageEvent) {
	f.t.Helper()
	if _, err := f.useE(ev); err != nil {
		f.t.Fatalf("usage %s: %v", ev.EventID, err)
	}
}

// monthWant is one month's invoice as computed by hand (credits as decimal
// strings).
type monthWant struct {
	granted, used, expired, opening, closing string
	payments                                 int64 // minor units
	status                                   string
}

// TestInvoices_Quarter runs three months of scripted usage, purchases, a
// recharge, expiry, rollover and overage runs for an org on each plan, then
// invoices the quarter and compares every invoice with figures worked out by
// hand. Every month, on each org:
//
//	day 1  the cycle's allocation (the anchor is the 1st, UTC)
//	day 2  microservice ×3, team web: 6 credits
//	day 3  custom_query ×2, team data: 20 credits (rejected where the
//	       org's reject policy cannot cover it)
//	day 4  included runs + 250, no team: 250 overage runs, 2.5 credits
//	day 10 (March only) a purchase of 20.00: 20 credits that never expire
//
// and the standard org's recharge of 100 credits (100.00) in April.
func TestInvoices_Quarter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ent := ledger.Overrides{MonthlyCredits: crp("2000"), RolloverMonths: intp(1), IncludedRuns: int64p(5000)}
	orgs := []struct {
		id, plan string
		policy   ledger.Policy
		terms    ledger.Overrides
		runs     int64 // included runs
		fee      credits.Money
		months   [3]monthWant
	}{
		// The allocation expires at each boundary: what March and April
		// left of it (71.5) expires on April 1 and May 1.
		{id: "qfree", plan: "free", runs: 1000, fee: usd(0), months: [3]monthWant{
			{"120", "28.5", "0", "0", "91.5", 2000, ledger.InvoicePaid},
			{"100", "28.5", "71.5", "91.5", "91.5", 0, ledger.InvoicePaid},
			{"100", "28.5", "71.5", "91.5", "91.5", 0, ledger.InvoicePaid},
		}},
		// Reject policy, 20 credits a month: in March the 20-credit query is
		// rejected (14 left); from April the purchase covers it.
		{id: "qmember", plan: "membership", policy: ledger.PolicyReject, runs: 0, fee: usd(2900), months: [3]monthWant{
			{"40", "8.5", "0", "0", "31.5", 2000, ledger.InvoiceOpen},
			{"20", "28.5", "11.5", "31.5", "11.5", 0, ledger.InvoiceOpen},
			{"20", "28.5", "0", "11.5", "3", 0, ledger.InvoiceOpen},
		}},
		{id: "qstd", plan: "standard", runs: 10000, fee: usd(1000), months: [3]monthWant{
			{"1020", "28.5", "0", "0", "991.5", 2000, ledger.InvoiceOpen},
			{"1100", "28.5", "971.5", "991.5", "1091.5", 10000, ledger.InvoiceOpen},
			{"1000", "28.5", "971.5", "1091.5", "1091.5", 0, ledger.InvoiceOpen},
		}},
		// Rollover 3: nothing expires within the quarter.
		{id: "qpro", plan: "professional", runs: 50000, fee: usd(4500), months: [3]monthWant{
			{"5020", "28.5", "0", "0", "4991.5", 2000, ledger.InvoiceOpen},
			{"5000", "28.5", "0", "4991.5", "9963", 0, ledger.InvoiceOpen},
			{"5000", "28.5", "0", "9963", "14934.5", 0, ledger.InvoiceOpen},
		}},
		// Enterprise terms: 2,000 credits kept one more cycle, 5,000 runs
		// included, its own price of 1,500.00. March's allocation pays
		// March and April usage and its rest (1,943) expires on May 1.
		{id: "qent", plan: "enterprise", terms: ent, runs: 5000, fee: usd(150000), months: [3]monthWant{
			{"2020", "28.5", "0", "0", "1991.5", 2000, ledger.InvoiceOpen},
			{"2000", "28.5", "0", "1991.5", "3963", 0, ledger.InvoiceOpen},
			{"2000", "28.5", "1943", "3963", "3991.5", 0, ledger.InvoiceOpen},
		}},
	}
	var ids []string
	for _, o := range orgs {
		f.newOrg(ledger.NewOrg{ID: o.id, Plan: o.plan, Anchor: &t0, Policy: o.policy, Overrides: o.terms})
		ids = append(ids, o.id)
	}
	price := int64(150000)
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetInvoiceSettings(f.ctx, tx, ledger.InvoiceSettings{OrgID: "qent", Price: &price})
		return err
	})
	f.saveCard("qstd", "pm_card1")

	for m := range 3 {
		start := t0.AddDate(0, m, 0)
		day := func(d int) time.Time { return start.AddDate(0, 0, d-1).Add(time.Hour) }
		f.clock.Set(day(1))
		f.advance(day(1), ids...)
		for _, o := range orgs {
			p := "-" + start.Format("01")
			f.clock.Set(day(2))
			f.usage(ledger.UsageEvent{OrgID: o.id, EventID: "ms" + p, Feature: "microservice", Units: 3, Team: "web"})
			if o.id == "qstd" && m == 1 {
				if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: o.id, Enabled: true, Threshold: cr("1000"),
					Amount: crp("100")}); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Set(day(3))
			f.usage(ledger.UsageEvent{OrgID: o.id, EventID: "cq" + p, Feature: "custom_query", Units: 2, Team: "data"})
			if o.id == "qstd" && m == 1 {
				f.completeRecharge(o.id)
			}
			f.clock.Set(day(4))
			f.usage(ledger.UsageEvent{OrgID: o.id, EventID: "runs" + p, Runs: o.runs + 250})
			if m == 0 {
				f.clock.Set(day(10))
				f.tx(func(tx pgx.Tx) error {
					_, err := f.l.CreditPurchase(f.ctx, tx, o.id, "pi_"+o.id, usd(2000))
					return err
				})
			}
		}
	}
	june := t0.AddDate(0, 3, 0).Add(time.Hour)
	f.clock.Set(june)
	reps := f.makeInvoices(june, ids...)
	if len(reps) != len(orgs) {
		t.Fatalf("reports = %+v", reps)
	}
	for _, r := range reps {
		if len(r.Made) != 3 {
			t.Fatalf("org %s: made %d invoices, want 3", r.OrgID, len(r.Made))
		}
	}

	for _, o := range orgs {
		t.Run(o.id, func(t *testing.T) {
			for m, w := range o.months {
				start := t0.AddDate(0, m, 0)
				inv := f.invoice(o.id, start.Format("2006-01"))
				checkInvoice(t, inv, w, o.fee, o.runs)
				if !inv.PeriodStart.Equal(start) || !inv.PeriodEnd.Equal(start.AddDate(0, 1, 0)) {
					t.Errorf("%s: period [%s, %s)", inv.Period, inv.PeriodStart, inv.PeriodEnd)
				}
				// The opening balance is the balance just before the month.
				bal, err := f.l.BalanceAt(f.ctx, f.pool, o.id, start.Add(-time.Microsecond))
				if err != nil {
					t.Fatal(err)
				}
				if bal.Available != inv.OpeningBalance {
					t.Errorf("%s: opening %s, balance before the month %s", inv.Period, inv.OpeningBalance, bal.Available)
				}
				if m > 0 {
					prev := f.invoice(o.id, start.AddDate(0, -1, 0).Format("2006-01"))
					if prev.ClosingBalance != inv.OpeningBalance {
						t.Errorf("%s: opening %s != previous closing %s", inv.Period, inv.OpeningBalance, prev.ClosingBalance)
					}
				}
			}
		})
	}

	t.Run("usage lines", func(t *testing.T) {
		member := f.invoice("qmember", "2026-03")
		wantLines(t, "by feature", member.UsageByFeature, []ledger.UsageLine{
			{Key: "", Events: 1, Credits: cr("2.5")},
			{Key: "custom_query", Rejected: 1},
			{Key: "microservice", Events: 1, Credits: cr("6")},
		})
		wantLines(t, "by team", member.UsageByTeam, []ledger.UsageLine{
			{Key: "", Events: 1, Credits: cr("2.5")},
			{Key: "data", Rejected: 1},
			{Key: "web", Events: 1, Credits: cr("6")},
		})
		std := f.invoice("qstd", "2026-04")
		if len(std.Payments) != 1 || std.Payments[0].Kind != ledger.PaymentRecharge || std.Payments[0].Credits != cr("100") {
			t.Errorf("April payments of qstd = %+v, want the recharge of 100 credits", std.Payments)
		}
	})

	t.Run("idempotent", func(t *testing.T) {
		for _, r := range f.makeInvoices(june, ids...) {
			t.Errorf("second run made something: %+v", r)
		}
		notes, err := f.l.Notifications(f.ctx, f.pool, "qstd", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, n := range notes {
			if n.Kind == ledger.AlertInvoiceReady {
				ready++
			}
		}
		if ready != 3 {
			t.Errorf("invoice_ready notifications = %d, want 3", ready)
		}
	})
	// A usage report over an invoice's month says what its usage lines say:
	// both place an event by the instant it was applied.
	t.Run("reports reconcile with invoices", func(t *testing.T) {
		for _, o := range orgs {
			for m := range 3 {
				inv := f.invoice(o.id, t0.AddDate(0, m, 0).Format("2006-01"))
				for by, lines := range map[ledger.ReportBy][]ledger.UsageLine{ledger.ReportByFeature: inv.UsageByFeature,
					ledger.ReportByTeam: inv.UsageByTeam} {
					rep, err := f.l.Report(f.ctx, f.pool, ledger.ReportRequest{OrgID: o.id, By: by,
						From: inv.PeriodStart.Format(time.RFC3339Nano), To: inv.PeriodEnd.Format(time.RFC3339Nano)})
					if err != nil {
						t.Fatal(err)
					}
					var got []ledger.UsageLine
					for _, g := range rep.Groups {
						got = append(got, ledger.UsageLine{Key: g.Key, Events: g.Applied, Credits: g.Credits, Rejected: g.Rejected})
					}
					wantLines(t, fmt.Sprintf("%s %s report by %s", o.id, inv.Period, by), got, lines)
					if rep.Totals.Runs != inv.Runs.Runs || rep.Totals.OverageRuns != inv.Runs.Overage || rep.Totals.Credits != inv.Used {
						t.Errorf("%s %s report totals %+v; invoice runs %+v, used %s", o.id, inv.Period, rep.Totals, inv.Runs, inv.Used)
					}
				}
			}
		}
	})
	f.verify()

	t.Run("verify checks invoices", func(t *testing.T) {
		if _, err := f.pool.Exec(f.ctx, `UPDATE invoices SET closing_balance = closing_balance + 1
			WHERE org_id = 'qfree' AND period = '2026-03'`); err != nil {
			t.Fatal(err)
		}
		rep, err := f.l.Verify(f.ctx, f.pool)
		if err != nil {
			t.Fatal(err)
		}
		var checks []string
		for _, v := range rep.Violations {
			checks = append(checks, v.Check)
		}
		if got := strings.Join(checks, ","); got != "invoice_closes_at_its_last_entry,invoice_opens_at_previous_close" {
			t.Fatalf("violations %v, want the two invoice checks", rep.Violations)
		}
	})
}

func checkInvoice(t *testing.T, inv ledger.Invoice, w monthWant, fee credits.Money, included int64) {
	t.Helper()
	got := []credits.Credits{inv.Granted, inv.Used, inv.Expired, inv.OpeningBalance, inv.ClosingBalance}
	want := []string{w.granted, w.used, w.expired, w.opening, w.closing}
	names := []string{"granted", "used", "expired", "opening", "closing"}
	for i := range got {
		if got[i] != cr(want[i]) {
			t.Errorf("%s: %s = %s, want %s", inv.Period, names[i], got[i], want[i])
		}
	}
	if inv.Taken != 0 || inv.HeldChange != 0 || inv.ClosingDebt != 0 {
		t.Errorf("%s: taken %s, held %s, debt %s, want 0", inv.Period, inv.Taken, inv.HeldChange, inv.ClosingDebt)
	}
	if inv.SubscriptionFee != fee || inv.Totals.Subscription != fee.Minor || inv.Totals.Due != fee.Minor {
		t.Errorf("%s: fee %s, totals %+v, want %s", inv.Period, inv.SubscriptionFee, inv.Totals, fee)
	}
	if inv.Totals.Payments != w.payments {
		t.Errorf("%s: payments %d, want %d", inv.Period, inv.Totals.Payments, w.payments)
	}
	if inv.Status != w.status || (w.status == ledger.InvoicePaid) != (inv.PaidAt != nil) {
		t.Errorf("%s: status %s, paid at %v, want %s", inv.Period, inv.Status, inv.PaidAt, w.status)
	}
	runs := ledger.RunsLine{Runs: included + 250, Included: included, Overage: 250, OverageCredits: cr("2.5")}
	if inv.Runs != runs {
		t.Errorf("%s: runs %+v, want %+v", inv.Period, inv.Runs, runs)
	}
}

func wantLines(t *testing.T, what string, got, want []ledger.UsageLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %+v, want %+v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s[%d] = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// completeRecharge credits the org's pending recharge attempt.
func (f *fixture) completeRecharge(org string) {
	f.t.Helper()
	for _, a := range f.attempts(org) {
		if a.Status != ledger.RechargePending {
			continue
		}
		f.tx(func(tx pgx.Tx) error {
			_, err := f.l.CompleteRecharge(f.ctx, tx, org, a.ID, "pi_rch_"+a.ID)
			return err
		})
		f.tx(func(tx pgx.Tx) error {
			_, err := f.l.SetRecharge(f.ctx, tx, ledger.RechargeSettings{OrgID: org, Enabled: false, Threshold: cr("1000"),
				Amount: crp("100")})
			return err
		})
		return
	}
	f.t.Fatalf("org %s has no pending recharge", org)
}

// TestInvoices_TimeZone: an org in Pacific/Auckland is invoiced by its own
// months, whose bounds are local midnights (11:00 UTC the day before while
// New Zealand keeps summer time).
func TestInvoices_TimeZone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.newOrg(ledger.NewOrg{ID: "akl", Plan: "membership", TimeZone: "Pacific/Auckland", Anchor: nil})
	localMidnight := time.Date(2026, 3, 31, 11, 0, 0, 0, time.UTC) // April 1, 00:00 NZDT
	f.clock.Set(localMidnight.Add(-2 * time.Minute))
	f.advance(f.clock.Now(), org)
	f.usage(ledger.UsageEvent{OrgID: org, EventID: "march", Feature: "microservice", Units: 1})
	f.clock.Set(localMidnight.Add(time.Minute))
	f.usage(ledger.UsageEvent{OrgID: org, EventID: "april", Feature: "microservice", Units: 2})

	f.clock.Set(localMidnight.Add(-time.Second))
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.MakeInvoice(f.ctx, tx, org, "2026-03")
		var v *ledger.ValidationError
		if !errors.As(err, &v) || v.Field != "period" {
			t.Errorf("a month not ended yet: err = %v, want a validation error of period", err)
		}
		return nil
	})
	f.clock.Set(localMidnight.Add(time.Hour))
	if reps := f.makeInvoices(f.clock.Now(), org); len(reps) != 1 || len(reps[0].Made) != 1 {
		t.Fatalf("reports = %+v, want March made", reps)
	}
	inv := f.invoice(org, "2026-03")
	wantStart := time.Date(2026, 2, 28, 11, 0, 0, 0, time.UTC)
	if !inv.PeriodStart.Equal(wantStart) || !inv.PeriodEnd.Equal(localMidnight) || inv.TimeZone != "Pacific/Auckland" {
		t.Errorf("period [%s, %s) %s, want [%s, %s)", inv.PeriodStart, inv.PeriodEnd, inv.TimeZone, wantStart, localMidnight)
	}
	if inv.Used != cr("2") || len(inv.UsageByFeature) != 1 || inv.UsageByFeature[0].Events != 1 {
		t.Errorf("March used %s by %+v, want the one event before local midnight (2 credits)", inv.Used, inv.UsageByFeature)
	}
	if _, err := f.l.GetInvoice(f.ctx, f.pool, org, "2026-04"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("April invoiced before it ended: %v", err)
	}
}

func intp(v int) *int { return &v }

func int64p(v int64) *int64 { return &v }

// TestInvoices_RefusesWhatDoesNotReconcile writes entries behind the
// ledger's back: one dated in a month already invoiced, one whose stored
// balance does not follow from the others. The next invoice does not
// reconcile, is refused (an error for that org, nothing stored) and the org
// stays due.
func TestInvoices_RefusesWhatDoesNotReconcile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		at     time.Time
		amount int64 // balance_after is the org's balance plus amount, minus one when skew
		skew   bool
		want   string
	}{
		{"entry dated in an invoiced month", time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), -1000, false, "added after the invoice"},
		{"balance after that does not follow", time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC), -1000, true, "balance after the last entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard", Anchor: &t0})
			f.advance(f.clock.Now(), org)
			april := t0.AddDate(0, 1, 0).Add(time.Hour)
			f.clock.Set(april)
			f.makeInvoices(april, org)
			f.clock.Set(april.Add(24 * time.Hour))
			balance := int64(f.balance(org).Available) + tt.amount
			if tt.skew {
				balance--
			}
			if _, err := f.pool.Exec(f.ctx, `INSERT INTO entries (org_id, kind, amount, balance_after, debt_delta, key, at)
				VALUES ($1, 'adjustment', $2, $3, $4, 'behind-the-back', $5)`, org, tt.amount, balance, -tt.amount, tt.at); err != nil {
				t.Fatal(err)
			}
			may := t0.AddDate(0, 2, 0).Add(time.Hour)
			f.clock.Set(may)
			var reps []ledger.InvoiceReport
			f.tx(func(tx pgx.Tx) (err error) {
				reps, err = f.l.MakeInvoices(f.ctx, tx, []string{org}, may)
				return err
			})
			if len(reps) != 1 || !strings.Contains(reps[0].Error, tt.want) || len(reps[0].Made) != 0 {
				t.Fatalf("reports %+v, want a refusal saying %q", reps, tt.want)
			}
			if _, err := f.l.GetInvoice(f.ctx, f.pool, org, "2026-04"); !errors.Is(err, ledger.ErrNotFound) {
				t.Fatalf("April was stored: %v", err)
			}
			page, err := f.l.DueOrgs(f.ctx, f.pool, ledger.DueInvoices, may, ledger.DueCursor{}, 10)
			if err != nil || len(page.Orgs) != 1 {
				t.Fatalf("due %+v, %v: the org should stay due", page, err)
			}
		})
	}
}
