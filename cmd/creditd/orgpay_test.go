package main

import (
	"strings"
	"testing"
)

// testOrgShowPayments shows the org's payment state with `org show`: the
// saved card, auto-recharge, its pause and last error, next to the keys
// `org show --json` printed before.
func testOrgShowPayments(t *testing.T, c *cli) {
	c.ok("org", "create", "acme", "--plan", "standard")
	type view struct {
		Org           string                     `json:"org"`
		Plan          string                     `json:"plan"`
		Balance       struct{ Available string } `json:"balance"`
		PaymentMethod *struct {
			CustomerID      string `json:"customer_id"`
			PaymentMethodID string `json:"payment_method_id"`
			Brand           string `json:"brand"`
			Last4           string `json:"last4"`
		} `json:"payment_method"`
		Recharge struct {
			Enabled   bool   `json:"enabled"`
			Threshold string `json:"threshold"`
			Amount    string `json:"amount"`
			Paused    bool   `json:"paused"`
			LastError *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"last_error"`
		} `json:"recharge"`
		LastRecharge *struct{} `json:"last_recharge"`
	}
	var v view
	c.json(0, &v, "org", "show", "acme", "--json")
	if v.Org != "acme" || v.Plan != "standard" || v.Balance.Available != "0.000" || v.PaymentMethod != nil || v.Recharge.Enabled ||
		v.LastRecharge != nil {
		t.Fatalf("org show of a new org = %+v", v)
	}
	if out := c.ok("org", "show", "acme"); !strings.Contains(out, "card") || !strings.Contains(out, "none") ||
		!strings.Contains(out, "auto-recharge") {
		t.Fatalf("org show of a new org:\n%s", out)
	}

	c.ok("payment-method", "set", "acme", "--customer", "cus_A1", "--payment-method", "pm_B2", "--brand", "visa", "--last4", "4242")
	c.ok("recharge", "set", "acme", "--threshold", "10", "--amount", "50")
	v = view{}
	c.json(0, &v, "org", "show", "acme", "--json")
	if pm := v.PaymentMethod; pm == nil || pm.CustomerID != "cus_A1" || pm.PaymentMethodID != "pm_B2" || pm.Brand != "visa" || pm.Last4 != "4242" ||
		!v.Recharge.Enabled || v.Recharge.Threshold != "10.000" || v.Recharge.Amount != "50.000" || v.Recharge.Paused {
		t.Fatalf("org show with a card and auto-recharge = %+v", v)
	}

	// What a declined charge leaves (written as FailRecharge writes it).
	c.exec(`UPDATE recharge_settings SET paused = true,
		last_error = '{"attempt_id":"rch_000000000000000000000001","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","at":"2026-03-01T00:00:00Z"}'
		WHERE org_id = 'acme'`)
	v = view{}
	c.json(0, &v, "org", "show", "acme", "--json")
	if !v.Recharge.Paused || v.Recharge.LastError == nil || v.Recharge.LastError.Code != "card_declined" {
		t.Fatalf("org show after a decline = %+v", v)
	}
	out := c.ok("org", "show", "acme")
	for _, want := range []string{"visa 4242 (pm_B2, customer cus_A1)", "at or below 10.000, buy 50.000", "recharge paused",
		"card_declined/insufficient_funds: Your card has insufficient funds."} {
		if !strings.Contains(out, want) {
			t.Fatalf("org show does not say %q:\n%s", want, out)
		}
	}
}
