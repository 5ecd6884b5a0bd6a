package render_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func cr(s string) credits.Credits { return credits.MustParse(s) }

func zar(minor int64) credits.Money { return credits.Money{Minor: minor, Currency: "ZAR"} }

// sampleInvoice is a November invoice of an org in Johannesburg paying in
// rand, with names that need escaping in HTML and guarding in a spreadsheet.
func sampleInvoice() ledger.Invoice {
	jhb, err := time.LoadLocation("Africa/Johannesburg")
	if err != nil {
		panic(err)
	}
	paid := time.Date(2026, 12, 1, 9, 30, 0, 0, jhb)
	return ledger.Invoice{
		OrgID: "<Acme & Co>", Period: "2026-11", Currency: "ZAR", Status: ledger.InvoicePaid, TimeZone: "Africa/Johannesburg",
		PeriodStart: time.Date(2026, 11, 1, 0, 0, 0, 0, jhb), PeriodEnd: time.Date(2026, 12, 1, 0, 0, 0, 0, jhb),
		Plan: "professional", SubscriptionFee: zar(45000),
		Payments: []ledger.InvoicePayment{
			{PaymentID: "pi_3Ab", Kind: "purchase", Credits: cr("1000"), Amount: zar(100000), PaidAt: time.Date(2026, 11, 3, 14, 0, 0, 0, jhb)},
			{PaymentID: "pi_9Zz", Kind: "recharge", Credits: cr("250.5"), Amount: zar(25050), PaidAt: time.Date(2026, 11, 30, 23, 59, 0, 0, jhb)},
		},
		UsageByFeature: []ledger.UsageLine{
			{Key: "", Events: 3, Credits: cr("2.5")},
			{Key: "market_trend_report", Events: 12, Credits: cr("600"), Rejected: 1},
			{Key: "microservice", Events: 40, Credits: cr("80.125")},
		},
		UsageByTeam: []ledger.UsageLine{
			{Key: "", Events: 5, Credits: cr("10")},
			{Key: "<b>ops</b>", Events: 30, Credits: cr("512.625"), Rejected: 1},
			{Key: "=HYPERLINK(\"x\")", Events: 20, Credits: cr("160")},
		},
		Runs:    ledger.RunsLine{Runs: 52345, Included: 50000, Overage: 2345, OverageCredits: cr("23.45")},
		Granted: cr("6250.5"), Used: cr("682.625"), Expired: cr("120"),
		OpeningBalance: cr("4000"), ClosingBalance: cr("9447.875"), ClosingDebt: 0,
		Totals:    ledger.InvoiceTotals{Subscription: 45000, Payments: 125050, Due: 45000},
		CreatedAt: time.Date(2026, 12, 1, 0, 5, 0, 0, jhb), PaidAt: &paid,
	}
}

// readCSV parses what a renderer wrote and checks the header.
func readCSV(t *testing.T, data []byte, header []string) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	rows, err := r.ReadAll() // also checks every row has the header's width
	if err != nil {
		t.Fatalf("not valid CSV: %v\n%s", err, data)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(header, ",") {
		t.Fatalf("header = %v, want %v", rows, header)
	}
	return rows[1:]
}

func TestInvoiceCSV(t *testing.T) {
	inv := sampleInvoice()
	var buf bytes.Buffer
	if err := render.InvoiceCSV(&buf, inv); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, buf.Bytes(), render.InvoiceHeader)
	col := map[string]int{}
	for i, h := range render.InvoiceHeader {
		col[h] = i
	}
	// Every row names the invoice; the org's name starts with "<", no
	// formula, so it is kept as it is.
	bySection := map[string][][]string{}
	for _, r := range rows {
		if r[col["org"]] != "<Acme & Co>" || r[col["period"]] != "2026-11" || r[col["currency"]] != "ZAR" {
			t.Fatalf("row %v does not name the invoice", r)
		}
		bySection[r[col["section"]]] = append(bySection[r[col["section"]]], r)
	}
	get := func(r []string, names ...string) string {
		var out []string
		for _, n := range names {
			out = append(out, r[col[n]])
		}
		return strings.Join(out, "|")
	}
	for _, tc := range []struct {
		section string
		fields  []string
		want    []string
	}{
		{render.SectionInvoice, []string{"item", "kind", "date"}, []string{"status|paid|", "period_start||2026-10-31T22:00:00Z",
			"period_end||2026-11-30T22:00:00Z", "created||2026-11-30T22:05:00Z", "paid||2026-12-01T07:30:00Z"}},
		{render.SectionSubscription, []string{"item", "amount"}, []string{"professional|450.00"}},
		{render.SectionPayment, []string{"item", "kind", "credits", "amount", "date"}, []string{
			"pi_3Ab|purchase|1000.000|1000.00|2026-11-03T12:00:00Z", "pi_9Zz|recharge|250.500|250.50|2026-11-30T21:59:00Z"}},
		{render.SectionFeature, []string{"item", "count", "rejected", "credits"}, []string{
			"(none)|3|0|2.500", "market_trend_report|12|1|600.000", "microservice|40|0|80.125"}},
		// A name that a spreadsheet would evaluate is kept as text.
		{render.SectionTeam, []string{"item", "count", "rejected", "credits"}, []string{
			"(none)|5|0|10.000", "<b>ops</b>|30|1|512.625", "'=HYPERLINK(\"x\")|20|0|160.000"}},
		{render.SectionRuns, []string{"item", "count", "credits"}, []string{"runs|52345|", "included|50000|", "overage|2345|23.450"}},
		{render.SectionBalance, []string{"item", "credits"}, []string{"opening_balance|4000.000", "granted|6250.500", "used|682.625",
			"expired|120.000", "taken|0.000", "closing_balance|9447.875", "closing_debt|0.000"}},
		{render.SectionTotal, []string{"item", "amount"}, []string{"subscription|450.00", "payments|1250.50", "due|450.00"}},
	} {
		t.Run(tc.section, func(t *testing.T) {
			got := bySection[tc.section]
			if len(got) != len(tc.want) {
				t.Fatalf("%d rows %v, want %d", len(got), got, len(tc.want))
			}
			for i, r := range got {
				if g := get(r, tc.fields...); g != tc.want[i] {
					t.Errorf("row %d: %s = %q, want %q", i, strings.Join(tc.fields, "|"), g, tc.want[i])
				}
			}
		})
	}
	if len(bySection) != 8 {
		t.Errorf("sections %v", bySection)
	}
}

func TestReportCSV(t *testing.T) {
	rep := ledger.UsageReport{OrgID: "acme", By: ledger.ReportByUser,
		Groups: []ledger.ReportGroup{
			{Key: "", ReportUsage: ledger.ReportUsage{Applied: 2, Credits: cr("51"), Units: 1, Runs: 100, OverageRuns: 100}},
			{Key: "@u1", ReportUsage: ledger.ReportUsage{Applied: 3, Rejected: 1, Credits: cr("8.5"), Units: 3, Runs: 10050, OverageRuns: 50}},
		},
		Totals: ledger.ReportUsage{Applied: 5, Rejected: 1, Credits: cr("59.5"), Units: 4, Runs: 10150, OverageRuns: 150},
	}
	var buf bytes.Buffer
	if err := render.ReportCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, buf.Bytes(), render.ReportHeader)
	want := []string{
		"user,(none),2,0,51.000,1,100,100",
		"user,'@u1,3,1,8.500,3,10050,50",
		"total,,5,1,59.500,4,10150,150",
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	for i, r := range rows {
		if got := strings.Join(r, ","); got != want[i] {
			t.Errorf("row %d = %s, want %s", i, got, want[i])
		}
	}
}

// failingWriter refuses every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRender_WriteError(t *testing.T) {
	for name, fn := range map[string]func() error{
		"invoice csv":  func() error { return render.InvoiceCSV(failingWriter{}, sampleInvoice()) },
		"invoice html": func() error { return render.InvoiceHTML(failingWriter{}, sampleInvoice()) },
		"report csv":   func() error { return render.ReportCSV(failingWriter{}, ledger.UsageReport{By: ledger.ReportByTeam}) },
	} {
		t.Run(name, func(t *testing.T) {
			if err := fn(); err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Fatalf("err = %v, want the writer's error", err)
			}
		})
	}
}

func TestInvoiceHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := render.InvoiceHTML(&buf, sampleInvoice()); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<!DOCTYPE html>",
		"&lt;Acme &amp; Co&gt;", // the org, escaped
		"&lt;b&gt;ops&lt;/b&gt;",
		"November 2026 · 1 Nov 2026 – 30 Nov 2026 (Africa/Johannesburg)", // dates in the org's zone
		`status-paid`, "Issued</dt><dd>1 Dec 2026", "Paid</dt><dd>1 Dec 2026",
		"450.00 ZAR", "1250.50 ZAR", "1000.00 ZAR", "250.50 ZAR",
		"pi_3Ab", "Automatic recharge", "Credit purchase",
		"(none)", "market_trend_report", "80.125", "512.625",
		"52345", "2345", "23.450",
		"4000.000", "6250.500", "682.625", "120.000", "9447.875",
		"@media print", "size: A4",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<Acme", "<b>ops", "<script", "src=", "http://", "https://", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// No taken-back line when nothing was taken.
	if strings.Contains(page, "Taken back") {
		t.Error("page shows a zero taken-back line")
	}

	t.Run("bad zone", func(t *testing.T) {
		inv := sampleInvoice()
		inv.TimeZone = "Mars/Olympus"
		var buf bytes.Buffer
		if err := render.InvoiceHTML(&buf, inv); err == nil || buf.Len() != 0 {
			t.Fatalf("err = %v, wrote %d bytes", err, buf.Len())
		}
	})
}
