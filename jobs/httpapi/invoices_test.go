package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
)

// testInvoices reads an org's invoices: its members and the operator may,
// other orgs' tokens may not; a month not invoiced is 404, a bad period 400.
func testInvoices(t *testing.T, e *env) {
	org := e.org("inv", "")
	other := e.org("other", "")
	member, _ := e.token(org, ledger.RoleMember)
	stranger, _ := e.token(other, ledger.RoleMember)
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month()-2, 1, 0, 0, 0, 0, time.UTC)
	period := month.Format("2006-01")
	var made ledger.Invoice
	e.tx(func(tx pgx.Tx) error {
		// As if the org had been created at the start of that month.
		if _, err := tx.Exec(e.ctx, `UPDATE orgs SET created_at = $2, next_invoice_at = $3 WHERE org_id = $1`,
			org, month, month.AddDate(0, 1, 0)); err != nil {
			return err
		}
		var err error
		made, err = e.l.MakeInvoice(e.ctx, tx, org, period)
		return err
	})
	base := "/v1/orgs/" + org + "/invoices"
	for _, tc := range []struct {
		name, path string
		a          auth
		want       int
		field      string
	}{
		{"member reads one", base + "/" + period, bearer(member), http.StatusOK, ""},
		{"operator reads one", base + "/" + period, operator, http.StatusOK, ""},
		{"member lists", base, bearer(member), http.StatusOK, ""},
		{"another org's token", base, bearer(stranger), http.StatusForbidden, ""},
		{"no token", base, noAuth, http.StatusUnauthorized, ""},
		{"month not invoiced", base + "/" + now.Format("2006-01"), bearer(member), http.StatusNotFound, ""},
		{"bad period", base + "/2026-13", bearer(member), http.StatusBadRequest, "period"},
		{"unknown query", base + "?at=now", bearer(member), http.StatusBadRequest, "at"},
		{"csv", base + "/" + period + "?format=csv", bearer(member), http.StatusOK, ""},
		{"html", base + "/" + period + "?format=html", bearer(member), http.StatusOK, ""},
		{"bad format", base + "/" + period + "?format=pdf", bearer(member), http.StatusBadRequest, "format"},
		{"csv of another org", base + "/" + period + "?format=csv", bearer(stranger), http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do("GET", tc.path, "", tc.a)
			if got.status != tc.want || (tc.field != "" && got.errorBody(t).Field != tc.field) {
				t.Fatalf("GET %s = %d %s, want %d naming %q", tc.path, got.status, got.body, tc.want, tc.field)
			}
		})
	}
	var one ledger.Invoice
	e.do("GET", base+"/"+period, "", bearer(member)).decode(t, &one)
	if one.OrgID != org || one.Period != period || one.Totals.Due != 1000 || !one.CreatedAt.Equal(made.CreatedAt) {
		t.Fatalf("invoice %+v, want the one made (%+v)", one, made)
	}
	// Rendered: the CSV parses back to the invoice's rows; the page is HTML
	// that may load and run nothing.
	got := e.do("GET", base+"/"+period+"?format=csv", "", bearer(member))
	rows, err := csv.NewReader(bytes.NewReader(got.body)).ReadAll()
	if err != nil || got.header.Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) < 3 ||
		strings.Join(rows[0], ",") != strings.Join(render.InvoiceHeader, ",") || rows[1][0] != org || rows[1][1] != period {
		t.Fatalf("csv = %s %q (%v), rows %q", got.header.Get("Content-Type"), got.body, err, rows)
	}
	got = e.do("GET", base+"/"+period+"?format=html", "", bearer(member))
	if got.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(got.header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!bytes.HasPrefix(got.body, []byte("<!DOCTYPE html>")) || !bytes.Contains(got.body, []byte("10.00 USD")) {
		t.Fatalf("html = %v %.300q", got.header, got.body)
	}
	var list struct {
		Org      string           `json:"org"`
		Invoices []ledger.Invoice `json:"invoices"`
	}
	e.do("GET", base, "", bearer(member)).decode(t, &list)
	if list.Org != org || len(list.Invoices) != 1 || list.Invoices[0].Period != period {
		t.Fatalf("list %+v", list)
	}
}
