package main

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/jobs/render"
)

// redisDBInvoices is the Redis database of the invoices case (the only one
// the other cases leave free).
const redisDBInvoices = 0

// testInvoices invoices a month that has ended through the CLI (made on
// demand, once), lists the invoices, refuses bad periods naming the field
// and writing nothing, previews and makes the next month through `creditd
// cycle` and a worker, and sets an org to pay automatically.
func testInvoices(t *testing.T, c *cli) {
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month()-2, 1, 0, 0, 0, 0, time.UTC)
	period := month.Format("2006-01")
	c.ok("org", "create", "acme", "--plan", "standard", "--anchor", month.Format(time.RFC3339))
	// As if the org had been created at the start of that month.
	c.exec(`UPDATE orgs SET created_at = $1, next_invoice_at = $2 WHERE org_id = 'acme'`, month, month.AddDate(0, 1, 0))
	c.exec(`UPDATE balances SET last_at = $1 WHERE org_id = 'acme'`, month)

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		field string
	}{
		{"no period", []string{"invoice", "acme"}, 2, "period"},
		{"bad period", []string{"invoice", "acme", "--period", "2026-13"}, 2, "period"},
		{"month not ended", []string{"invoice", "acme", "--period", now.Format("2006-01")}, 2, "period"},
		{"before the org", []string{"invoice", "acme", "--period", month.AddDate(0, -1, 0).Format("2006-01")}, 2, "period"},
		{"bad auto-pay", []string{"org", "set", "acme", "--auto-pay", "yes"}, 2, "auto-pay"},
		{"bad price", []string{"org", "set", "acme", "--price", "12.345"}, 2, "price"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.rowCounts()
			r := c.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, "creditd: "+tc.field+": ") {
				t.Fatalf("exit %d, stderr %q; want %d naming %s", r.code, r.stderr, tc.code, tc.field)
			}
			if after := c.rowCounts(); after != before {
				t.Fatalf("rows changed from %s to %s", before, after)
			}
		})
	}
	if r := c.run("invoice", "nobody", "--period", period); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("unknown org: exit %d, %q", r.code, r.stderr)
	}

	type invoice struct {
		Org       string `json:"org"`
		Period    string `json:"period"`
		Status    string `json:"status"`
		Plan      string `json:"plan"`
		Granted   string `json:"granted"`
		Closing   string `json:"closing_balance"`
		CreatedAt string `json:"created_at"`
		Totals    struct {
			Due int64 `json:"due_minor"`
		} `json:"totals"`
	}
	var first, again invoice
	c.json(0, &first, "invoice", "acme", "--period", period, "--json")
	if first.Org != "acme" || first.Period != period || first.Status != "open" || first.Plan != "standard" ||
		first.Granted != "1000.000" || first.Closing != "1000.000" || first.Totals.Due != 1000 {
		t.Fatalf("invoice = %+v, want standard's open invoice: 1000 granted, 10.00 due", first)
	}
	c.json(0, &again, "invoice", "acme", "--period", period, "--json")
	if again != first {
		t.Fatalf("second call = %+v, want the stored invoice %+v", again, first)
	}
	if out := c.ok("invoice", "acme", "--period", period); !strings.Contains(out, "acme "+period+" (open)") ||
		!strings.Contains(out, "due") || !strings.Contains(out, "10.00 USD") {
		t.Errorf("text = %q", out)
	}
	// The same stored invoice as CSV (parsed back) and as the HTML page.
	rows, err := csv.NewReader(strings.NewReader(c.ok("invoice", "acme", "--period", period, "--csv"))).ReadAll()
	if err != nil {
		t.Fatalf("invoice --csv: %v", err)
	}
	if len(rows) < 3 || strings.Join(rows[0], ",") != strings.Join(render.InvoiceHeader, ",") {
		t.Fatalf("invoice --csv rows = %q", rows)
	}
	var subscription []string
	for _, row := range rows[1:] {
		if row[0] != "acme" || row[1] != period || row[2] != "USD" {
			t.Fatalf("csv row %q does not name the invoice", row)
		}
		if row[3] == render.SectionSubscription {
			subscription = row
		}
	}
	if subscription == nil || subscription[4] != "standard" || subscription[9] != "10.00" {
		t.Fatalf("csv subscription row %q, want standard for 10.00 (rows %q)", subscription, rows)
	}
	if page := c.ok("invoice", "acme", "--period", period, "--html"); !strings.HasPrefix(page, "<!DOCTYPE html>") ||
		!strings.Contains(page, period) || !strings.Contains(page, "10.00 USD") {
		t.Errorf("invoice --html = %.300q...", page)
	}
	if r := c.run("invoice", "acme", "--period", period, "--csv", "--html"); r.code != 2 {
		t.Errorf("--csv --html: exit %d, want 2", r.code)
	}
	var list struct {
		Org      string    `json:"org"`
		Invoices []invoice `json:"invoices"`
	}
	c.json(0, &list, "invoices", "acme", "--json")
	if list.Org != "acme" || len(list.Invoices) != 1 || list.Invoices[0] != first {
		t.Fatalf("invoices = %+v", list)
	}

	// The month after has ended too: `creditd cycle` previews it, then a
	// worker makes it, once.
	next := month.AddDate(0, 1, 0).Format("2006-01")
	var preview struct {
		Invoices []struct {
			Org  string    `json:"org"`
			Made []invoice `json:"made"`
		} `json:"invoices"`
	}
	before := c.rowCounts()
	c.json(0, &preview, "cycle", "--dry-run", "--json")
	if len(preview.Invoices) != 1 || len(preview.Invoices[0].Made) != 1 || preview.Invoices[0].Made[0].Period != next {
		t.Fatalf("dry run invoices = %+v, want acme's %s", preview.Invoices, next)
	}
	if after := c.rowCounts(); after != before {
		t.Fatalf("the dry run wrote: %s -> %s", before, after)
	}
	c.startWorker(redisDBInvoices)
	var sum struct {
		Invoices struct {
			Invoices int      `json:"invoices"`
			Periods  []string `json:"periods"`
		} `json:"invoices"`
	}
	c.json(0, &sum, "cycle", "--json")
	if sum.Invoices.Invoices != 1 || len(sum.Invoices.Periods) != 1 || sum.Invoices.Periods[0] != "acme "+next {
		t.Fatalf("cycle invoices = %+v, want acme %s", sum.Invoices, next)
	}
	c.json(0, &sum, "cycle", "--json")
	if sum.Invoices.Invoices != 0 {
		t.Fatalf("second cycle run made %d invoices, want none", sum.Invoices.Invoices)
	}
	c.json(0, &list, "invoices", "acme", "--json")
	if len(list.Invoices) != 2 || list.Invoices[0].Period != next {
		t.Fatalf("invoices = %+v, want %s and %s", list.Invoices, next, period)
	}

	// The load generator's invoices mode, small: five orgs with three events
	// each in last month, invoiced through the worker.
	var load struct {
		Orgs     int     `json:"orgs"`
		Rate     float64 `json:"invoices_per_second"`
		Invoices struct {
			Invoices int `json:"invoices"`
		} `json:"invoices"`
	}
	c.json(0, &load, "load", "--mode", "invoices", "--orgs", "5", "--events-per-org", "3", "--json")
	if load.Orgs != 5 || load.Invoices.Invoices != 5 || load.Rate <= 0 {
		t.Fatalf("load = %+v, want 5 invoices", load)
	}

	c.ok("org", "set", "acme", "--auto-pay", "on", "--price", "1500.00")
	var org struct {
		AutoPay bool   `json:"auto_pay"`
		Price   *int64 `json:"price_minor"`
	}
	c.json(0, &org, "org", "show", "acme", "--json")
	if !org.AutoPay || org.Price == nil || *org.Price != 150000 {
		t.Fatalf("org show = %+v, want auto_pay and a price of 150000", org)
	}
	c.ok("org", "set", "acme", "--auto-pay", "off", "--price", "plan")
	var reset struct {
		AutoPay bool   `json:"auto_pay"`
		Price   *int64 `json:"price_minor"`
	}
	c.json(0, &reset, "org", "show", "acme", "--json")
	if reset.AutoPay || reset.Price != nil {
		t.Fatalf("org show = %+v, want auto-pay off and the plan's price", reset)
	}
}
