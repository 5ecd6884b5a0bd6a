package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// testReport reads usage reports through GET /v1/orgs/{org}/report with
// the tokens that may and may not, as JSON and CSV, and refuses bad input
// naming the field. The org and its usage are applied by a ledger with a
// test clock, so that each event is applied at a chosen instant (an org's
// entries never go back in time, hence the org and its seed grant too).
func testReport(t *testing.T, e *env) {
	clock := ledgertest.NewClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	l := ledger.New(config.DefaultCatalog(), clock)
	org := e.orgName("a")
	e.tx(func(tx pgx.Tx) error {
		if _, err := l.CreateOrg(e.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard"}); err != nil {
			return err
		}
		_, err := l.Grant(e.ctx, tx, ledger.Grant{OrgID: org, Amount: credits.MustParse("1000"), Source: ledger.SourcePurchase, Key: "seed"})
		return err
	})
	other := e.org("b", "")
	member, _ := e.token(org, ledger.RoleMember)
	admin, _ := e.token(org, ledger.RoleAdmin)
	stranger, _ := e.token(other, ledger.RoleAdmin)
	amount := func(s string) *credits.Credits { c := credits.MustParse(s); return &c }
	// "early" occurred in March but was applied before it; "late" the reverse.
	// Only "e1" and "e2" were applied in March.
	for _, u := range []struct {
		applied time.Time
		ev      ledger.UsageEvent
	}{
		{time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC), ledger.UsageEvent{EventID: "early", Team: "x", Amount: amount("9"),
			OccurredAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}},
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "e1", Team: "x", User: "u1", Feature: "microservice", Units: 2}},
		{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "e2", Amount: amount("1.5")}},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), ledger.UsageEvent{EventID: "late", Team: "x", Amount: amount("9"),
			OccurredAt: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}},
	} {
		clock.Set(u.applied)
		ev := u.ev
		ev.OrgID = org
		e.tx(func(tx pgx.Tx) error { _, err := l.RecordUsage(e.ctx, tx, []ledger.UsageEvent{ev}); return err })
	}
	path := "/v1/orgs/" + org + "/report?from=2026-03-01&to=2026-04-01T00:00:00Z&by=team"

	for _, tc := range []struct {
		name string
		a    auth
		want int
	}{
		{"no token", noAuth, http.StatusUnauthorized},
		{"another org's admin", bearer(stranger), http.StatusForbidden},
		{"member", bearer(member), http.StatusOK},
		{"admin", bearer(admin), http.StatusOK},
		{"operator", operator, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do("GET", path, "", tc.a)
			if got.status != tc.want {
				t.Fatalf("GET report = %d %s, want %d", got.status, got.body, tc.want)
			}
			if tc.want != http.StatusOK {
				got.errorBody(t)
				return
			}
			var rep ledger.UsageReport
			got.decode(t, &rep)
			if len(rep.Groups) != 2 || rep.Groups[0].Key != "" || rep.Groups[0].Credits != credits.MustParse("1.5") ||
				rep.Groups[1].Key != "x" || rep.Groups[1].Credits != credits.MustParse("4") || rep.Groups[1].Units != 2 ||
				rep.Totals.Applied != 2 || rep.Totals.Credits != credits.MustParse("5.5") {
				t.Fatalf("report = %s", got.body)
			}
		})
	}

	t.Run("csv", func(t *testing.T) {
		got := e.do("GET", path+"&format=csv", "", bearer(member))
		if got.status != http.StatusOK || got.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(got.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("csv = %d %v\n%s", got.status, got.header, got.body)
		}
		rows, err := csv.NewReader(bytes.NewReader(got.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		want := "section,key,applied,rejected,credits,units,runs,overage_runs\n" +
			"team,(none),1,0,1.500,0,0,0\nteam,x,1,0,4.000,2,0,0\ntotal,,2,0,5.500,2,0,0"
		var lines []string
		for _, r := range rows {
			lines = append(lines, strings.Join(r, ","))
		}
		if strings.Join(lines, "\n") != want {
			t.Fatalf("csv:\n%s\nwant:\n%s", got.body, want)
		}
	})

	base := "/v1/orgs/" + org + "/report?"
	for _, tc := range []struct {
		name, path string
		want       int
		field      string
	}{
		{"no by", base + "from=2026-03-01&to=2026-04-01", http.StatusBadRequest, "by"},
		{"bad by", base + "from=2026-03-01&to=2026-04-01&by=org", http.StatusBadRequest, "by"},
		{"no from", base + "to=2026-04-01&by=team", http.StatusBadRequest, "from"},
		{"bad from", base + "from=March&to=2026-04-01&by=team", http.StatusBadRequest, "from"},
		{"to before from", base + "from=2026-04-01&to=2026-03-01&by=team", http.StatusBadRequest, "to"},
		{"too long", base + "from=2020-01-01&to=2026-04-01&by=team", http.StatusBadRequest, "to"},
		{"bad format", base + "from=2026-03-01&to=2026-04-01&by=team&format=xml", http.StatusBadRequest, "format"},
		{"unknown parameter", base + "from=2026-03-01&to=2026-04-01&by=team&tz=UTC", http.StatusBadRequest, "tz"},
		{"unknown org", "/v1/orgs/nobody/report?from=2026-03-01&to=2026-04-01&by=team", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do("GET", tc.path, "", operator)
			if got.status != tc.want || got.errorBody(t).Field != tc.field {
				t.Fatalf("GET %s = %d %s, want %d naming %q", tc.path, got.status, got.body, tc.want, tc.field)
			}
		})
	}
}
