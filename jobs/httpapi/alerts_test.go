package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func testAlerts(t *testing.T, e *env) {
	org := e.org("a", "1000")
	other := e.org("b", "10")
	member, _ := e.token(org, ledger.RoleMember)
	admin, _ := e.token(org, ledger.RoleAdmin)
	otherAdmin, _ := e.token(other, ledger.RoleAdmin)
	base := "/v1/orgs/" + org

	// Members read; only admins change alerts and receivers, of their own org.
	for _, tc := range []struct {
		name, method, path, body string
		a                        auth
		want                     int
	}{
		{"member lists rules", "GET", base + "/alerts", "", bearer(member), http.StatusOK},
		{"member lists notifications", "GET", base + "/notifications", "", bearer(member), http.StatusOK},
		{"member may not add a rule", "POST", base + "/alerts", `{"kind":"below","amount":"5"}`, bearer(member), http.StatusForbidden},
		{"member may not list webhooks", "GET", base + "/webhooks", "", bearer(member), http.StatusForbidden},
		{"other org's admin", "POST", base + "/alerts", `{"kind":"below","amount":"5"}`, bearer(otherAdmin), http.StatusForbidden},
		{"no token", "GET", base + "/notifications", "", noAuth, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.do(tc.method, tc.path, tc.body, tc.a); got.status != tc.want {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, got.status, tc.want, got.body)
			}
		})
	}

	// Bad rules and receivers: 400 naming the field, nothing stored.
	for _, tc := range []struct{ name, path, body, field string }{
		{"percent over 100", "/alerts", `{"kind":"below_percent","percent":"101"}`, "percent"},
		{"negative amount", "/alerts", `{"kind":"below","amount":"-1"}`, "amount"},
		{"amount as a number", "/alerts", `{"kind":"below","amount":5}`, "amount"},
		{"unknown team", "/alerts", `{"kind":"usage_percent","percent":"50","team":"ghosts"}`, "team"},
		{"unknown kind", "/alerts", `{"kind":"sideways"}`, "kind"},
		{"unknown field", "/alerts", `{"kind":"depleted","colour":"red"}`, "colour"},
		{"not a URL", "/webhooks", `{"url":"not a url","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "url"},
		{"http when https is required", "/webhooks", `{"url":"http://hooks.example.com/x","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "url"},
		{"private address", "/webhooks", `{"url":"https://10.1.2.3/x","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, "url"},
		{"short secret", "/webhooks", `{"url":"https://hooks.example.com/x","secret":"short"}`, "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do("POST", base+tc.path, tc.body, bearer(admin))
			if got.status != http.StatusBadRequest || got.errorBody(t).Field != tc.field {
				t.Fatalf("= %d %s, want 400 naming %s", got.status, got.body, tc.field)
			}
		})
	}
	var rules struct {
		Rules []ledger.AlertRule `json:"rules"`
	}
	e.do("GET", base+"/alerts", "", bearer(admin)).decode(t, &rules)
	defaults := len(rules.Rules)
	if defaults != 6 {
		t.Fatalf("%d rules, want the catalog's 6 defaults", defaults)
	}

	// Add a rule that already holds: it fires at once; adding it again is 200.
	created := e.do("POST", base+"/alerts", `{"kind":"below","amount":"1000"}`, bearer(admin))
	if created.status != http.StatusCreated {
		t.Fatalf("add = %d %s", created.status, created.body)
	}
	var rule ledger.AlertRule
	created.decode(t, &rule)
	if again := e.do("POST", base+"/alerts", `{"kind":"below","amount":"1000"}`, bearer(admin)); again.status != http.StatusOK {
		t.Fatalf("add again = %d %s, want 200", again.status, again.body)
	}
	hook := e.do("POST", base+"/webhooks", `{"url":"https://hooks.example.com/creditd","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, bearer(admin))
	if hook.status != http.StatusCreated || strings.Contains(string(hook.body), "whsec_") {
		t.Fatalf("add webhook = %d %s, want 201 without the secret", hook.status, hook.body)
	}

	var list struct {
		Notifications []struct {
			ledger.Notification
			Title   string `json:"title"`
			Message string `json:"message"`
		} `json:"notifications"`
		NextBefore *int64 `json:"next_before"`
	}
	e.do("GET", base+"/notifications", "", bearer(member)).decode(t, &list)
	if len(list.Notifications) != 1 {
		t.Fatalf("%d notifications, want 1: %+v", len(list.Notifications), list)
	}
	n := list.Notifications[0]
	if n.Kind != ledger.AlertBelow || n.RuleID != rule.ID || *n.Threshold != credits.MustParse("1000") ||
		!strings.Contains(n.Title, org) || n.Message == "" {
		t.Fatalf("notification %+v", n)
	}
	// The next one goes to the webhook too.
	e.tx(func(tx pgx.Tx) error {
		_, err := e.l.RecordUsage(e.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e1", Amount: ptr(credits.MustParse("1000"))}})
		return err
	})
	e.do("GET", base+"/notifications?limit=1", "", bearer(member)).decode(t, &list)
	if len(list.Notifications) != 1 || list.Notifications[0].Kind != ledger.AlertDepleted || len(list.Notifications[0].Deliveries) != 1 {
		t.Fatalf("newest notification %+v, want depleted with a webhook delivery", list.Notifications)
	}
	if list.NextBefore == nil || *list.NextBefore != list.Notifications[0].ID {
		t.Fatalf("next_before = %v, want the id of the page's last notification", list.NextBefore)
	}
	older := fmt.Sprintf("%s/notifications?before=%d", base, *list.NextBefore)
	list.NextBefore = nil
	e.do("GET", older, "", bearer(member)).decode(t, &list)
	// The usage crossed 20%, 5% and zero at once; below those, the first.
	if n := len(list.Notifications); n != 3 || list.Notifications[n-1].RuleID != rule.ID || list.NextBefore != nil {
		t.Fatalf("older page %+v", list)
	}
	if got := e.do("GET", base+"/notifications?limit=0", "", bearer(member)); got.status != http.StatusBadRequest {
		t.Fatalf("limit=0 = %d", got.status)
	}

	if got := e.do("DELETE", fmt.Sprintf("%s/alerts/%d", base, rule.ID), "", bearer(admin)); got.status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", got.status, got.body)
	}
	if got := e.do("DELETE", fmt.Sprintf("%s/alerts/%d", base, rule.ID), "", bearer(admin)); got.status != http.StatusNotFound {
		t.Fatalf("delete again = %d %s, want 404", got.status, got.body)
	}
	e.do("GET", base+"/alerts", "", bearer(admin)).decode(t, &rules)
	if len(rules.Rules) != defaults {
		t.Fatalf("%d rules after delete, want %d", len(rules.Rules), defaults)
	}
}
