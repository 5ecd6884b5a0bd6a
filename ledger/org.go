package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Policy is what happens to usage an org cannot cover.
type Policy string

const (
	// PolicyDebt records the usage in full; the balance goes negative, the
	// org is paused and the next credits added repay the debt first.
	PolicyDebt Policy = "debt"
	// PolicyReject debits nothing and records the event as rejected.
	PolicyReject Policy = "reject"
)

// Org is an organization: the owner of one balance.
type Org struct {
	ID         string           `json:"org"`
	Plan       string           `json:"plan"`
	Anchor     time.Time        `json:"anchor"`
	TimeZone   string           `json:"time_zone"`
	Currency   string           `json:"currency"`
	Policy     Policy           `json:"policy"`
	Emails     []string         `json:"emails"`
	MonthlyCap *credits.Credits `json:"monthly_cap"`
	CreatedAt  time.Time        `json:"created_at"`

	// Overrides of the plan's terms for this org (enterprise terms).
	Overrides Overrides `json:"overrides"`
	// AnchorFrom is the boundary at which a changed anchor took effect; nil
	// while the org keeps the anchor it was created with.
	AnchorFrom *time.Time `json:"anchor_from,omitempty"`
	// NextCycleAt is the start of the next cycle boundary the cycle engine
	// has not performed yet (allocation, expiry, rollover).
	NextCycleAt time.Time `json:"next_cycle_at"`
	// CyclesDone counts the boundaries performed.
	CyclesDone int `json:"cycles_done"`
	// Pending is a change of plan, overrides or anchor that takes effect at
	// the next boundary.
	Pending *PendingTerms `json:"pending,omitempty"`
	// AutoPay: the org's monthly invoices are charged to its saved card.
	AutoPay bool `json:"auto_pay"`
	// Price is the org's own monthly price (enterprise terms), in minor units
	// of its currency; nil bills the plan's price.
	Price *int64 `json:"price_minor,omitempty"`
}

// PendingTerms are an org's terms from boundary From on: the whole set, not
// only what changed.
type PendingTerms struct {
	From      time.Time `json:"from"`
	Plan      string    `json:"plan"`
	Overrides Overrides `json:"overrides"`
	Anchor    time.Time `json:"anchor"`
	TimeZone  string    `json:"time_zone"`
}

// BillingAnchor returns the org's anchor with its zone loaded.
func (o Org) BillingAnchor() (Anchor, error) {
	a, err := NewAnchor(o.Anchor, o.TimeZone)
	if err != nil {
		return Anchor{}, err
	}
	if o.AnchorFrom != nil {
		a.From = *o.AnchorFrom
	}
	return a, nil
}

// orgSelect is the select list of an org (orgs o joined with balances b), in
// the order orgRow scans it.
const orgSelect = `o.org_id, o.plan, o.anchor, o.time_zone, o.currency, o.policy, o.emails, o.monthly_cap, o.created_at,
           o.monthly_credits, o.rollover_months, o.rollover_cap, o.included_runs, o.anchor_from, b.next_cycle_at,
           b.cycles_done, o.pending, o.auto_pay, o.price_minor`

// orgRow scans the columns of orgSelect.
type orgRow struct {
	org                    Org
	policy                 string
	monthlyCap, monthly    *int64
	rolloverCap, runs      *int64
	rolloverMonths         *int32
	pending                []byte
	anchorFrom, nextCycles *time.Time
}

func (r *orgRow) dest() []any {
	o := &r.org
	return []any{&o.ID, &o.Plan, &o.Anchor, &o.TimeZone, &o.Currency, &r.policy, &o.Emails, &r.monthlyCap,
		&o.CreatedAt, &r.monthly, &r.rolloverMonths, &r.rolloverCap, &r.runs, &r.anchorFrom, &r.nextCycles,
		&o.CyclesDone, &r.pending, &o.AutoPay, &o.Price}
}

func (r *orgRow) finish() (Org, error) {
	o := r.org
	o.Policy = Policy(r.policy)
	o.Anchor, o.CreatedAt = o.Anchor.UTC(), o.CreatedAt.UTC()
	o.MonthlyCap = creditsPtr(r.monthlyCap)
	o.Overrides = Overrides{MonthlyCredits: creditsPtr(r.monthly), RolloverCap: creditsPtr(r.rolloverCap), IncludedRuns: r.runs}
	if r.rolloverMonths != nil {
		m := int(*r.rolloverMonths)
		o.Overrides.RolloverMonths = &m
	}
	if r.anchorFrom != nil {
		t := r.anchorFrom.UTC()
		o.AnchorFrom = &t
	}
	if r.nextCycles != nil {
		o.NextCycleAt = r.nextCycles.UTC()
	}
	if r.pending != nil {
		var p PendingTerms
		if err := json.Unmarshal(r.pending, &p); err != nil {
			return Org{}, fmt.Errorf("org %s: pending terms: %w", o.ID, err)
		}
		p.From, p.Anchor = p.From.UTC(), p.Anchor.UTC()
		o.Pending = &p
	}
	return o, nil
}

func creditsPtr(v *int64) *credits.Credits {
	if v == nil {
		return nil
	}
	c := credits.Credits(*v)
	return &c
}

func int64Ptr(c *credits.Credits) *int64 {
	if c == nil {
		return nil
	}
	v := int64(*c)
	return &v
}

// NewOrg is a request to create an org. Zero fields take defaults: anchor at
// the start of the current month in the zone, zone UTC, currency USD, policy
// debt.
type NewOrg struct {
	ID         string
	Plan       string
	Anchor     *time.Time
	TimeZone   string
	Currency   string
	Policy     Policy
	Emails     []string
	MonthlyCap *credits.Credits
	// Overrides set enterprise terms from the first cycle on.
	Overrides Overrides
	// NoDefaultAlerts creates the org without the catalog's alert rules.
	NoDefaultAlerts bool
}

func (l *Ledger) normalizeOrg(o NewOrg, now time.Time) (Org, error) {
	if err := validOrgID(o.ID); err != nil {
		return Org{}, err
	}
	if o.Plan == "" {
		return Org{}, invalid("plan", "required")
	}
	if _, ok := l.catalog.Plan(o.Plan); !ok {
		return Org{}, invalid("plan", "unknown plan %q", o.Plan)
	}
	if err := l.validOverrides(o.Plan, o.Overrides); err != nil {
		return Org{}, err
	}
	if o.TimeZone == "" {
		o.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil || o.TimeZone == "Local" {
		return Org{}, invalid("tz", "unknown time zone %q", o.TimeZone)
	}
	if o.Currency == "" {
		o.Currency = l.catalog.Currency
	}
	if !credits.ValidCurrency(o.Currency) {
		return Org{}, invalid("currency", "%q is not a three-letter upper-case ISO 4217 code", o.Currency)
	}
	switch o.Policy {
	case "":
		o.Policy = PolicyDebt
	case PolicyDebt, PolicyReject:
	default:
		return Org{}, invalid("policy", "must be debt or reject, not %q", o.Policy)
	}
	if err := validEmails(o.Emails); err != nil {
		return Org{}, err
	}
	if o.MonthlyCap != nil {
		if err := validAmount("monthly_cap", int64(*o.MonthlyCap)); err != nil {
			return Org{}, err
		}
	}
	anchor := DefaultAnchor(now, loc)
	if o.Anchor != nil {
		anchor = o.Anchor.Truncate(time.Microsecond)
	}
	emails := o.Emails
	if emails == nil {
		emails = []string{}
	}
	return Org{
		ID: o.ID, Plan: o.Plan, Anchor: anchor.UTC(), TimeZone: o.TimeZone, Currency: o.Currency,
		Policy: o.Policy, Emails: emails, MonthlyCap: o.MonthlyCap, CreatedAt: now,
		Overrides: o.Overrides, NextCycleAt: anchor.UTC(),
	}, nil
}

const insertOrgSQL = `
WITH o AS (
    INSERT INTO orgs (org_id, plan, anchor, time_zone, currency, policy, emails, monthly_cap, created_at,
                      monthly_credits, rollover_months, rollover_cap, included_runs)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (org_id) DO NOTHING
    RETURNING org_id
)
INSERT INTO balances (org_id, available, held, debt, last_at, next_cycle_at)
SELECT org_id, 0, 0, 0, $9, $3 FROM o`

// CreateOrg creates an org with a zero balance. Its cycle 0 starts at its
// anchor (default: the start of the current month in its zone), and the
// first cycle sweep grants cycle 0's allocation. Creating the same org again
// with the same settings returns it unchanged; with other settings it is
// ErrConflict.
func (l *Ledger) CreateOrg(ctx context.Context, tx pgx.Tx, req NewOrg) (Org, error) {
	org, err := l.normalizeOrg(req, l.now())
	if err != nil {
		return Org{}, err
	}
	ov := org.Overrides
	tag, err := tx.Exec(ctx, insertOrgSQL, org.ID, org.Plan, org.Anchor, org.TimeZone, org.Currency,
		string(org.Policy), org.Emails, int64Ptr(org.MonthlyCap), org.CreatedAt,
		int64Ptr(ov.MonthlyCredits), ov.RolloverMonths, int64Ptr(ov.RolloverCap), ov.IncludedRuns)
	if err != nil {
		return Org{}, mapError(fmt.Errorf("create org %s: %w", org.ID, err))
	}
	if tag.RowsAffected() == 1 {
		return org, l.addDefaultAlerts(ctx, tx, org.ID, req.NoDefaultAlerts)
	}
	existing, err := l.GetOrg(ctx, tx, org.ID)
	if err != nil {
		return Org{}, err
	}
	same := existing.Plan == org.Plan && existing.TimeZone == org.TimeZone && existing.Currency == org.Currency &&
		existing.Policy == org.Policy && slices.Equal(existing.Emails, org.Emails) &&
		equalCap(existing.MonthlyCap, org.MonthlyCap) && (req.Anchor == nil || existing.Anchor.Equal(org.Anchor)) &&
		existing.Overrides.Equal(org.Overrides)
	if !same {
		return Org{}, fmt.Errorf("%w: org %s already exists with other settings", ErrConflict, org.ID)
	}
	return existing, nil
}

const markAlertDefaultsSQL = `UPDATE orgs SET alert_defaults = true WHERE org_id = $1`

// addDefaultAlerts gives an org the catalog's rules and evaluates them
// quietly: what already holds (a new org's zero balance is below every
// level) counts as fired, so the first alert comes with the first crossing.
// The org is marked, so it gets them once, with none or not.
func (l *Ledger) addDefaultAlerts(ctx context.Context, tx pgx.Tx, orgID string, none bool) error {
	if _, err := tx.Exec(ctx, markAlertDefaultsSQL, orgID); err != nil {
		return mapError(fmt.Errorf("org %s: alert defaults: %w", orgID, err))
	}
	if none {
		return nil
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return err
	}
	var rows alertRuleColumns
	for _, r := range l.defaultAlertRules(orgID) {
		rows.add(r, "default", states[orgID].at)
	}
	if _, err := tx.Exec(ctx, insertAlertRuleSQL, rows.args()...); err != nil {
		return mapError(fmt.Errorf("create org %s: alert rules: %w", orgID, err))
	}
	s := states[orgID]
	s.alertsForce, s.alertsQuiet = true, true
	return l.persist(ctx, tx, states)
}

const orgsWithoutDefaultsSQL = `
SELECT org_id FROM orgs WHERE NOT alert_defaults AND org_id > $1 ORDER BY org_id LIMIT $2`

// ApplyAlertDefaults gives every org that has not had them the catalog's
// default alert rules (orgs created before alerts existed), in pages of
// page orgs, a transaction each. It returns how many orgs it gave them to;
// a second run gives them to none.
func (l *Ledger) ApplyAlertDefaults(ctx context.Context, db TxBeginner, page int) (int, error) {
	if page <= 0 || page > MaxCyclePage {
		return 0, invalid("page", "must be from 1 to %d", MaxCyclePage)
	}
	done, after := 0, ""
	for {
		var ids []string
		err := WithRetry(ctx, db, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, orgsWithoutDefaultsSQL, after, page)
			if err != nil {
				return err
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			for _, id := range ids {
				if err := l.addDefaultAlerts(ctx, tx, id, false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return done, fmt.Errorf("alert defaults: %w", err)
		}
		done += len(ids)
		if len(ids) < page {
			return done, nil
		}
		after = ids[len(ids)-1]
	}
}

// MaxEmails bounds an org's alert recipients.
const MaxEmails = 20

func validEmails(emails []string) error {
	if len(emails) > MaxEmails {
		return invalid("email", "at most %d addresses, got %d", MaxEmails, len(emails))
	}
	for _, e := range emails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			return invalid("email", "%q is not an email address", e)
		}
	}
	return nil
}

const setEmailsSQL = `UPDATE orgs SET emails = $2 WHERE org_id = $1`

// SetEmails replaces the addresses the org's alerts are emailed to (none:
// no email). It takes the org's lock, so alerts decided after the commit go
// to the new list; deliveries already in the outbox keep their address.
func (l *Ledger) SetEmails(ctx context.Context, tx pgx.Tx, orgID string, emails []string) error {
	if err := validOrgID(orgID); err != nil {
		return err
	}
	if err := validEmails(emails); err != nil {
		return err
	}
	if emails == nil {
		emails = []string{}
	}
	if _, err := l.load(ctx, tx, []string{orgID}, loadNeeds{}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, setEmailsSQL, orgID, emails); err != nil {
		return mapError(fmt.Errorf("org %s: emails: %w", orgID, err))
	}
	return nil
}

func equalCap(a, b *credits.Credits) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

const selectOrgSQL = `SELECT ` + orgSelect + ` FROM orgs o JOIN balances b ON b.org_id = o.org_id WHERE o.org_id = $1`

// GetOrg reads an org; ErrNotFound when it does not exist.
func (l *Ledger) GetOrg(ctx context.Context, db DBTX, orgID string) (Org, error) {
	if err := validOrgID(orgID); err != nil {
		return Org{}, err
	}
	var r orgRow
	if err := db.QueryRow(ctx, selectOrgSQL, orgID).Scan(r.dest()...); err != nil {
		return Org{}, fmt.Errorf("org %s: %w", orgID, mapError(err))
	}
	return r.finish()
}

// LimitScope is what a monthly limit applies to.
type LimitScope string

// Limit scopes.
const (
	ScopeTeam LimitScope = "team"
	ScopeUser LimitScope = "user"
)

const upsertLimitSQL = `
INSERT INTO limits (org_id, scope, subject, monthly_limit) VALUES ($1, $2, $3, $4)
ON CONFLICT (org_id, scope, subject) DO UPDATE SET monthly_limit = excluded.monthly_limit`

const deleteLimitSQL = `DELETE FROM limits WHERE org_id = $1 AND scope = $2 AND subject = $3`

// SetLimit gives a team or user of an org a monthly credit limit; a nil
// limit removes it. Usage past the limit is rejected for that team or user.
func (l *Ledger) SetLimit(ctx context.Context, tx pgx.Tx, orgID string, scope LimitScope, subject string, limit *credits.Credits) error {
	if err := validOrgID(orgID); err != nil {
		return err
	}
	if scope != ScopeTeam && scope != ScopeUser {
		return invalid("scope", "must be team or user")
	}
	if err := validKey(string(scope), subject); err != nil {
		return err
	}
	if _, err := l.GetOrg(ctx, tx, orgID); err != nil {
		return err
	}
	var err error
	if limit == nil {
		_, err = tx.Exec(ctx, deleteLimitSQL, orgID, string(scope), subject)
	} else {
		if err := validAmount("limit", int64(*limit)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, upsertLimitSQL, orgID, string(scope), subject, int64(*limit))
	}
	if err != nil {
		return mapError(fmt.Errorf("set limit: %w", err))
	}
	return nil
}
