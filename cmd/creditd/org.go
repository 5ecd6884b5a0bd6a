package main

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func runOrgCreate(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	plan := fs.String("plan", "", "the catalog plan (required)")
	anchor := fs.String("anchor", "", "billing anchor, RFC 3339 (default: the start of the current month in --tz)")
	tz := fs.String("tz", "", "IANA time zone of the billing anchor (default UTC)")
	policy := fs.String("policy", "", "what happens to usage the org cannot cover: debt or reject (default debt)")
	var emails stringList
	fs.Var(&emails, "email", "an admin's email address for alerts; repeat for more")
	currency := fs.String("currency", "", "ISO 4217 currency (default: the catalog's)")
	monthlyCap := fs.String("monthly-cap", "", "credits the org may use per cycle (default: no cap)")
	terms := addTermFlags(fs)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	req := ledger.NewOrg{
		ID: pos[0], Plan: *plan, TimeZone: *tz, Currency: *currency,
		Policy: ledger.Policy(*policy), Emails: emails,
	}
	if isSet(fs, "anchor") {
		t, err := parseTime("anchor", *anchor)
		if err != nil {
			return err
		}
		req.Anchor = &t
	}
	if isSet(fs, "monthly-cap") {
		v, err := parsePositive("monthly_cap", *monthlyCap)
		if err != nil {
			return err
		}
		req.MonthlyCap = &v
	}
	overrides, err := terms.overrides()
	if err != nil {
		return err
	}
	if overrides != nil {
		req.Overrides = *overrides
	}
	if err := a.connect(); err != nil {
		return err
	}
	var org ledger.Org
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		org, err = a.ledger.CreateOrg(a.ctx, tx, req)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(org)
	}
	a.printf("org %s: plan %s, anchor %s (%s), policy %s, currency %s\n",
		org.ID, org.Plan, org.Anchor.Format(time.RFC3339), org.TimeZone, org.Policy, org.Currency)
	return nil
}

// orgView is `org show --json`: the org's settings, its balance and its
// payment state.
type orgView struct {
	ledger.Org
	Balance ledger.Balance `json:"balance"`
	orgPayments
}

func runOrgShow(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	org, err := a.requireOrg(pos[0])
	if err != nil {
		return err
	}
	bal, err := a.ledger.Balance(a.ctx, a.pool, org.ID)
	if err != nil {
		return err
	}
	pay, err := a.orgPayments(org.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(orgView{org, bal, pay})
	}
	a.printOrg(org, bal, pay)
	return nil
}

// parseTime reads an RFC 3339 time given for field.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid(field, "%q is not an RFC 3339 time like 2026-03-01T00:00:00Z", s)
	}
	return t, nil
}

// parsePositive reads a positive decimal credit amount given for field.
func parsePositive(field, s string) (credits.Credits, error) {
	v, err := credits.Parse(s)
	if err != nil {
		return 0, invalid(field, "%v", err) // "amount: more than 3 decimal places"
	}
	if v <= 0 {
		return 0, invalid(field, "must be positive")
	}
	return v, nil
}
