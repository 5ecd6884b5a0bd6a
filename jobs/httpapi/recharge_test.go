package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/creditd/creditd/ledger"
)

func testRecharge(t *testing.T, e *env) {
	org := e.org("a", "1000")
	member, _ := e.token(org, ledger.RoleMember)
	admin, _ := e.token(org, ledger.RoleAdmin)
	base := "/v1/orgs/" + org
	card := `{"customer_id":"cus_A1","payment_method_id":"pm_B2","brand":"visa","last4":"4242"}`
	on := `{"enabled":true,"threshold":"100","target":"1000","monthly_cap":"250.00"}`
	for _, tc := range []struct {
		name, method, path, body string
		a                        auth
		want                     int
		field                    string
	}{
		{"member may not save a card", "PUT", base + "/payment-method", card, bearer(member), http.StatusForbidden, ""},
		{"member may not set recharge", "PUT", base + "/recharge", on, bearer(member), http.StatusForbidden, ""},
		{"no card yet", "PUT", base + "/recharge", on, bearer(admin), http.StatusBadRequest, "payment_method"},
		{"bad customer id", "PUT", base + "/payment-method", `{"customer_id":"x","payment_method_id":"pm_1"}`, bearer(admin), http.StatusBadRequest, "customer"},
		{"card number instead of an id", "PUT", base + "/payment-method", `{"customer_id":"cus_1","payment_method_id":"4242424242424242"}`, bearer(admin), http.StatusBadRequest, "payment_method"},
		{"enabled missing", "PUT", base + "/recharge", `{"threshold":"1"}`, bearer(admin), http.StatusBadRequest, "enabled"},
		{"member reads", "GET", base + "/recharge", "", bearer(member), http.StatusOK, ""},
		{"admin saves the card", "PUT", base + "/payment-method", card, bearer(admin), http.StatusOK, ""},
		{"target not above threshold", "PUT", base + "/recharge", `{"enabled":true,"threshold":"100","target":"100"}`, bearer(admin), http.StatusBadRequest, "target"},
		{"cap with 3 decimals", "PUT", base + "/recharge", `{"enabled":true,"threshold":"100","amount":"5","monthly_cap":"1.005"}`, bearer(admin), http.StatusBadRequest, "monthly_cap"},
		{"admin turns it on", "PUT", base + "/recharge", on, bearer(admin), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do(tc.method, tc.path, tc.body, tc.a)
			if got.status != tc.want || (tc.field != "" && got.errorBody(t).Field != tc.field) {
				t.Fatalf("%s %s = %d %s, want %d naming %q", tc.method, tc.path, got.status, got.body, tc.want, tc.field)
			}
		})
	}
	var rs ledger.RechargeSettings
	e.do("GET", base+"/recharge", "", bearer(member)).decode(t, &rs)
	if !rs.Enabled || rs.Threshold.String() != "100.000" || rs.Target == nil || rs.MonthlyCap == nil || rs.MonthlyCap.Minor != 25000 {
		t.Fatalf("recharge %+v", rs)
	}
	if got := e.do("PUT", base+"/recharge", `{"enabled":false}`, bearer(admin)); got.status != http.StatusOK {
		t.Fatalf("off = %d %s", got.status, got.body)
	}
}
