package main

import (
	"flag"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// termFlags are the per-org overrides of the plan's terms (enterprise
// terms), shared by `org create` and `org set`.
type termFlags struct {
	fs                                                    *flag.FlagSet
	monthlyCredits, rolloverMonths, rolloverCap, runsIncl *string
}

func addTermFlags(fs *flag.FlagSet) *termFlags {
	return &termFlags{
		fs:             fs,
		monthlyCredits: fs.String("monthly-credits", "", "override: credits granted each cycle"),
		rolloverMonths: fs.String("rollover-months", "", "override: further cycles unused allocation credits roll over (0: they expire at cycle end)"),
		rolloverCap:    fs.String("rollover-cap", "", "override: most allocation credits carried into a cycle"),
		runsIncl:       fs.String("included-runs", "", "override: runs included each cycle"),
	}
}

// overrides returns the overrides given, or nil when none was.
func (f *termFlags) overrides() (*ledger.Overrides, error) {
	var o ledger.Overrides
	given := false
	if isSet(f.fs, "monthly-credits") {
		v, err := credits.Parse(*f.monthlyCredits)
		if err != nil || v < 0 {
			return nil, invalid("monthly_credits", "%q is not a credit amount of 0 or more", *f.monthlyCredits)
		}
		o.MonthlyCredits, given = &v, true
	}
	if isSet(f.fs, "rollover-months") {
		n, err := parseCount("rollover_months", *f.rolloverMonths)
		if err != nil {
			return nil, err
		}
		m := int(n)
		o.RolloverMonths, given = &m, true
	}
	if isSet(f.fs, "rollover-cap") {
		v, err := credits.Parse(*f.rolloverCap)
		if err != nil || v < 0 {
			return nil, invalid("rollover_cap", "%q is not a credit amount of 0 or more", *f.rolloverCap)
		}
		o.RolloverCap, given = &v, true
	}
	if isSet(f.fs, "included-runs") {
		n, err := parseCount("included_runs", *f.runsIncl)
		if err != nil {
			return nil, err
		}
		o.IncludedRuns, given = &n, true
	}
	if !given {
		return nil, nil
	}
	return &o, nil
}

// parseCount reads a whole number of 0 or more given for field.
func parseCount(field, s string) (int64, error) {
	c, err := credits.Parse(s)
	if err != nil || c < 0 || c%1000 != 0 {
		return 0, invalid(field, "%q is not a whole number of 0 or more", s)
	}
	return int64(c) / 1000, nil
}

// runOrgSet schedules a change of an org's plan, terms or anchor: it takes
// effect at the org's next cycle boundary (due boundaries are performed
// first), so the current cycle keeps the terms it started with.
func runOrgSet(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	plan := fs.String("plan", "", "the catalog plan from the next cycle on")
	anchor := fs.String("anchor", "", "new billing anchor, RFC 3339: cycles follow it after the next boundary")
	tz := fs.String("tz", "", "new IANA time zone of the anchor")
	clearOverrides := fs.Bool("clear-overrides", false, "remove the org's overrides from the next cycle on")
	terms := addTermFlags(fs)
	billing := addInvoiceFlags(fs)
	asJSON := jsonFlag(fs)
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}

	change := ledger.PlanChange{OrgID: pos[0], Plan: *plan, TimeZone: *tz}
	if change.Overrides, err = terms.overrides(); err != nil {
		return err
	}
	if *clearOverrides {
		if change.Overrides != nil {
			return invalid("clear-overrides", "cannot be given with overrides")
		}
		change.Overrides = &ledger.Overrides{}
	}
	if isSet(fs, "anchor") {
		t, err := parseTime("anchor", *anchor)
		if err != nil {
			return err
		}
		change.Anchor = &t
	}
	planChange := change.Plan != "" || change.Overrides != nil || change.Anchor != nil || change.TimeZone != ""
	if !planChange && !billing.given() {
		return usageErrorf(c, "nothing to change: give --plan, --anchor, --tz, overrides, --clear-overrides, --auto-pay or --price")
	}
	if err := a.connect(); err != nil {
		return err
	}
	org, err := a.requireOrg(change.OrgID)
	if err != nil {
		return err
	}
	settings, err := billing.settings(org)
	if err != nil {
		return err
	}
	if !planChange {
		return a.setInvoiceSettings(*settings, *asJSON)
	}
	var res ledger.PlanChangeResult
	err = ledger.WithRetry(a.ctx, a.pool, func(tx pgx.Tx) (err error) {
		if settings != nil {
			if _, err := a.ledger.SetInvoiceSettings(a.ctx, tx, *settings); err != nil {
				return err
			}
		}
		res, err = a.ledger.ChangePlan(a.ctx, tx, change)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.printJSON(res)
	}
	if res.Org.Pending == nil {
		a.printf("org %s: no change pending (the change restores the current terms)\n", res.Org.ID)
		return nil
	}
	a.printf("org %s: the change takes effect at its next cycle, %s\n", res.Org.ID, res.EffectiveAt.Format(time.RFC3339))
	return nil
}
