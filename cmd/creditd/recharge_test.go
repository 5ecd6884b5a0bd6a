package main

import (
	"strings"
	"testing"
)

// testRecharge sets a card and auto-recharge with the CLI and refuses what
// is wrong, naming the field and writing nothing.
func testRecharge(t *testing.T, c *cli) {
	c.ok("org", "create", "acme", "--plan", "standard")
	for _, tc := range []struct {
		name  string
		args  []string
		field string
	}{
		{"recharge without a card", []string{"recharge", "set", "acme", "--threshold", "10", "--amount", "50"}, "payment_method"},
		{"bad customer", []string{"payment-method", "set", "acme", "--customer", "acme", "--payment-method", "pm_1"}, "customer"},
		{"bad payment method", []string{"payment-method", "set", "acme", "--customer", "cus_1", "--payment-method", "4242424242424242"}, "payment_method"},
		{"bad last4", []string{"payment-method", "set", "acme", "--customer", "cus_1", "--payment-method", "pm_1", "--last4", "42"}, "last4"},
		{"threshold with 4 decimals", []string{"recharge", "set", "acme", "--threshold", "1.0001", "--amount", "50"}, "threshold"},
		{"target at the threshold", []string{"recharge", "set", "acme", "--threshold", "10", "--target", "10"}, "target"},
		{"negative amount", []string{"recharge", "set", "acme", "--threshold", "10", "--amount", "-5"}, "amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.rowCounts()
			r := c.run(tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, "creditd: "+tc.field+": ") {
				t.Fatalf("exit %d, stderr %q; want 2 naming %s", r.code, r.stderr, tc.field)
			}
			if after := c.rowCounts(); after != before {
				t.Fatalf("rows changed from %s to %s", before, after)
			}
		})
	}
	if r := c.run("recharge", "set", "acme", "--threshold", "10", "--amount", "5", "--target", "50"); r.code != 2 {
		t.Fatalf("amount and target: exit %d", r.code)
	}
	c.ok("payment-method", "set", "acme", "--customer", "cus_A1", "--payment-method", "pm_B2", "--brand", "visa", "--last4", "4242")
	var r struct {
		Enabled    bool   `json:"enabled"`
		Threshold  string `json:"threshold"`
		Target     string `json:"target"`
		MonthlyCap struct {
			Minor    int64  `json:"minor"`
			Currency string `json:"currency"`
		} `json:"monthly_cap"`
	}
	c.json(0, &r, "recharge", "set", "acme", "--threshold", "100", "--target", "1000", "--monthly-cap", "250.00", "--json")
	if !r.Enabled || r.Threshold != "100.000" || r.Target != "1000.000" || r.MonthlyCap.Minor != 25000 || r.MonthlyCap.Currency != "USD" {
		t.Fatalf("recharge set = %+v", r)
	}
	if out := c.ok("recharge", "show", "acme"); !strings.Contains(out, "at or below 100.000") {
		t.Fatalf("recharge show = %q", out)
	}
	c.ok("recharge", "set", "acme", "--off")
	if out := c.ok("recharge", "show", "acme"); !strings.Contains(out, "off") {
		t.Fatalf("recharge show after --off = %q", out)
	}
}
