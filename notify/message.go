package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/creditd/creditd/ledger/credits"
)

// Alert kinds. Rule kinds come from a per-org or per-team alert rule; event
// kinds (KindRechargeFailed, KindInvoiceReady) are sent once per event.
const (
	KindBelow          = "below"
	KindBelowPercent   = "below_percent"
	KindUsagePercent   = "usage_percent"
	KindDepleted       = "depleted"
	KindRunway         = "runway"
	KindRechargeFailed = "recharge_failed"
	KindInvoiceReady   = "invoice_ready"
)

// Alert is one alert message as decided by the alert evaluator. It is a plain
// value so the outbox can store it and every delivery attempt renders the
// same text.
type Alert struct {
	ID         string            // stable message id: the webhook-id header and the email Message-ID local part
	OrgID      string            // org the alert is about
	Kind       string            // one of the Kind constants
	RuleID     int64             // 0 for event alerts (recharge_failed, invoice_ready)
	Team       string            // usage_percent of a team limit; "" = org
	Scope      string            // usage_percent: "org" (monthly cap), "team" or "user"; "" otherwise
	Subject    string            // the team or user a usage_percent alert is about ("" for org)
	Balance    credits.Credits   // available balance when the alert fired
	Debt       credits.Credits   // debt when the alert fired
	Threshold  *credits.Credits  // the level crossed (absolute credits), nil if n/a
	PercentBP  int               // basis points for *_percent kinds (2000 = 20%), 0 otherwise
	Limit      *credits.Credits  // usage_percent: the limit or cap
	Used       *credits.Credits  // usage_percent: used this cycle
	RunwayDays int               // runway: the rule's N days
	Details    map[string]string // event alerts: recharge_failed {code, decline_code, message}, invoice_ready {period, total, currency}
	CreatedAt  time.Time         // when the alert was decided; the webhook timestamp
}

// Rendered is an alert as text for people: Title is the email subject and
// webhook title, Text the body.
type Rendered struct{ Title, Text string }

// Scopes of a usage_percent alert.
const (
	scopeOrg  = "org"
	scopeTeam = "team"
	scopeUser = "user"
)

// Render turns a into a short message saying which org, what happened, the
// numbers that matter and what to do. linkBase is the dashboard's base URL
// ("https://app.example.com"); when it is "" the message has no link.
func Render(a Alert, linkBase string) Rendered {
	r, _ := render(a, linkBase)
	return r
}

// render returns the message and the link it points to ("" when linkBase is
// ""), so WebhookBody can carry the link as its own field.
func render(a Alert, linkBase string) (Rendered, string) {
	org := a.OrgID
	bal := amount(a.Balance)
	buy := "Buy credits or turn on auto-recharge"
	billing := orgLink(linkBase, org, "billing")

	switch a.Kind {
	case KindBelow:
		title := org + ": balance low"
		text := fmt.Sprintf("The credit balance of %s is %s", org, bal)
		if a.Threshold != nil {
			title = fmt.Sprintf("%s: balance at or below %s", org, amount(*a.Threshold))
			text += fmt.Sprintf(", at or below the alert level of %s", amount(*a.Threshold))
		}
		return Rendered{title, text + ". " + action(buy, billing)}, billing

	case KindBelowPercent:
		pct := percent(a.PercentBP) + "%"
		text := fmt.Sprintf("The credit balance of %s is %s, below %s of the monthly allocation", org, bal, pct)
		if a.Threshold != nil {
			text += " (" + amount(*a.Threshold) + ")"
		}
		title := fmt.Sprintf("%s: balance below %s of the monthly allocation", org, pct)
		return Rendered{title, text + ". " + action(buy, billing)}, billing

	case KindUsagePercent:
		return renderUsage(a, billing), billing

	case KindDepleted:
		if a.Debt > 0 {
			title := org + ": credits depleted, org paused"
			text := fmt.Sprintf("The credit balance of %s is depleted. The org is paused and owes %s. %s",
				org, amount(a.Debt), action(buy, billing))
			return Rendered{title, text}, billing
		}
		title := org + ": credits depleted"
		text := fmt.Sprintf("The credit balance of %s is depleted (%s). %s", org, bal, action(buy, billing))
		return Rendered{title, text}, billing

	case KindRunway:
		days := plural(a.RunwayDays, "day", "days")
		title := fmt.Sprintf("%s: credits run out within %s", org, days)
		text := fmt.Sprintf("At its recent burn rate, %s runs out of credits within %s (balance %s). %s",
			org, days, bal, action(buy, billing))
		return Rendered{title, text}, billing

	case KindRechargeFailed:
		text := "Auto-recharge for " + org + " failed"
		var codes []string
		for _, k := range []string{"code", "decline_code"} {
			if v := a.Details[k]; v != "" {
				codes = append(codes, v)
			}
		}
		if len(codes) > 0 {
			text += " (" + strings.Join(codes, ", ") + ")"
		}
		if m := strings.TrimRight(a.Details["message"], ". "); m != "" {
			text += ": " + m
		}
		text += fmt.Sprintf(". The credit balance is %s. %s", bal, action("Update the card", billing))
		return Rendered{org + ": auto-recharge failed", text}, billing

	case KindInvoiceReady:
		invoices := orgLink(linkBase, org, "invoices")
		title := org + ": invoice ready"
		text := "The invoice of " + org
		if p := a.Details["period"]; p != "" {
			title = fmt.Sprintf("%s: invoice for %s ready", org, p)
			text += " for " + p
		}
		text += " is ready"
		if t := a.Details["total"]; t != "" {
			text += ", total " + strings.TrimSpace(t+" "+a.Details["currency"])
		}
		return Rendered{title, text + ". " + action("Read the invoice", invoices)}, invoices
	}

	// An unknown kind still produces a readable message rather than nothing:
	// the outbox may hold kinds added by a newer creditd during a rollout.
	title := fmt.Sprintf("%s: %s alert", org, a.Kind)
	text := fmt.Sprintf("Alert %s for %s. The credit balance is %s. %s", a.Kind, org, bal, action("Review billing", billing))
	return Rendered{title, text}, billing
}

// renderUsage renders a usage_percent alert for an org cap, a team limit or a
// user limit.
func renderUsage(a Alert, billing string) Rendered {
	org := a.OrgID
	pct := percent(a.PercentBP) + "%"
	name := a.Subject
	if name == "" && a.Scope == scopeTeam {
		name = a.Team
	}

	var title, who, limit string
	switch a.Scope {
	case scopeTeam, scopeUser:
		title = fmt.Sprintf("%s: %s %s used %s of its limit", org, a.Scope, name, pct)
		who = fmt.Sprintf("%s %s of %s", titleCase(a.Scope), name, org)
		limit = "its " + a.Scope + " limit"
	default:
		title = fmt.Sprintf("%s: %s of the monthly cap used", org, pct)
		who = org
		limit = "its monthly cap"
	}
	if a.Limit != nil {
		limit += " of " + amount(*a.Limit)
	}

	text := fmt.Sprintf("%s has used %s of %s this cycle", who, pct, limit)
	if a.Used != nil {
		text = fmt.Sprintf("%s has used %s this cycle, %s of %s", who, amount(*a.Used), pct, limit)
	}
	return Rendered{title, text + ". " + action("Review usage and limits", billing)}
}

// percent formats basis points as a decimal percent without trailing zeros:
// 2000 → "20", 250 → "2.5", 1 → "0.01". Integer math only, so the text
// matches the rule exactly.
func percent(bp int) string {
	v := int64(bp)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	whole, frac := v/100, v%100
	if frac == 0 {
		return sign + strconv.FormatInt(whole, 10)
	}
	return sign + strconv.FormatInt(whole, 10) + "." + strings.TrimRight(fmt.Sprintf("%02d", frac), "0")
}

func amount(c credits.Credits) string { return c.String() + " credits" }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// titleCase capitalises a non-empty ASCII word ("team" → "Team").
func titleCase(s string) string {
	return strings.ToUpper(s[:1]) + s[1:]
}

// action ends a message with what to do and, when there is one, where.
func action(what, link string) string {
	if link == "" {
		return what + "."
	}
	return what + ": " + link
}

// orgLink builds linkBase/orgs/<org>/<page>, escaping the org id (which may
// hold characters like ':' that mean something in a path). It returns "" when
// linkBase is "" so messages can omit the link.
func orgLink(linkBase, org, page string) string {
	if linkBase == "" {
		return ""
	}
	return strings.TrimRight(linkBase, "/") + "/orgs/" + url.PathEscape(org) + "/" + page
}

// webhookPayload is the Standard Webhooks payload shape: a type, a timestamp
// and the event data.
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      webhookData `json:"data"`
}

// webhookData carries amounts as decimal credit strings so receivers never
// parse floats.
type webhookData struct {
	MessageID  string            `json:"message_id"`
	OrgID      string            `json:"org_id"`
	Kind       string            `json:"kind"`
	RuleID     int64             `json:"rule_id,omitempty"`
	Team       string            `json:"team,omitempty"`
	Scope      string            `json:"scope,omitempty"`
	Subject    string            `json:"subject,omitempty"`
	Balance    string            `json:"balance"`
	Debt       string            `json:"debt"`
	Threshold  string            `json:"threshold,omitempty"`
	Percent    string            `json:"percent,omitempty"`
	Limit      string            `json:"limit,omitempty"`
	Used       string            `json:"used,omitempty"`
	RunwayDays int               `json:"runway_days,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
	Title      string            `json:"title"`
	Message    string            `json:"message"`
	Link       string            `json:"link,omitempty"`
}

// WebhookBody returns the JSON body of the webhook for a: type "alert.<kind>",
// the CreatedAt timestamp in UTC, and the alert's fields with amounts as
// decimal credit strings and the rendered title, message and link. It refuses
// an alert without id, org, kind or creation time, since receivers
// deduplicate and order by them.
func WebhookBody(a Alert, linkBase string) ([]byte, error) {
	var missing []error
	if a.ID == "" {
		missing = append(missing, errors.New("alert: id is empty"))
	}
	if a.OrgID == "" {
		missing = append(missing, errors.New("alert: org id is empty"))
	}
	if a.Kind == "" {
		missing = append(missing, errors.New("alert: kind is empty"))
	}
	if a.CreatedAt.IsZero() {
		missing = append(missing, errors.New("alert: created at is zero"))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}

	r, link := render(a, linkBase)
	d := webhookData{
		MessageID:  a.ID,
		OrgID:      a.OrgID,
		Kind:       a.Kind,
		RuleID:     a.RuleID,
		Team:       a.Team,
		Scope:      a.Scope,
		Subject:    a.Subject,
		Balance:    a.Balance.String(),
		Debt:       a.Debt.String(),
		Threshold:  optAmount(a.Threshold),
		Limit:      optAmount(a.Limit),
		Used:       optAmount(a.Used),
		RunwayDays: a.RunwayDays,
		Details:    a.Details,
		Title:      r.Title,
		Message:    r.Text,
		Link:       link,
	}
	if a.PercentBP != 0 {
		d.Percent = percent(a.PercentBP)
	}
	if len(d.Details) == 0 {
		d.Details = nil
	}
	b, err := json.Marshal(webhookPayload{
		Type:      "alert." + a.Kind,
		Timestamp: a.CreatedAt.UTC().Format(time.RFC3339Nano),
		Data:      d,
	})
	if err != nil {
		return nil, fmt.Errorf("alert: encode webhook body: %w", err)
	}
	return b, nil
}

func optAmount(c *credits.Credits) string {
	if c == nil {
		return ""
	}
	return c.String()
}
