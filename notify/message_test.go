package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/creditd/creditd/ledger/credits"
)

const testLinkBase = "https://app.example.com"

func cr(s string) *credits.Credits {
	c := credits.MustParse(s)
	return &c
}

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		alert     Alert
		linkBase  string
		wantTitle string
		wantText  string
	}{
		{
			name:      "Below",
			alert:     Alert{OrgID: "acme", Kind: KindBelow, Balance: credits.MustParse("80"), Threshold: cr("100")},
			linkBase:  testLinkBase,
			wantTitle: "acme: balance at or below 100.000 credits",
			wantText:  "The credit balance of acme is 80.000 credits, at or below the alert level of 100.000 credits. Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "BelowWithoutThreshold",
			alert:     Alert{OrgID: "acme", Kind: KindBelow, Balance: credits.MustParse("80")},
			wantTitle: "acme: balance low",
			wantText:  "The credit balance of acme is 80.000 credits. Buy credits or turn on auto-recharge.",
		},
		{
			name:      "BelowPercent",
			alert:     Alert{OrgID: "acme", Kind: KindBelowPercent, Balance: credits.MustParse("18"), Threshold: cr("20"), PercentBP: 2000},
			linkBase:  testLinkBase,
			wantTitle: "acme: balance below 20% of the monthly allocation",
			wantText:  "The credit balance of acme is 18.000 credits, below 20% of the monthly allocation (20.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "BelowPercentFractionNoLink",
			alert:     Alert{OrgID: "acme", Kind: KindBelowPercent, Balance: credits.MustParse("2.4"), Threshold: cr("2.5"), PercentBP: 250},
			wantTitle: "acme: balance below 2.5% of the monthly allocation",
			wantText:  "The credit balance of acme is 2.400 credits, below 2.5% of the monthly allocation (2.500 credits). Buy credits or turn on auto-recharge.",
		},
		{
			name: "UsagePercentOrgCap",
			alert: Alert{OrgID: "acme", Kind: KindUsagePercent, Scope: "org", PercentBP: 9000,
				Used: cr("900"), Limit: cr("1000"), Balance: credits.MustParse("100")},
			linkBase:  testLinkBase,
			wantTitle: "acme: 90% of the monthly cap used",
			wantText:  "acme has used 900.000 credits this cycle, 90% of its monthly cap of 1000.000 credits. Review usage and limits: https://app.example.com/orgs/acme/billing",
		},
		{
			name: "UsagePercentTeam",
			alert: Alert{OrgID: "acme", Kind: KindUsagePercent, Scope: "team", Team: "research", Subject: "research",
				PercentBP: 7500, Used: cr("750"), Limit: cr("1000")},
			linkBase:  testLinkBase,
			wantTitle: "acme: team research used 75% of its limit",
			wantText:  "Team research of acme has used 750.000 credits this cycle, 75% of its team limit of 1000.000 credits. Review usage and limits: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "UsagePercentTeamFromTeamField",
			alert:     Alert{OrgID: "acme", Kind: KindUsagePercent, Scope: "team", Team: "ops", PercentBP: 5000},
			wantTitle: "acme: team ops used 50% of its limit",
			wantText:  "Team ops of acme has used 50% of its team limit this cycle. Review usage and limits.",
		},
		{
			name: "UsagePercentUser",
			alert: Alert{OrgID: "acme", Kind: KindUsagePercent, Scope: "user", Team: "research", Subject: "bob",
				PercentBP: 1250, Used: cr("12.5"), Limit: cr("100")},
			wantTitle: "acme: user bob used 12.5% of its limit",
			wantText:  "User bob of acme has used 12.500 credits this cycle, 12.5% of its user limit of 100.000 credits. Review usage and limits.",
		},
		{
			name:      "Depleted",
			alert:     Alert{OrgID: "acme", Kind: KindDepleted, RuleID: 3},
			linkBase:  testLinkBase,
			wantTitle: "acme: credits depleted",
			wantText:  "The credit balance of acme is depleted (0.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "DepletedWithDebt",
			alert:     Alert{OrgID: "acme", Kind: KindDepleted, Debt: credits.MustParse("12.5")},
			linkBase:  testLinkBase,
			wantTitle: "acme: credits depleted, org paused",
			wantText:  "The credit balance of acme is depleted. The org is paused and owes 12.500 credits. Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "Runway",
			alert:     Alert{OrgID: "acme", Kind: KindRunway, Balance: credits.MustParse("120"), RunwayDays: 7},
			linkBase:  testLinkBase,
			wantTitle: "acme: credits run out within 7 days",
			wantText:  "At its recent burn rate, acme runs out of credits within 7 days (balance 120.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "RunwayOneDay",
			alert:     Alert{OrgID: "acme", Kind: KindRunway, Balance: credits.MustParse("3"), RunwayDays: 1},
			wantTitle: "acme: credits run out within 1 day",
			wantText:  "At its recent burn rate, acme runs out of credits within 1 day (balance 3.000 credits). Buy credits or turn on auto-recharge.",
		},
		{
			name: "RechargeFailed",
			alert: Alert{OrgID: "acme", Kind: KindRechargeFailed, Balance: credits.MustParse("5"), Details: map[string]string{
				"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
			}},
			linkBase:  testLinkBase,
			wantTitle: "acme: auto-recharge failed",
			wantText:  "Auto-recharge for acme failed (card_declined, insufficient_funds): Your card has insufficient funds. The credit balance is 5.000 credits. Update the card: https://app.example.com/orgs/acme/billing",
		},
		{
			name:      "RechargeFailedNoDetails",
			alert:     Alert{OrgID: "acme", Kind: KindRechargeFailed, Balance: credits.MustParse("5")},
			wantTitle: "acme: auto-recharge failed",
			wantText:  "Auto-recharge for acme failed. The credit balance is 5.000 credits. Update the card.",
		},
		{
			name: "InvoiceReady",
			alert: Alert{OrgID: "acme", Kind: KindInvoiceReady, Details: map[string]string{
				"period": "2026-05", "total": "120.00", "currency": "USD",
			}},
			linkBase:  testLinkBase,
			wantTitle: "acme: invoice for 2026-05 ready",
			wantText:  "The invoice of acme for 2026-05 is ready, total 120.00 USD. Read the invoice: https://app.example.com/orgs/acme/invoices",
		},
		{
			name:      "InvoiceReadyNoDetails",
			alert:     Alert{OrgID: "acme", Kind: KindInvoiceReady},
			wantTitle: "acme: invoice ready",
			wantText:  "The invoice of acme is ready. Read the invoice.",
		},
		{
			name:      "OrgIDEscapedInLink",
			alert:     Alert{OrgID: "a/b c?d", Kind: KindDepleted},
			linkBase:  testLinkBase + "/",
			wantTitle: "a/b c?d: credits depleted",
			wantText:  "The credit balance of a/b c?d is depleted (0.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/a%2Fb%20c%3Fd/billing",
		},
		{
			name:      "OrgIDWithPunctuation",
			alert:     Alert{OrgID: "eu:acme.prod_1-x", Kind: KindDepleted},
			linkBase:  testLinkBase,
			wantTitle: "eu:acme.prod_1-x: credits depleted",
			wantText:  "The credit balance of eu:acme.prod_1-x is depleted (0.000 credits). Buy credits or turn on auto-recharge: https://app.example.com/orgs/eu:acme.prod_1-x/billing",
		},
		{
			name:      "UnknownKind",
			alert:     Alert{OrgID: "acme", Kind: "future_kind", Balance: credits.MustParse("1")},
			wantTitle: "acme: future_kind alert",
			wantText:  "Alert future_kind for acme. The credit balance is 1.000 credits. Review billing.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Render(tt.alert, tt.linkBase)
			if got.Title != tt.wantTitle {
				t.Errorf("Title:\n got %q\nwant %q", got.Title, tt.wantTitle)
			}
			if got.Text != tt.wantText {
				t.Errorf("Text:\n got %q\nwant %q", got.Text, tt.wantText)
			}
			if tt.linkBase == "" && strings.Contains(got.Text, "http") {
				t.Errorf("Text has a link although linkBase is empty: %q", got.Text)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bp   int
		want string
	}{
		{0, "0"},
		{1, "0.01"},
		{10, "0.1"},
		{250, "2.5"},
		{2000, "20"},
		{2525, "25.25"},
		{10000, "100"},
		{12345, "123.45"},
		{-250, "-2.5"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := percent(tt.bp); got != tt.want {
				t.Errorf("percent(%d) = %q, want %q", tt.bp, got, tt.want)
			}
		})
	}
}

// decodeJSON decodes b into a generic map so tests compare values, not
// field order.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, b)
	}
	return m
}

func TestWebhookBody(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name     string
		alert    Alert
		linkBase string
		wantType string
		wantData map[string]any
	}{
		{
			name: "UsagePercentAllFields",
			alert: Alert{ID: "msg_1", OrgID: "acme", Kind: KindUsagePercent, RuleID: 42, Team: "research",
				Scope: "user", Subject: "bob", Balance: credits.MustParse("100"), Debt: 0,
				Threshold: cr("25"), PercentBP: 250, Limit: cr("1000"), Used: cr("25"), CreatedAt: created},
			linkBase: testLinkBase,
			wantType: "alert.usage_percent",
			wantData: map[string]any{
				"message_id": "msg_1", "org_id": "acme", "kind": "usage_percent", "rule_id": float64(42),
				"team": "research", "scope": "user", "subject": "bob", "balance": "100.000", "debt": "0.000",
				"threshold": "25.000", "percent": "2.5", "limit": "1000.000", "used": "25.000",
				"title":   "acme: user bob used 2.5% of its limit",
				"message": "User bob of acme has used 25.000 credits this cycle, 2.5% of its user limit of 1000.000 credits. Review usage and limits: https://app.example.com/orgs/acme/billing",
				"link":    "https://app.example.com/orgs/acme/billing",
			},
		},
		{
			name: "RunwayOmitsEmptyFields",
			alert: Alert{ID: "msg_2", OrgID: "acme", Kind: KindRunway, RuleID: 7, Balance: credits.MustParse("12.345"),
				RunwayDays: 3, Details: map[string]string{}, CreatedAt: created},
			wantType: "alert.runway",
			wantData: map[string]any{
				"message_id": "msg_2", "org_id": "acme", "kind": "runway", "rule_id": float64(7),
				"balance": "12.345", "debt": "0.000", "runway_days": float64(3),
				"title":   "acme: credits run out within 3 days",
				"message": "At its recent burn rate, acme runs out of credits within 3 days (balance 12.345 credits). Buy credits or turn on auto-recharge.",
			},
		},
		{
			name: "InvoiceReadyEventWithoutRule",
			alert: Alert{ID: "msg_3", OrgID: "eu:acme", Kind: KindInvoiceReady, Debt: credits.MustParse("1.5"),
				Details: map[string]string{"period": "2026-04", "total": "99.00", "currency": "EUR"}, CreatedAt: created},
			linkBase: testLinkBase,
			wantType: "alert.invoice_ready",
			wantData: map[string]any{
				"message_id": "msg_3", "org_id": "eu:acme", "kind": "invoice_ready",
				"balance": "0.000", "debt": "1.500",
				"details": map[string]any{"period": "2026-04", "total": "99.00", "currency": "EUR"},
				"title":   "eu:acme: invoice for 2026-04 ready",
				"message": "The invoice of eu:acme for 2026-04 is ready, total 99.00 EUR. Read the invoice: https://app.example.com/orgs/eu:acme/invoices",
				"link":    "https://app.example.com/orgs/eu:acme/invoices",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := WebhookBody(tt.alert, tt.linkBase)
			if err != nil {
				t.Fatalf("WebhookBody: %v", err)
			}
			got := decodeJSON(t, b)
			if got["type"] != tt.wantType {
				t.Errorf("type = %v, want %q", got["type"], tt.wantType)
			}
			if want := "2026-05-01T10:00:00.123456789Z"; got["timestamp"] != want {
				t.Errorf("timestamp = %v, want %q", got["timestamp"], want)
			}
			if len(got) != 3 {
				t.Errorf("payload has keys %v, want type, timestamp, data", keys(got))
			}
			data, ok := got["data"].(map[string]any)
			if !ok {
				t.Fatalf("data is %T, want object", got["data"])
			}
			for k, want := range tt.wantData {
				if gotV, ok := data[k]; !ok {
					t.Errorf("data.%s missing", k)
				} else if !jsonEqual(t, gotV, want) {
					t.Errorf("data.%s = %v, want %v", k, gotV, want)
				}
			}
			for k := range data {
				if _, ok := tt.wantData[k]; !ok {
					t.Errorf("unexpected data.%s = %v", k, data[k])
				}
			}
		})
	}
}

func TestWebhookBody_Invalid(t *testing.T) {
	t.Parallel()
	valid := Alert{ID: "msg_1", OrgID: "acme", Kind: KindDepleted, CreatedAt: time.Unix(1, 0)}
	tests := []struct {
		name    string
		mutate  func(*Alert)
		wantErr string
	}{
		{"NoID", func(a *Alert) { a.ID = "" }, "alert: id is empty"},
		{"NoOrg", func(a *Alert) { a.OrgID = "" }, "alert: org id is empty"},
		{"NoKind", func(a *Alert) { a.Kind = "" }, "alert: kind is empty"},
		{"NoCreatedAt", func(a *Alert) { a.CreatedAt = time.Time{} }, "alert: created at is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := valid
			tt.mutate(&a)
			_, err := WebhookBody(a, "")
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
