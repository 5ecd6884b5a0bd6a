package ledger

import (
	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger/credits"
)

// Overrides replace terms of an org's catalog plan for that org alone
// (enterprise terms). A nil field keeps the plan's value. There is no way to
// remove a plan's rollover cap for one org, only to set another.
type Overrides struct {
	MonthlyCredits *credits.Credits `json:"monthly_credits,omitempty"`
	RolloverMonths *int             `json:"rollover_months,omitempty"`
	RolloverCap    *credits.Credits `json:"rollover_cap,omitempty"`
	IncludedRuns   *int64           `json:"included_runs,omitempty"`
}

// IsZero reports whether o overrides nothing.
func (o Overrides) IsZero() bool { return o.Equal(Overrides{}) }

// Equal compares the values, not the pointers.
func (o Overrides) Equal(p Overrides) bool {
	return eqPtr(o.MonthlyCredits, p.MonthlyCredits) && eqPtr(o.RolloverMonths, p.RolloverMonths) &&
		eqPtr(o.RolloverCap, p.RolloverCap) && eqPtr(o.IncludedRuns, p.IncludedRuns)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Terms are what an org's plan gives it each cycle once the org's overrides
// are applied: the cycle engine and the pricing of runs read them.
type Terms struct {
	Plan           string           `json:"plan"`
	MonthlyCredits credits.Credits  `json:"monthly_credits"`
	RolloverMonths int              `json:"rollover_months"` // 0: allocations expire at their cycle's end
	RolloverCap    *credits.Credits `json:"rollover_cap"`    // nil: no cap
	IncludedRuns   int64            `json:"included_runs"`
	Overage        config.Overage   `json:"-"`
}

// EffectiveTerms combines a catalog plan with an org's overrides.
func EffectiveTerms(p config.Plan, o Overrides) Terms {
	t := Terms{Plan: p.Name, MonthlyCredits: p.MonthlyCredits, RolloverMonths: p.RolloverMonths,
		RolloverCap: p.RolloverCap, IncludedRuns: p.IncludedRuns, Overage: p.Overage}
	if o.MonthlyCredits != nil {
		t.MonthlyCredits = *o.MonthlyCredits
	}
	if o.RolloverMonths != nil {
		t.RolloverMonths = *o.RolloverMonths
	}
	if o.RolloverCap != nil {
		c := *o.RolloverCap
		t.RolloverCap = &c
	}
	if o.IncludedRuns != nil {
		t.IncludedRuns = *o.IncludedRuns
	}
	if t.RolloverMonths == 0 {
		t.RolloverCap = nil // nothing is carried, so nothing is capped
	}
	if t.Overage.Runs == 0 {
		t.Overage = config.DefaultOverage()
	}
	return t
}

// Terms returns the terms the org's current cycle runs on: its plan from the
// catalog with its overrides. A plan the catalog does not have is a
// *ValidationError naming field plan.
func (l *Ledger) Terms(o Org) (Terms, error) {
	return l.termsFor(o.ID, o.Plan, o.Overrides)
}

func (l *Ledger) termsFor(orgID, plan string, o Overrides) (Terms, error) {
	p, ok := l.catalog.Plan(plan)
	if !ok {
		return Terms{}, invalid("plan", "org %s is on plan %q, which the catalog does not have", orgID, plan)
	}
	if p.Name == "" {
		p.Name = plan
	}
	return EffectiveTerms(p, o), nil
}

// validOverrides checks overrides against the plan they modify.
func (l *Ledger) validOverrides(plan string, o Overrides) error {
	p, ok := l.catalog.Plan(plan)
	if !ok {
		return invalid("plan", "unknown plan %q", plan)
	}
	if o.MonthlyCredits != nil && (*o.MonthlyCredits < 0 || *o.MonthlyCredits > MaxAmount) {
		return invalid("monthly_credits", "must be from 0 to 1000000000000 credits")
	}
	if o.RolloverMonths != nil && (*o.RolloverMonths < 0 || *o.RolloverMonths > config.MaxRolloverMonths) {
		return invalid("rollover_months", "must be from 0 to %d", config.MaxRolloverMonths)
	}
	if o.RolloverCap != nil {
		if *o.RolloverCap < 0 || *o.RolloverCap > MaxAmount {
			return invalid("rollover_cap", "must be from 0 to 1000000000000 credits")
		}
		if t := EffectiveTerms(p, o); t.RolloverMonths == 0 {
			return invalid("rollover_cap", "only allowed when rollover months are more than 0")
		}
	}
	if o.IncludedRuns != nil && *o.IncludedRuns < 0 {
		return invalid("included_runs", "must not be negative")
	}
	return nil
}
