package main

import (
	"context"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// reportJSON is `report --json` as the tests read it.
type reportJSON struct {
	Org      string `json:"org"`
	From     string `json:"from"`
	To       string `json:"to"`
	TimeZone string `json:"time_zone"`
	By       string `json:"by"`
	Groups   []struct {
		Key string `json:"key"`
		reportUsage
	} `json:"groups"`
	Totals reportUsage `json:"totals"`
}

type reportUsage struct {
	Applied     int64  `json:"applied"`
	Rejected    int64  `json:"rejected"`
	Credits     string `json:"credits"`
	Units       int64  `json:"units"`
	Runs        int64  `json:"runs"`
	OverageRuns int64  `json:"overage_runs"`
}

// testReport creates an Auckland org and applies its usage at chosen
// instants through a ledger with a test clock (the CLI has no way to set the
// instant an event is applied, and an org's entries never go back in time, so
// its seed grant is applied by that clock too), then reads it back with
// `creditd report` as a table, JSON and CSV, with dates meaning midnight in
// Auckland on the day its clocks go back. An event is placed by the instant
// it was applied: "backdated" says it occurred on March 1 and counts in the
// range it was applied in.
func testReport(t *testing.T, c *cli) {
	clock := ledgertest.NewClock(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	l := ledger.New(config.DefaultCatalog(), clock)
	pool := ledgertest.Pool(t, c.url)
	ctx := context.Background()
	err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: "kiwi", Plan: "standard", TimeZone: "Pacific/Auckland"}); err != nil {
			return err
		}
		_, err := l.Grant(ctx, tx, ledger.Grant{OrgID: "kiwi", Amount: credits.MustParse("1000"), Source: ledger.SourcePurchase, Key: "seed"})
		return err
	})
	if err != nil {
		t.Fatalf("org kiwi: %v", err)
	}
	c.ok("limit", "set", "kiwi", "--team", "b", "3")

	// 2026-04-05 in Auckland: 2026-04-04T11:00Z (NZDT) to 2026-04-05T12:00Z (NZST).
	for _, u := range []struct {
		applied time.Time
		ev      ledger.UsageEvent
	}{
		{time.Date(2026, 4, 4, 10, 59, 59, 999999000, time.UTC), ledger.UsageEvent{EventID: "before", Team: "a", Amount: cr("100")}},
		{time.Date(2026, 4, 4, 11, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "backdated", Team: "a", User: "u1", Feature: "microservice", Units: 2,
			OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{time.Date(2026, 4, 5, 1, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "plain", Amount: cr("0.25")}},
		{time.Date(2026, 4, 5, 2, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "refused", Team: "b", Amount: cr("5")}},
		{time.Date(2026, 4, 5, 11, 59, 59, 999999000, time.UTC), ledger.UsageEvent{EventID: "last", Team: "b", Runs: 10200}},
		{time.Date(2026, 4, 5, 12, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "after", Team: "b", Amount: cr("100")}},
	} {
		clock.Set(u.applied)
		ev := u.ev
		ev.OrgID = "kiwi"
		err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error { _, err := l.RecordUsage(ctx, tx, []ledger.UsageEvent{ev}); return err })
		if err != nil {
			t.Fatalf("usage %s: %v", ev.EventID, err)
		}
	}

	var rep reportJSON
	c.json(0, &rep, "report", "kiwi", "--from", "2026-04-05", "--to", "2026-04-06", "--by", "team", "--json")
	if rep.Org != "kiwi" || rep.From != "2026-04-04T11:00:00Z" || rep.To != "2026-04-05T12:00:00Z" || rep.TimeZone != "Pacific/Auckland" || rep.By != "team" {
		t.Fatalf("report header = %+v", rep)
	}
	// Team b's 10,200 runs pass the 10,000 included: 200 overage runs, 2 credits.
	// Its 5-credit event is over its 3-credit limit: rejected.
	want := []string{"|1 0 0.250 0 0 0", "a|1 0 4.000 2 0 0", "b|1 1 2.000 0 10200 200"}
	if len(rep.Groups) != len(want) {
		t.Fatalf("groups = %+v", rep.Groups)
	}
	for i, g := range rep.Groups {
		if got := g.Key + "|" + usageFields(g.reportUsage); got != want[i] {
			t.Errorf("group %d = %s, want %s", i, got, want[i])
		}
	}
	if got := usageFields(rep.Totals); got != "3 1 6.250 2 10200 200" {
		t.Errorf("totals = %s", got)
	}

	out := c.ok("report", "kiwi", "--from", "2026-04-05", "--to", "2026-04-06", "--by", "feature")
	for _, want := range []string{"from       2026-04-05T00:00:00+13:00", "to         2026-04-06T00:00:00+12:00 (exclusive)",
		"FEATURE", "(none)", "microservice", "TOTAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("report table lacks %q:\n%s", want, out)
		}
	}

	// The same range as instants with other offsets, by user, as CSV.
	out = c.ok("report", "kiwi", "--csv", "--by", "user", "--from", "2026-04-04T13:00:00+02:00", "--to", "2026-04-05T12:00:00Z")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, out)
	}
	wantCSV := []string{"section,key,applied,rejected,credits,units,runs,overage_runs",
		"user,(none),2,1,2.250,0,10200,200", "user,u1,1,0,4.000,2,0,0", "total,,3,1,6.250,2,10200,200"}
	if len(rows) != len(wantCSV) {
		t.Fatalf("csv:\n%s", out)
	}
	for i, r := range rows {
		if got := strings.Join(r, ","); got != wantCSV[i] {
			t.Errorf("csv row %d = %s, want %s", i, got, wantCSV[i])
		}
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown org", []string{"nobody", "--from", "2026-04-05", "--to", "2026-04-06", "--by", "team"}, 1, "org nobody: not found"},
		{"no by", []string{"kiwi", "--from", "2026-04-05", "--to", "2026-04-06"}, 2, "by: required"},
		{"bad by", []string{"kiwi", "--from", "2026-04-05", "--to", "2026-04-06", "--by", "org"}, 2, "by: must be team, user or feature"},
		{"no from", []string{"kiwi", "--to", "2026-04-06", "--by", "team"}, 2, "from: required"},
		{"bad to", []string{"kiwi", "--from", "2026-04-05", "--to", "tomorrow", "--by", "team"}, 2, "to: \"tomorrow\" is not an RFC 3339 time"},
		{"to before from", []string{"kiwi", "--from", "2026-04-06", "--to", "2026-04-05", "--by", "team"}, 2, "to: 2026-04-04T11:00:00Z is not after from"},
		{"too long", []string{"kiwi", "--from", "2026-01-01", "--to", "2027-06-01", "--by", "team"}, 2, "to: the range is longer than 400 days"},
		{"json and csv", []string{"kiwi", "--from", "2026-04-05", "--to", "2026-04-06", "--by", "team", "--json", "--csv"}, 2, "give --json or --csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(append([]string{"report"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit %d and %q", r.code, r.stderr, r.stdout, tc.code, tc.stderr)
			}
		})
	}
}

func usageFields(u reportUsage) string {
	return strings.Join([]string{itoa(u.Applied), itoa(u.Rejected), u.Credits, itoa(u.Units), itoa(u.Runs), itoa(u.OverageRuns)}, " ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func cr(s string) *credits.Credits { c := credits.MustParse(s); return &c }
