package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// reportFrom and reportTo bound the scripted report range.
var (
	reportFrom = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	reportTo   = time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)
)

// scriptReportUsage records usage of org across teams, users and features,
// with runs past the standard plan's 10,000 included runs, a rejected event,
// a captured hold, and events applied just outside and exactly at the
// bounds. Each event is applied at the instant the ledger's clock is set to,
// the instant a report places it by, and gives no occurred_at of its own.
func scriptReportUsage(f *fixture, org string) {
	f.t.Helper()
	f.grant(org, "1000", ledger.SourcePurchase, "seed", nil)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f.t.Fatal(err)
		}
		f.clock.Set(t)
		return t
	}
	record := func(when string, ev ledger.UsageEvent, want ledger.UsageStatus) {
		f.t.Helper()
		at(when)
		ev.OrgID = org
		res, err := f.useE(ev)
		if err != nil || res.Status != want {
			f.t.Fatalf("event %s: %+v, %v; want %s", ev.EventID, res, err, want)
		}
	}
	record("2026-03-09T23:59:59.999999Z", ledger.UsageEvent{EventID: "before", Team: "a", Amount: crp("1")}, ledger.UsageApplied)
	record("2026-03-10T00:00:00Z", ledger.UsageEvent{EventID: "at-from", Team: "a", User: "u1", Feature: "microservice", Units: 3}, ledger.UsageApplied)
	record("2026-03-12T10:00:00Z", ledger.UsageEvent{EventID: "amount", Team: "a", User: "u2", Feature: "custom_query", Amount: crp("10")}, ledger.UsageApplied)
	record("2026-03-13T10:00:00Z", ledger.UsageEvent{EventID: "runs", Team: "b", User: "u1", Runs: 10050}, ledger.UsageApplied)
	record("2026-03-14T10:00:00Z", ledger.UsageEvent{EventID: "none", Feature: "market_trend_report"}, ledger.UsageApplied)
	record("2026-03-15T10:00:00Z", ledger.UsageEvent{EventID: "rejected", Team: "b", User: "u2", Amount: crp("5000")}, ledger.UsageRejected)
	record("2026-03-16T10:00:00Z", ledger.UsageEvent{EventID: "runs2", Team: "b", Feature: "custom_query", Runs: 100}, ledger.UsageApplied)
	at("2026-03-17T09:00:00Z")
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: "h1", Amount: cr("20"), TTL: 2 * time.Hour,
			Feature: "bulk_pricing", Team: "c", User: "u3"})
		return err
	})
	at("2026-03-17T10:00:00Z")
	f.tx(func(tx pgx.Tx) error { _, err := f.l.Capture(f.ctx, tx, org, "h1", cr("15"), ""); return err })
	record("2026-03-19T23:59:59.999999Z", ledger.UsageEvent{EventID: "before-to", User: "u1", Amount: crp("2")}, ledger.UsageApplied)
	record("2026-03-20T00:00:00Z", ledger.UsageEvent{EventID: "at-to", Team: "a", Amount: crp("100")}, ledger.UsageApplied)
}

func usage(applied, rejected int64, cost string, units, runs, overage int64) ledger.ReportUsage {
	return ledger.ReportUsage{Applied: applied, Rejected: rejected, Credits: credits.MustParse(cost), Units: units, Runs: runs, OverageRuns: overage}
}

func TestReport_Groups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", &orgOpts{policy: ledger.PolicyReject})
	scriptReportUsage(f, org)
	f.verify()

	// Worked out by hand from the script: "before" and "at-to" are outside
	// [from, to); "rejected" is counted but costs nothing; the runs events
	// cross the 10,000 included runs (50 then 100 overage runs at 0.01).
	wantTotals := usage(7, 1, "84.5", 4, 10150, 150)
	for _, tc := range []struct {
		by   ledger.ReportBy
		want []ledger.ReportGroup
	}{
		{ledger.ReportByTeam, []ledger.ReportGroup{
			{Key: "", ReportUsage: usage(2, 0, "52", 1, 0, 0)},
			{Key: "a", ReportUsage: usage(2, 0, "16", 3, 0, 0)},
			{Key: "b", ReportUsage: usage(2, 1, "1.5", 0, 10150, 150)},
			{Key: "c", ReportUsage: usage(1, 0, "15", 0, 0, 0)},
		}},
		{ledger.ReportByUser, []ledger.ReportGroup{
			{Key: "", ReportUsage: usage(2, 0, "51", 1, 100, 100)},
			{Key: "u1", ReportUsage: usage(3, 0, "8.5", 3, 10050, 50)},
			{Key: "u2", ReportUsage: usage(1, 1, "10", 0, 0, 0)},
			{Key: "u3", ReportUsage: usage(1, 0, "15", 0, 0, 0)},
		}},
		{ledger.ReportByFeature, []ledger.ReportGroup{
			{Key: "", ReportUsage: usage(2, 1, "2.5", 0, 10050, 50)},
			{Key: "bulk_pricing", ReportUsage: usage(1, 0, "15", 0, 0, 0)},
			{Key: "custom_query", ReportUsage: usage(2, 0, "11", 0, 100, 100)},
			{Key: "market_trend_report", ReportUsage: usage(1, 0, "50", 1, 0, 0)},
			{Key: "microservice", ReportUsage: usage(1, 0, "6", 3, 0, 0)},
		}},
	} {
		t.Run(string(tc.by), func(t *testing.T) {
			rep, err := f.l.Report(f.ctx, f.pool, ledger.ReportRequest{OrgID: org, From: reportFrom.Format(time.RFC3339),
				To: reportTo.Format(time.RFC3339), By: tc.by})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.From.Equal(reportFrom) || !rep.To.Equal(reportTo) || rep.By != tc.by || rep.TimeZone != "UTC" {
				t.Errorf("report header %s %s %s %s", rep.From, rep.To, rep.By, rep.TimeZone)
			}
			if len(rep.Groups) != len(tc.want) {
				t.Fatalf("groups = %+v, want %+v", rep.Groups, tc.want)
			}
			var sum ledger.ReportUsage
			for i, g := range rep.Groups {
				if g != tc.want[i] {
					t.Errorf("group %d = %+v, want %+v", i, g, tc.want[i])
				}
				sum.Applied, sum.Rejected, sum.Credits = sum.Applied+g.Applied, sum.Rejected+g.Rejected, sum.Credits+g.Credits
				sum.Units, sum.Runs, sum.OverageRuns = sum.Units+g.Units, sum.Runs+g.Runs, sum.OverageRuns+g.OverageRuns
			}
			if rep.Totals != wantTotals || sum != rep.Totals {
				t.Errorf("totals = %+v, groups add up to %+v, want %+v", rep.Totals, sum, wantTotals)
			}
		})
	}

	// The credits reported are what history shows spent in the range: usage
	// entries and the spending part of captures (not the release of the hold).
	var spent credits.Credits
	for _, e := range f.history(org) {
		inRange := !e.At.Before(reportFrom) && e.At.Before(reportTo)
		if inRange && (e.Kind == "usage" || e.Kind == "capture" && e.HoldID == nil) {
			spent -= e.Amount
		}
	}
	if spent != wantTotals.Credits {
		t.Errorf("history shows %s spent in the range, the report %s", spent, wantTotals.Credits)
	}
}

// TestReport_DateBounds: a date is midnight at its start in the org's zone,
// also on days of 23 and 25 hours and where midnight itself is skipped.
func TestReport_DateBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name, org, zone, from, to string
		wantFrom, wantTo          time.Time
	}{
		// Clocks go forward at 02:00 on March 8: a day of 23 hours.
		{"new york spring forward", "ny", "America/New_York", "2026-03-08", "2026-03-09",
			utc("2026-03-08T05:00:00Z"), utc("2026-03-09T04:00:00Z")},
		// Clocks go back at 03:00 on April 5: a day of 25 hours.
		{"auckland autumn", "akl", "Pacific/Auckland", "2026-04-05", "2026-04-06",
			utc("2026-04-04T11:00:00Z"), utc("2026-04-05T12:00:00Z")},
		// Midnight of September 6 does not exist: the day starts at 01:00.
		{"santiago midnight gap", "scl", "America/Santiago", "2026-09-06", "2026-09-07",
			utc("2026-09-06T04:00:00Z"), utc("2026-09-07T03:00:00Z")},
		// A date and an instant with another offset may be mixed.
		{"date and instant", "ny-mixed", "America/New_York", "2026-03-08", "2026-03-09T01:00:00+01:00",
			utc("2026-03-08T05:00:00Z"), utc("2026-03-09T00:00:00Z")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			org := tc.org
			f.clock.Set(tc.wantFrom.Add(-time.Hour))
			f.tx(func(tx pgx.Tx) error {
				_, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard", TimeZone: tc.zone})
				return err
			})
			f.grant(org, "100", ledger.SourcePurchase, "seed", nil)
			// One credit applied at each side of each bound.
			for i, at := range []time.Time{tc.wantFrom.Add(-time.Microsecond), tc.wantFrom, tc.wantTo.Add(-time.Microsecond), tc.wantTo} {
				f.clock.Set(at)
				ev := ledger.UsageEvent{OrgID: org, EventID: "e" + string(rune('0'+i)), Amount: crp("1")}
				if _, err := f.useE(ev); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := f.l.Report(f.ctx, f.pool, ledger.ReportRequest{OrgID: org, From: tc.from, To: tc.to, By: ledger.ReportByTeam})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.From.Equal(tc.wantFrom) || !rep.To.Equal(tc.wantTo) {
				t.Errorf("range [%s, %s), want [%s, %s)", rep.From, rep.To, tc.wantFrom, tc.wantTo)
			}
			if rep.Totals != usage(2, 0, "2", 0, 0, 0) {
				t.Errorf("totals %+v, want the 2 events inside the bounds", rep.Totals)
			}
		})
	}
}

// TestReport_AppliedInstant: an event is in the period the ledger applied
// it in, not the one its occurred_at names, as on invoices: one that
// occurred in March and was applied in April counts in April's report, and
// its credits are April's in history too.
func TestReport_AppliedInstant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourcePurchase, "seed", nil)
	occurred := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	applied := time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC)
	f.clock.Set(applied)
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "late", Team: "a", Amount: crp("7"), OccurredAt: occurred}); err != nil {
		t.Fatal(err)
	}
	f.verify()
	rec, err := f.l.UsageEventStatus(f.ctx, f.pool, org, "late")
	if err != nil || !rec.OccurredAt.Equal(occurred) || !rec.RecordedAt.Equal(applied) {
		t.Fatalf("event = %+v, %v; want occurred %s, recorded %s", rec, err, occurred, applied)
	}
	for _, tc := range []struct {
		name, from, to string
		want           ledger.ReportUsage
	}{
		{"march, when it occurred", "2026-03-01", "2026-04-01", usage(0, 0, "0", 0, 0, 0)},
		{"april, when it was applied", "2026-04-01", "2026-05-01", usage(1, 0, "7", 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := f.l.Report(f.ctx, f.pool, ledger.ReportRequest{OrgID: org, From: tc.from, To: tc.to, By: ledger.ReportByTeam})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Totals != tc.want {
				t.Errorf("totals %+v, want %+v", rep.Totals, tc.want)
			}
		})
	}
	var usageAt []time.Time
	for _, e := range f.history(org) {
		if e.Kind == "usage" {
			usageAt = append(usageAt, e.At)
		}
	}
	if len(usageAt) != 1 || !usageAt[0].Equal(applied) {
		t.Errorf("history's usage entries at %v, want one at %s", usageAt, applied)
	}
}

func TestReport_Invalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	for _, tc := range []struct {
		name  string
		req   ledger.ReportRequest
		field string // "" for ErrNotFound
	}{
		{"bad org id", ledger.ReportRequest{OrgID: "no such/org", From: "2026-03-01", To: "2026-04-01", By: "team"}, "org"},
		{"unknown org", ledger.ReportRequest{OrgID: "nobody", From: "2026-03-01", To: "2026-04-01", By: "team"}, ""},
		{"no by", ledger.ReportRequest{OrgID: org, From: "2026-03-01", To: "2026-04-01"}, "by"},
		{"bad by", ledger.ReportRequest{OrgID: org, From: "2026-03-01", To: "2026-04-01", By: "plan"}, "by"},
		{"no from", ledger.ReportRequest{OrgID: org, To: "2026-04-01", By: "team"}, "from"},
		{"bad from", ledger.ReportRequest{OrgID: org, From: "2026-13-01", To: "2026-04-01", By: "team"}, "from"},
		{"from without offset", ledger.ReportRequest{OrgID: org, From: "2026-03-01T00:00:00", To: "2026-04-01", By: "team"}, "from"},
		{"bad to", ledger.ReportRequest{OrgID: org, From: "2026-03-01", To: "April", By: "team"}, "to"},
		{"empty range", ledger.ReportRequest{OrgID: org, From: "2026-03-01", To: "2026-03-01T00:00:00Z", By: "team"}, "to"},
		{"to before from", ledger.ReportRequest{OrgID: org, From: "2026-04-01", To: "2026-03-01", By: "team"}, "to"},
		{"longer than 400 days", ledger.ReportRequest{OrgID: org, From: "2026-01-01", To: "2027-02-05T00:00:00.000001Z", By: "team"}, "to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.l.Report(f.ctx, f.pool, tc.req)
			var ve *ledger.ValidationError
			switch {
			case tc.field == "" && !errors.Is(err, ledger.ErrNotFound):
				t.Fatalf("err = %v, want not found", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("err = %v, want a validation error naming %q", err, tc.field)
			}
		})
	}
	// 400 days exactly is allowed.
	if _, err := f.l.Report(f.ctx, f.pool, ledger.ReportRequest{OrgID: org, From: "2026-01-01", To: "2027-02-05", By: "user"}); err != nil {
		t.Fatalf("400 days: %v", err)
	}
}
