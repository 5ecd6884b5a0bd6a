package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PlanChange changes an org's plan, its overrides of the plan's terms, or its
// billing anchor. Zero fields keep what the org has (or what an earlier
// change has already scheduled).
type PlanChange struct {
	OrgID string
	Plan  string // "" keeps the plan
	// Overrides replace the org's overrides; a zero Overrides removes them.
	// nil keeps them while the plan stays, and removes them when the plan
	// changes (enterprise terms do not follow an org to another plan).
	Overrides *Overrides
	Anchor    *time.Time // nil keeps the anchor instant
	TimeZone  string     // "" keeps the zone
}

// PlanChangeResult is the org after ChangePlan: Org.Pending holds the terms
// from EffectiveAt on (nil when the change restored the current terms).
// Cycles reports the boundaries that were due and were performed first.
type PlanChangeResult struct {
	Org         Org         `json:"org"`
	EffectiveAt time.Time   `json:"effective_at"`
	Cycles      CycleReport `json:"cycles"`
}

// maxCatchUpRuns bounds how many rounds of MaxCyclesPerRun boundaries
// ChangePlan performs before it schedules the change (30 years of cycles).
const maxCatchUpRuns = 10

// ChangePlan schedules a change of the org's plan, overrides or anchor for
// its next cycle: the current cycle keeps its terms, and the change takes
// effect at the next boundary. To make "next" mean the boundary after now, it
// first performs every boundary that is due (as AdvanceCycles would), so a
// late sweep never applies a change to a cycle that began before it was made.
// A second change before that boundary replaces the first (fields it leaves
// zero keep what the first scheduled).
//
// An anchor change (instant or zone) keeps every cycle done and starts the
// new schedule at the next boundary B, which is performed as planned: the
// cycle starting at B is a transition cycle that ends at the new anchor's
// first cycle start after B, and later cycles follow the new anchor. Each
// cycle is granted once at its start, so no cycle is granted twice or
// skipped; the transition cycle may be shorter or longer than a month and
// gets the full monthly credits. Lots already granted keep their expiry.
func (l *Ledger) ChangePlan(ctx context.Context, tx pgx.Tx, c PlanChange) (PlanChangeResult, error) {
	if err := validOrgID(c.OrgID); err != nil {
		return PlanChangeResult{}, err
	}
	if c.Plan != "" {
		if _, ok := l.catalog.Plan(c.Plan); !ok {
			return PlanChangeResult{}, invalid("plan", "unknown plan %q", c.Plan)
		}
	}
	if c.TimeZone != "" {
		if _, err := NewAnchor(time.Time{}, c.TimeZone); err != nil {
			return PlanChangeResult{}, err
		}
	}
	states, err := l.load(ctx, tx, []string{c.OrgID}, loadNeeds{cycles: true, expiredHolds: true})
	if err != nil {
		return PlanChangeResult{}, err
	}
	s := states[c.OrgID]
	rep := l.advance(s, s.at)
	for i := 1; rep.Behind && i < maxCatchUpRuns; i++ {
		more := l.advance(s, s.at)
		rep.Cycles = append(rep.Cycles, more.Cycles...)
		rep.Expired += more.Expired
		rep.HoldsReleased += more.HoldsReleased
		rep.BalanceAfter, rep.Debt, rep.NextCycleAt, rep.Behind, rep.Error = more.BalanceAfter, more.Debt, more.NextCycleAt, more.Behind, more.Error
	}
	if rep.Error != "" {
		return PlanChangeResult{}, fmt.Errorf("%w: org %s cannot advance its cycles: %s", ErrConflict, c.OrgID, rep.Error)
	}
	if rep.Behind {
		return PlanChangeResult{}, fmt.Errorf("%w: org %s is more than %d cycles behind", ErrConflict, c.OrgID,
			maxCatchUpRuns*MaxCyclesPerRun)
	}

	o := s.org
	p := PendingTerms{Plan: o.Plan, Overrides: o.Overrides, Anchor: o.Anchor, TimeZone: o.TimeZone}
	if o.Pending != nil {
		p = *o.Pending
	}
	if c.Plan != "" && c.Plan != p.Plan {
		p.Plan, p.Overrides = c.Plan, Overrides{}
	}
	if c.Overrides != nil {
		p.Overrides = *c.Overrides
	}
	if c.Anchor != nil {
		p.Anchor = c.Anchor.UTC().Truncate(time.Microsecond)
	}
	if c.TimeZone != "" {
		p.TimeZone = c.TimeZone
	}
	if err := l.validOverrides(p.Plan, p.Overrides); err != nil {
		return PlanChangeResult{}, err
	}
	p.From = o.NextCycleAt
	if p.Plan == o.Plan && p.Overrides.Equal(o.Overrides) && p.Anchor.Equal(o.Anchor) && p.TimeZone == o.TimeZone {
		s.org.Pending = nil // back to the current terms: nothing left to change
	} else {
		s.org.Pending = &p
	}
	s.termsDirty = true
	if err := l.writeCycles(ctx, tx, states, []string{c.OrgID}); err != nil {
		return PlanChangeResult{}, err
	}
	return PlanChangeResult{Org: s.org, EffectiveAt: p.From, Cycles: rep}, nil
}
