package ledger

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// AlertKind is what an alert rule watches, or which event an event alert
// reports.
type AlertKind string

// Rule kinds, checked whenever a write may cross them (see evaluateAlerts),
// and event kinds, raised by the code that sees the event (RaiseAlert).
const (
	// AlertBelow: the available balance is at or below an amount.
	AlertBelow AlertKind = "below"
	// AlertBelowPercent: the available balance is below a percent of the
	// org's monthly allocation. Inert while the allocation is zero.
	AlertBelowPercent AlertKind = "below_percent"
	// AlertUsagePercent: usage this cycle reached a percent of a limit: of
	// the org's monthly cap and every team and user limit, or, for a rule
	// with a team, of that team's limit.
	AlertUsagePercent AlertKind = "usage_percent"
	// AlertDepleted: the available balance is at or below zero; in debt,
	// the org is paused.
	AlertDepleted AlertKind = "depleted"
	// AlertRunway: at the org's spend over the last 7 days, its credits
	// run out within a number of days. Checked by the alert sweep.
	AlertRunway AlertKind = "runway"
	// AlertRechargeFailed: an automatic recharge was declined or failed.
	AlertRechargeFailed AlertKind = "recharge_failed"
	// AlertInvoiceReady: a monthly invoice was made.
	AlertInvoiceReady AlertKind = "invoice_ready"
)

// RunwayWindow is the span whose spend the runway rule averages.
const RunwayWindow = 7 * 24 * time.Hour

// MaxAlertRules bounds the rules of one org: every evaluation reads them all.
const MaxAlertRules = 100

// MaxWebhooks bounds the webhook receivers of one org.
const MaxWebhooks = 10

// AlertRule is one rule of an org.
type AlertRule struct {
	ID        int64            `json:"id"`
	OrgID     string           `json:"org"`
	Kind      AlertKind        `json:"kind"`
	Team      string           `json:"team,omitempty"`
	Amount    *credits.Credits `json:"amount,omitempty"`
	Percent   *credits.Percent `json:"percent,omitempty"`
	Days      int              `json:"days,omitempty"`
	Source    string           `json:"source"` // "default" (from the catalog at org creation) or "custom"
	CreatedAt time.Time        `json:"created_at"`
	// Fired lists whom the rule has fired for and not re-armed since.
	Fired []AlertFiring `json:"fired"`
}

// AlertFiring is one subject a rule has fired for.
type AlertFiring struct {
	Scope   string    `json:"scope"`             // org, team or user
	Subject string    `json:"subject,omitempty"` // the team or user; "" for the org
	At      time.Time `json:"at"`
	Cycle   time.Time `json:"cycle"` // the end of the org's cycle it fired in (its next boundary then)
	Armed   bool      `json:"armed"` // it fired in an earlier cycle, so it is armed again
}

// NewAlertRule is a request for a rule. Exactly the field of the kind is set:
// Amount for below, Percent for below_percent and usage_percent, Days for
// runway; Team only for usage_percent.
type NewAlertRule struct {
	OrgID   string
	Kind    AlertKind
	Team    string
	Amount  *credits.Credits
	Percent *credits.Percent
	Days    int
}

// Validate checks the rule without touching the database.
func (r NewAlertRule) Validate() error {
	if err := validOrgID(r.OrgID); err != nil {
		return err
	}
	if err := validLabel("team", r.Team); err != nil {
		return err
	}
	switch r.Kind {
	case AlertBelow:
		if r.Amount == nil {
			return invalid("amount", "required for a below rule")
		}
		if err := validAmount("amount", int64(*r.Amount)); err != nil {
			return err
		}
	case AlertBelowPercent, AlertUsagePercent:
		if r.Percent == nil {
			return invalid("percent", "required for a %s rule", r.Kind)
		}
		if *r.Percent <= 0 || *r.Percent > 100_00 {
			return invalid("percent", "must be more than 0 and at most 100")
		}
	case AlertRunway:
		if r.Days < 1 || r.Days > 366 {
			return invalid("days", "must be from 1 to 366")
		}
	case AlertDepleted:
	case "":
		return invalid("kind", "required")
	default:
		return invalid("kind", "must be below, below_percent, usage_percent, depleted or runway, not %q", r.Kind)
	}
	if r.Kind != AlertBelow && r.Amount != nil {
		return invalid("amount", "only a below rule has an amount")
	}
	if r.Kind != AlertBelowPercent && r.Kind != AlertUsagePercent && r.Percent != nil {
		return invalid("percent", "only a percent rule has a percent")
	}
	if r.Kind != AlertRunway && r.Days != 0 {
		return invalid("days", "only a runway rule has days")
	}
	if r.Team != "" && r.Kind != AlertUsagePercent {
		return invalid("team", "only a usage-percent rule can be a team's: the balance belongs to the org")
	}
	return nil
}

const insertAlertRuleSQL = `
INSERT INTO alert_rules (org_id, kind, team, amount, percent_bp, days, source, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::int4[], $7::text[], $8::timestamptz[])
ON CONFLICT DO NOTHING`

const countAlertRulesSQL = `SELECT count(*) FROM alert_rules WHERE org_id = $1`

const teamLimitExistsSQL = `SELECT EXISTS (SELECT 1 FROM limits WHERE org_id = $1 AND scope = 'team' AND subject = $2)`

// AddAlertRule adds a rule to an org and evaluates the org's rules at once,
// so a rule whose condition already holds fires now. Adding a rule the org
// has already returns that rule (created is false). A team rule needs the
// team to have a monthly limit.
func (l *Ledger) AddAlertRule(ctx context.Context, tx pgx.Tx, r NewAlertRule) (rule AlertRule, created bool, err error) {
	if err := r.Validate(); err != nil {
		return AlertRule{}, false, err
	}
	states, err := l.load(ctx, tx, []string{r.OrgID}, loadNeeds{allLimits: true})
	if err != nil {
		return AlertRule{}, false, err
	}
	if r.Team != "" {
		var ok bool
		if err := tx.QueryRow(ctx, teamLimitExistsSQL, r.OrgID, r.Team).Scan(&ok); err != nil {
			return AlertRule{}, false, mapError(fmt.Errorf("add alert rule: %w", err))
		}
		if !ok {
			return AlertRule{}, false, invalid("team", "org %s has no team %q: a team rule watches the team's monthly limit, so set one first", r.OrgID, r.Team)
		}
	}
	var n int
	if err := tx.QueryRow(ctx, countAlertRulesSQL, r.OrgID).Scan(&n); err != nil {
		return AlertRule{}, false, mapError(fmt.Errorf("add alert rule: %w", err))
	}
	var rows alertRuleColumns
	rows.add(r, "custom", states[r.OrgID].at)
	tag, err := tx.Exec(ctx, insertAlertRuleSQL, rows.args()...)
	if err != nil {
		return AlertRule{}, false, mapError(fmt.Errorf("add alert rule: %w", err))
	}
	created = tag.RowsAffected() == 1
	if created && n >= MaxAlertRules {
		return AlertRule{}, false, invalid("rule", "org %s has %d rules already, the most an org can have", r.OrgID, n)
	}
	states[r.OrgID].alertsForce = true
	if err := l.persist(ctx, tx, states); err != nil {
		return AlertRule{}, false, err
	}
	rules, err := l.AlertRules(ctx, tx, r.OrgID)
	if err != nil {
		return AlertRule{}, false, err
	}
	for _, got := range rules {
		if got.Kind == r.Kind && got.Team == r.Team && eqPtr(got.Amount, r.Amount) && eqPtr(got.Percent, r.Percent) && got.Days == r.Days {
			return got, created, nil
		}
	}
	return AlertRule{}, false, fmt.Errorf("add alert rule: the rule of org %s is gone after insert", r.OrgID)
}

const deleteAlertRuleSQL = `DELETE FROM alert_rules WHERE org_id = $1 AND rule_id = $2`

// RemoveAlertRule deletes a rule (and what it has fired); ErrNotFound when
// the org has no such rule.
func (l *Ledger) RemoveAlertRule(ctx context.Context, tx pgx.Tx, orgID string, ruleID int64) error {
	if err := validOrgID(orgID); err != nil {
		return err
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, deleteAlertRuleSQL, orgID, ruleID)
	if err != nil {
		return mapError(fmt.Errorf("remove alert rule: %w", err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("alert rule %d of org %s: %w", ruleID, orgID, ErrNotFound)
	}
	states[orgID].alertsForce = true
	return l.persist(ctx, tx, states)
}

const listAlertRulesSQL = `
SELECT r.rule_id, r.kind, coalesce(r.team, ''), r.amount, r.percent_bp, coalesce(r.days, 0), r.source, r.created_at,
       s.scope, s.subject, s.fired_at, s.fired_cycle
FROM alert_rules r LEFT JOIN alert_state s ON s.org_id = r.org_id AND s.rule_id = r.rule_id
WHERE r.org_id = $1
ORDER BY r.rule_id, s.scope, s.subject`

// AlertRules lists an org's rules in the order they were added, each with
// whom it has fired for.
func (l *Ledger) AlertRules(ctx context.Context, db DBTX, orgID string) ([]AlertRule, error) {
	org, err := l.GetOrg(ctx, db, orgID)
	if err != nil {
		return nil, err
	}
	rows, err := db.Query(ctx, listAlertRulesSQL, orgID)
	if err != nil {
		return nil, mapError(fmt.Errorf("alert rules: %w", err))
	}
	defer rows.Close()
	out := []AlertRule{}
	for rows.Next() {
		var r AlertRule
		var amount *int64
		var bp *int32
		var scope, subject *string
		var firedAt, firedCycle *time.Time
		if err := rows.Scan(&r.ID, &r.Kind, &r.Team, &amount, &bp, &r.Days, &r.Source, &r.CreatedAt,
			&scope, &subject, &firedAt, &firedCycle); err != nil {
			return nil, fmt.Errorf("alert rules: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].ID != r.ID {
			r.OrgID, r.CreatedAt = orgID, r.CreatedAt.UTC()
			r.Amount = creditsPtr(amount)
			if bp != nil {
				p := credits.Percent(*bp)
				r.Percent = &p
			}
			r.Fired = []AlertFiring{}
			out = append(out, r)
		}
		if scope != nil {
			f := AlertFiring{Scope: *scope, Subject: *subject, At: firedAt.UTC(), Cycle: firedCycle.UTC()}
			f.Armed = f.Cycle.Before(org.NextCycleAt)
			last := &out[len(out)-1]
			last.Fired = append(last.Fired, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("alert rules: %w", err))
	}
	return out, nil
}

// defaultAlertRules are the rules an org gets when it is created: the
// catalog's percent thresholds of the monthly allocation and of every limit,
// and the depleted rule.
func (l *Ledger) defaultAlertRules(orgID string) []NewAlertRule {
	d := l.catalog.Alerts
	rules := make([]NewAlertRule, 0, len(d.BelowPercent)+len(d.UsagePercent)+1)
	for _, p := range d.BelowPercent {
		pc := credits.Percent(p * 100)
		rules = append(rules, NewAlertRule{OrgID: orgID, Kind: AlertBelowPercent, Percent: &pc})
	}
	rules = append(rules, NewAlertRule{OrgID: orgID, Kind: AlertDepleted})
	for _, p := range d.UsagePercent {
		pc := credits.Percent(p * 100)
		rules = append(rules, NewAlertRule{OrgID: orgID, Kind: AlertUsagePercent, Percent: &pc})
	}
	return rules
}

// alertRuleColumns collects rules for insertAlertRuleSQL.
type alertRuleColumns struct {
	org, kind, source []string
	team              []*string
	amount            []*int64
	bp, days          []*int32
	at                []time.Time
}

func (c *alertRuleColumns) add(r NewAlertRule, source string, at time.Time) {
	c.org, c.kind, c.source, c.team = append(c.org, r.OrgID), append(c.kind, string(r.Kind)), append(c.source, source), append(c.team, opt(r.Team))
	c.amount = append(c.amount, int64Ptr(r.Amount))
	var bp, days *int32
	if r.Percent != nil {
		v := int32(*r.Percent)
		bp = &v
	}
	if r.Days != 0 {
		v := int32(r.Days)
		days = &v
	}
	c.bp, c.days, c.at = append(c.bp, bp), append(c.days, days), append(c.at, at)
}

func (c *alertRuleColumns) args() []any {
	return []any{c.org, c.kind, c.team, c.amount, c.bp, c.days, c.source, c.at}
}

// The rules' parts that evaluation needs, read only for the orgs whose gates
// say a write may cross a rule.
const loadAlertRulesSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, rule_id, kind, coalesce(team, ''), coalesce(amount, 0), coalesce(percent_bp, 0), coalesce(days, 0)
    FROM alert_rules r WHERE r.org_id = k.org_id
    OFFSET 0
) x ON true`

const loadAlertStateSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, rule_id, scope, subject, fired_cycle, fired_at FROM alert_state a WHERE a.org_id = k.org_id
    OFFSET 0
) x ON true`

const loadWebhookIDsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT org_id, webhook_id FROM webhooks w WHERE w.org_id = k.org_id AND w.removed_at IS NULL
    OFFSET 0
) x ON true`

// The spend of the last RunwayWindow: usage, and holds net of their
// captures and releases, less what was restored. Read only for orgs with a runway rule, by the sweep.
const loadBurnSQL = `
SELECT k.org_id, coalesce((SELECT -sum(e.amount) FROM entries e
                           WHERE e.org_id = k.org_id AND e.at > $2 AND e.kind IN ('usage', 'hold', 'capture', 'release', 'restore')), 0)
FROM unnest($1::text[]) AS k(org_id)`

type alertRuleRow struct {
	id      int64
	kind    AlertKind
	team    string
	amount  int64
	bp      credits.Percent
	days    int
	level   int64 // balance rules: fire at or below it
	shown   int64 // the threshold the message shows
	inert   bool  // a percent of a zero allocation
	balance bool  // below, below_percent, depleted
}

type firedKey struct {
	rule           int64
	scope, subject string
}

type firedRow struct {
	cycle, at time.Time
}

// alertSet is what evaluation read for one org.
type alertSet struct {
	rules    []alertRuleRow
	fired    map[firedKey]firedRow
	webhooks []int64
	burn     *int64 // the spend of the last RunwayWindow, when the org has a runway rule and evaluation is forced
}

// needsAlerts says whether this transaction's writes may fire or re-arm a
// rule of the org, from the gates read with its lock: no query otherwise.
func (s *orgState) needsAlerts() bool {
	switch {
	case s.alertsForce:
		return true
	case s.alertFire != nil && s.available <= *s.alertFire:
		return true
	case s.alertRearm != nil && s.available > *s.alertRearm && s.credited:
		return true
	case s.cyclesDirty && (s.alertFire != nil || s.alertRearm != nil || s.alertUsage):
		return true // the cycle turned: fired rules re-arm, percent levels follow the new allocation
	case s.alertUsage:
		for k, c := range s.counters {
			if c.addCredits == 0 {
				continue
			}
			if _, limited := s.limits[k]; limited || (k.scope == "org" && s.org.MonthlyCap != nil) {
				return true
			}
		}
	}
	return false
}

// evaluateAlerts reads the rules of the orgs that need it and fires and
// re-arms them against the state the transaction leaves, so what it decides
// commits or rolls back with the change that caused it.
func (l *Ledger) evaluateAlerts(ctx context.Context, tx pgx.Tx, states map[string]*orgState, orgIDs []string) error {
	var need []string
	for _, id := range orgIDs {
		if states[id].needsAlerts() {
			need = append(need, id)
		}
	}
	if len(need) == 0 {
		return nil
	}
	sets, err := l.loadAlerts(ctx, tx, states, need)
	if err != nil {
		return err
	}
	for _, id := range need {
		s := states[id]
		if err := l.evaluate(s, sets[id]); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ledger) loadAlerts(ctx context.Context, tx pgx.Tx, states map[string]*orgState, orgIDs []string) (map[string]*alertSet, error) {
	sets := make(map[string]*alertSet, len(orgIDs))
	for _, id := range orgIDs {
		sets[id] = &alertSet{fired: map[firedKey]firedRow{}}
	}
	b := &pgx.Batch{}
	b.Queue(loadAlertRulesSQL, orgIDs)
	b.Queue(loadAlertStateSQL, orgIDs)
	b.Queue(loadWebhookIDsSQL, orgIDs)
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	rows, _ := br.Query()
	for rows.Next() {
		var org string
		var r alertRuleRow
		var bp int32
		var days int32
		if err := rows.Scan(&org, &r.id, &r.kind, &r.team, &r.amount, &bp, &days); err != nil {
			return nil, fmt.Errorf("load alert rules: %w", err)
		}
		r.bp, r.days = credits.Percent(bp), int(days)
		sets[org].rules = append(sets[org].rules, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load alert rules: %w", err)
	}
	rows, _ = br.Query()
	for rows.Next() {
		var org string
		var k firedKey
		var f firedRow
		if err := rows.Scan(&org, &k.rule, &k.scope, &k.subject, &f.cycle, &f.at); err != nil {
			return nil, fmt.Errorf("load alert state: %w", err)
		}
		sets[org].fired[k] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load alert state: %w", err)
	}
	rows, _ = br.Query()
	for rows.Next() {
		var org string
		var id int64
		if err := rows.Scan(&org, &id); err != nil {
			return nil, fmt.Errorf("load webhooks: %w", err)
		}
		sets[org].webhooks = append(sets[org].webhooks, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load webhooks: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}

	// Runway needs the spend of the last days: only the forced evaluation
	// of the sweep reads it, and only for orgs with a runway rule.
	var burnOrgs []string
	for _, id := range orgIDs {
		if states[id].alertsForce && slices.ContainsFunc(sets[id].rules, func(r alertRuleRow) bool { return r.kind == AlertRunway }) {
			burnOrgs = append(burnOrgs, id)
		}
	}
	if len(burnOrgs) > 0 {
		since := states[burnOrgs[0]].at.Add(-RunwayWindow)
		rows, err := tx.Query(ctx, loadBurnSQL, burnOrgs, since)
		if err != nil {
			return nil, mapError(fmt.Errorf("load spend: %w", err))
		}
		for rows.Next() {
			var org string
			var burn int64
			if err := rows.Scan(&org, &burn); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load spend: %w", err)
			}
			sets[org].burn = &burn
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, mapError(fmt.Errorf("load spend: %w", err))
		}
	}
	return sets, nil
}

// evaluate fires and re-arms the org's rules and sets its gates. Balance
// rules go from the highest level down and usage rules from the lowest
// percent up, so alerts crossed by one transaction are made in the order a
// slower descent would have made them.
func (l *Ledger) evaluate(s *orgState, set *alertSet) error {
	s.alertsDirty = true
	monthly := int64(-1)
	if terms, err := l.Terms(s.org); err == nil {
		monthly = int64(terms.MonthlyCredits)
	}
	for i := range set.rules {
		r := &set.rules[i]
		switch r.kind {
		case AlertBelow:
			r.balance, r.level, r.shown = true, r.amount, r.amount
		case AlertDepleted:
			r.balance, r.level, r.shown = true, 0, 0
		case AlertBelowPercent:
			r.balance = true
			if monthly <= 0 {
				r.inert = true // no allocation (or a plan no longer in the catalog): nothing to be a percent of
				continue
			}
			r.shown = int64(r.bp.Of(credits.Credits(monthly)))
			r.level = r.shown - 1
		}
	}
	slices.SortStableFunc(set.rules, func(a, b alertRuleRow) int {
		switch {
		case a.balance && !b.balance:
			return -1
		case !a.balance && b.balance:
			return 1
		case a.balance && a.level != b.level:
			if a.level > b.level {
				return -1
			}
			return 1
		case !a.balance && a.bp != b.bp:
			return int(a.bp - b.bp) // usage rules from the lowest percent up
		}
		return 0
	})

	// Firings are of the cycle the engine has performed, named by its end
	// (the org's next boundary), not of the calendar: between a boundary and
	// the sweep that performs it (allocation, expiry) nothing re-arms, so a
	// low balance does not fire again minutes before the new allocation.
	cycle := s.org.NextCycleAt
	// firedNow reports whether the rule has fired for the subject in this
	// cycle; a firing of an earlier cycle counts as armed again.
	firedNow := func(k firedKey) bool {
		f, ok := set.fired[k]
		return ok && !f.cycle.Before(cycle)
	}
	fire := func(r alertRuleRow, k firedKey, n notificationRow) {
		s.alertFired = append(s.alertFired, firedState{org: s.org.ID, key: k, cycle: cycle, at: s.at})
		set.fired[k] = firedRow{cycle: cycle, at: s.at}
		n.kind, n.ruleID = r.kind, r.id
		l.notify(s, set.webhooks, n)
	}
	rearm := func(k firedKey) {
		s.alertRearmed = append(s.alertRearmed, firedState{org: s.org.ID, key: k})
		delete(set.fired, k)
	}

	var fireGate, rearmGate *int64
	hasUsage := false
	for _, r := range set.rules {
		switch {
		case r.balance:
			if r.inert {
				continue
			}
			k := firedKey{rule: r.id, scope: "org"}
			on := firedNow(k)
			switch {
			case !on && s.available <= r.level:
				th := r.shown
				fire(r, k, notificationRow{threshold: &th, bp: r.bp})
				on = true
			case on && s.available > r.level && s.credited:
				rearm(k)
				on = false
			}
			if on {
				rearmGate = minPtr(rearmGate, r.level)
			} else {
				fireGate = maxPtr(fireGate, r.level)
			}
		case r.kind == AlertUsagePercent:
			hasUsage = true
			for _, t := range s.usageTargets(r.team) {
				k := firedKey{rule: r.id, scope: t.scope, subject: t.subject}
				if firedNow(k) || !r.bp.Reached(credits.Credits(t.used), credits.Credits(t.limit)) {
					continue
				}
				limit, used := t.limit, t.used
				fire(r, k, notificationRow{bp: r.bp, scope: t.scope, subject: t.subject, limit: &limit, used: &used})
			}
		case r.kind == AlertRunway && set.burn != nil:
			k := firedKey{rule: r.id, scope: "org"}
			on := firedNow(k)
			short := runsOutWithin(s.available, *set.burn, r.days)
			switch {
			case !on && short:
				fire(r, k, notificationRow{days: r.days, used: set.burn})
			case on && !short:
				rearm(k)
			}
		}
	}
	// Firings of earlier cycles that nothing fired again are armed anyway.
	for k, f := range set.fired {
		if f.cycle.Before(cycle) {
			rearm(k)
		}
	}
	s.alertFire, s.alertRearm, s.alertUsage = fireGate, rearmGate, hasUsage
	return nil
}

// usageTarget is a limited counter a usage rule watches.
type usageTarget struct {
	scope, subject string
	used, limit    int64
}

// usageTargets returns the limited counters this transaction has read, so
// a rule is checked whenever the usage it watches changes: the org's cap
// and every limit loaded, or only the team's limit for a team rule.
func (s *orgState) usageTargets(team string) []usageTarget {
	var out []usageTarget
	if team == "" && s.org.MonthlyCap != nil {
		c := s.counters[counterKey{"org", ""}]
		used := int64(0)
		if c != nil {
			used = c.credits
		}
		out = append(out, usageTarget{scope: "org", used: used, limit: int64(*s.org.MonthlyCap)})
	}
	for k, limit := range s.limits {
		if team != "" && (k.scope != "team" || k.subject != team) {
			continue
		}
		used := int64(0)
		if c := s.counters[k]; c != nil {
			used = c.credits
		}
		out = append(out, usageTarget{scope: k.scope, subject: k.subject, used: used, limit: limit})
	}
	slices.SortFunc(out, func(a, b usageTarget) int {
		if a.scope != b.scope {
			return compareStrings(a.scope, b.scope)
		}
		return compareStrings(a.subject, b.subject)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// runsOutWithin reports whether available credits last fewer than days
// at the spend of burn per RunwayWindow: available / (burn / 7) < days, in
// exact integers (big, as both products may leave int64).
func runsOutWithin(available, burn int64, days int) bool {
	if burn <= 0 {
		return false
	}
	lhs := new(big.Int).Mul(big.NewInt(available), big.NewInt(int64(RunwayWindow/(24*time.Hour))))
	rhs := new(big.Int).Mul(big.NewInt(burn), big.NewInt(int64(days)))
	return lhs.Cmp(rhs) < 0
}

func minPtr(p *int64, v int64) *int64 {
	if p == nil || v < *p {
		return &v
	}
	return p
}

func maxPtr(p *int64, v int64) *int64 {
	if p == nil || v > *p {
		return &v
	}
	return p
}
