package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// The cycle engine. Every org has a queue of cycle boundaries: the start of
// its cycle 0 (its anchor), then the start of every later cycle. The engine
// performs, in order, every boundary B whose instant has come and that it
// has not performed yet (balances.next_cycle_at is the next one). At B:
//
//  1. lots whose expiry is at or before B expire (each with an expiry entry
//     dated at its expiry);
//  2. rollover: the allocation credits still open after B (what remains in
//     lots of source allocation that expire after B) are carried into the
//     new cycle, at most the rollover cap of the cycle that ends at B; the
//     excess expires at B (expiry entries, soonest-expiring lots first, then
//     oldest), and a rollover entry (amount 0) records what was carried. The
//     cap holds at every boundary, for all carried cycles together;
//  3. terms pending from B on (a plan, override or anchor change) take effect;
//  4. allocation: the monthly credits of the new terms are granted in a lot
//     with key allocation:<B>, expiring at the end of the new cycle, or with
//     rollover M at the end of cycle k+M for the cycle k starting at B; debt
//     is repaid from it first, as from every grant.
//
// Entries of a boundary are dated at B, or at the org's last entry when that
// is later (an org's entries never go back in time). A catch-up performs every
// missed boundary in order, so the credits of a cycle that already ended are
// granted and expired at once, both in history.

const (
	// MaxCyclesPerRun bounds the boundaries one call performs for one org. An
	// org further behind (an anchor years in the past) stays due, and the next
	// sweep continues where this one stopped.
	MaxCyclesPerRun = 36
	// MaxCyclePage bounds the orgs of one AdvanceCycles call.
	MaxCyclePage = 5000
	// MaxClockSkew is how far past the ledger's clock AdvanceCycles may act:
	// a scheduler's tick instant may run a little ahead of a worker's clock.
	MaxClockSkew = 5 * time.Minute
)

// CycleReport is what AdvanceCycles did, or PreviewCycles would do, to one org.
type CycleReport struct {
	OrgID string `json:"org"`
	// Cycles are the boundaries performed, oldest first.
	Cycles []CycleStep `json:"cycles"`
	// Expired is every credit expired: at the boundaries (also over the
	// rollover cap) and lots that came due since.
	Expired       credits.Credits `json:"expired"`
	HoldsReleased int             `json:"holds_released"`
	BalanceAfter  credits.Credits `json:"balance_after"`
	Debt          credits.Credits `json:"debt"`
	NextCycleAt   time.Time       `json:"next_cycle_at"`
	// Behind is set when the org has more boundaries due than one call
	// performs (MaxCyclesPerRun); it stays due.
	Behind bool `json:"behind,omitempty"`
	// Error says why the org's boundaries could not be performed (its plan
	// is missing from the catalog); the org stays where it was, the other
	// orgs of the call advance.
	Error string `json:"error,omitempty"`
}

// CycleStep is one boundary: the start of a new cycle.
type CycleStep struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Plan  string    `json:"plan"`
	// Granted is the allocation; it expires at ExpiresAt. Repaid is the part
	// of it that went to debt.
	Granted   credits.Credits `json:"granted"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	Repaid    credits.Credits `json:"repaid"`
	// Carried is what was rolled over into the cycle (after the cap),
	// CapExpired what exceeded the cap and expired at Start.
	Carried    credits.Credits `json:"carried"`
	CapExpired credits.Credits `json:"cap_expired"`
	// Expired is every credit that expired at or before Start, CapExpired
	// included.
	Expired credits.Credits `json:"expired"`
}

func allocationKey(start time.Time) string {
	return "allocation:" + start.UTC().Format(time.RFC3339Nano)
}

func rolloverKey(start time.Time) string { return "rollover:" + start.UTC().Format(time.RFC3339Nano) }

func expiryKey(lotID int64) string { return fmt.Sprintf("expiry:%d", lotID) }

// AdvanceCycles performs everything due for the orgs as of now: every cycle
// boundary at or before now not performed yet (expiry, rollover, allocation;
// see the top of this file), lots whose expiry has passed and holds whose
// time is up. It locks the orgs in org-id order like every ledger write,
// reads them in one pipelined batch and writes them in another, so a page of
// a thousand orgs costs a few round trips. It is level-triggered and
// idempotent: a second call at the same now does nothing, concurrent calls
// for the same orgs perform each boundary once (the org's row is locked and
// read under the lock; the lot key allocation:<start> is unique per org).
//
// now may be in the past (backfill: only boundaries up to now are performed,
// though lots and holds due by the ledger's clock are expired as by every
// write), but not more than MaxClockSkew past the ledger's clock: use
// PreviewCycles to see the future. Reports come in org-id order, one per org.
func (l *Ledger) AdvanceCycles(ctx context.Context, tx pgx.Tx, orgIDs []string, now time.Time) ([]CycleReport, error) {
	if err := l.notAhead(now, "PreviewCycles"); err != nil {
		return nil, err
	}
	return l.advanceCycles(ctx, tx, orgIDs, now)
}

// notAhead refuses an instant more than MaxClockSkew past the ledger's
// clock: work is done as of now or a past instant; preview names the dry
// run that shows the future.
func (l *Ledger) notAhead(now time.Time, preview string) error {
	if clock := l.now(); now.After(clock.Add(MaxClockSkew)) {
		return invalid("at", "%s is after the ledger's clock (%s): preview the future with %s",
			now.UTC().Format(time.RFC3339), clock.Format(time.RFC3339), preview)
	}
	return nil
}

// rolledBack runs fn in a transaction of its own and rolls it back, even
// after ctx is cancelled: a dry run that changes nothing.
func rolledBack[T any](ctx context.Context, db TxBeginner, fn func(tx pgx.Tx) (T, error)) (T, error) {
	var zero T
	tx, err := db.Begin(ctx)
	if err != nil {
		return zero, mapError(fmt.Errorf("begin: %w", err))
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	out, err := fn(tx)
	if err != nil {
		return zero, mapError(err)
	}
	return out, nil
}

// pageOrgs checks a page of org ids (at most MaxCyclePage, each
// well-formed) and returns them sorted without repeats, the order the
// org rows are locked in.
func pageOrgs(orgIDs []string) ([]string, error) {
	if len(orgIDs) > MaxCyclePage {
		return nil, invalid("orgs", "at most %d orgs per call, got %d", MaxCyclePage, len(orgIDs))
	}
	for _, id := range orgIDs {
		if err := validOrgID(id); err != nil {
			return nil, err
		}
	}
	ids := slices.Clone(orgIDs)
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// PreviewCycles is a dry run of AdvanceCycles: it runs it in a transaction of
// its own and rolls it back, returning the reports, what each org would be
// granted, expired and rolled over. It changes nothing (it holds the orgs'
// locks while it runs, and the lot ids it draws are not reused). now may be
// any instant, also in the future.
func (l *Ledger) PreviewCycles(ctx context.Context, db TxBeginner, orgIDs []string, now time.Time) ([]CycleReport, error) {
	return rolledBack(ctx, db, func(tx pgx.Tx) ([]CycleReport, error) { return l.advanceCycles(ctx, tx, orgIDs, now) })
}

func (l *Ledger) advanceCycles(ctx context.Context, tx pgx.Tx, orgIDs []string, now time.Time) ([]CycleReport, error) {
	ids, err := pageOrgs(orgIDs)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	states, err := l.load(ctx, tx, ids, loadNeeds{cycles: true, expiredHolds: true, at: now, allLimits: true})
	if err != nil {
		return nil, err
	}
	reports := make([]CycleReport, len(ids))
	for i, id := range ids {
		reports[i] = l.advance(states[id], now)
		// Every sweep is also the alerts' safety net and the runway check,
		// and looks at the recharge gate (an org left low while its
		// cycle's cap was spent is charged once the next cycle begins).
		states[id].alertsForce = true
		states[id].rechargeCheck = true
	}
	if err := l.writeCycles(ctx, tx, states, ids); err != nil {
		return nil, err
	}
	return reports, nil
}

// writeCycles gives new lots their ids (expiry entries of lots granted and
// expired in this transaction name them in their key) and persists.
func (l *Ledger) writeCycles(ctx context.Context, tx pgx.Tx, states map[string]*orgState, ids []string) error {
	if err := assignLotIDs(ctx, tx, states, ids); err != nil {
		return err
	}
	for _, s := range states {
		for i := range s.entries {
			if e := &s.entries[i]; e.kind == "expiry" && e.key == "" {
				e.key = expiryKey(*e.lotID)
			}
		}
	}
	if err := l.persist(ctx, tx, states); err != nil {
		return fmt.Errorf("cycles: %w", err)
	}
	return nil
}

// advance performs the org's due boundaries up to now, then expires what is
// due and releases elapsed holds.
func (l *Ledger) advance(s *orgState, now time.Time) CycleReport {
	rep := CycleReport{OrgID: s.org.ID, Cycles: []CycleStep{}}
	from := s.org.AnchorFrom
	if now.After(s.at) {
		s.at = now // acting for an instant a little ahead of this worker's clock
	}
	for n := 0; !s.org.NextCycleAt.After(now); n++ {
		if n == MaxCyclesPerRun {
			rep.Behind = true
			break
		}
		step, err := l.performBoundary(s)
		if err != nil {
			rep.Error = err.Error()
			break
		}
		rep.Cycles = append(rep.Cycles, step)
		rep.Expired += step.Expired
	}
	rep.Expired += credits.Credits(s.expireLotsUntil(s.at))
	rep.HoldsReleased = s.releaseExpiredHolds()
	if moved := s.org.AnchorFrom != from; moved || s.at.Before(s.cycle.Start) || !s.at.Before(s.cycle.End) {
		s.cycle = s.anchor.CycleAt(s.at) // the cycle of the transaction's instant, for any usage after this
	}
	rep.BalanceAfter, rep.Debt, rep.NextCycleAt = credits.Credits(s.available), credits.Credits(s.debt), s.org.NextCycleAt
	return rep
}

// performBoundary performs the org's next boundary. It checks the terms it
// needs before it changes anything, so an error leaves the org as it was.
func (l *Ledger) performBoundary(s *orgState) (CycleStep, error) {
	b := s.org.NextCycleAt
	ending, err := l.Terms(s.org) // the rollover cap is that of the cycle that ends at b
	if err != nil {
		return CycleStep{}, err
	}
	next := s.org
	applied := false
	if p := next.Pending; p != nil && !p.From.After(b) {
		applied = true
		next.Plan, next.Overrides, next.Pending = p.Plan, p.Overrides, nil
		if !p.Anchor.Equal(next.Anchor) || p.TimeZone != next.TimeZone {
			from := b
			next.Anchor, next.TimeZone, next.AnchorFrom = p.Anchor, p.TimeZone, &from
		}
	}
	starting, err := l.Terms(next)
	if err != nil {
		return CycleStep{}, err
	}
	anchor := s.anchor
	if next.AnchorFrom != s.org.AnchorFrom { // the pending change moved the anchor
		if anchor, err = next.BillingAnchor(); err != nil {
			return CycleStep{}, fmt.Errorf("org %s: %w", s.org.ID, err)
		}
	}

	saved := s.at
	s.at = b
	if s.lastAt.After(b) {
		s.at = s.lastAt.UTC()
	}
	defer func() { s.at = saved }()

	step := CycleStep{Start: b, Plan: starting.Plan}
	expired := s.expireLotsUntil(b)
	carried, capExpired := s.rollOver(b, ending.RolloverCap)
	step.Carried, step.CapExpired = credits.Credits(carried), credits.Credits(capExpired)
	step.Expired = credits.Credits(expired + capExpired)

	s.org, s.anchor = next, anchor
	// The cycle starting at b ends at the schedule's first start after b.
	// b is a start of the schedule unless the time-zone rules changed since
	// it was computed; the cycle still starts at b, so keys only grow.
	end := anchor.CycleAt(b).End.UTC()
	step.End = end
	if amount := int64(starting.MonthlyCredits); amount > 0 {
		expires := end
		for range starting.RolloverMonths {
			expires = anchor.CycleAt(expires).End.UTC()
		}
		_, repaid := s.addLot("grant", SourceAllocation, amount, &expires, allocationKey(b), entryRow{})
		step.Granted, step.Repaid, step.ExpiresAt = starting.MonthlyCredits, credits.Credits(repaid), &expires
	}
	s.org.NextCycleAt = end
	s.org.CyclesDone++
	s.cyclesDirty = true
	s.termsDirty = s.termsDirty || applied
	return step, nil
}

// expireLotsUntil expires every open lot whose expiry is at or before h, in
// expiry order, each with an entry dated at its expiry (or at the org's last
// entry, when that is later). It returns the credits expired.
func (s *orgState) expireLotsUntil(h time.Time) (expired int64) {
	for _, lot := range s.lots {
		if lot.remaining == 0 || lot.expiresAt == nil || lot.expiresAt.After(h) {
			continue
		}
		at := lot.expiresAt.UTC()
		if at.Before(s.lastAt) {
			at = s.lastAt.UTC()
		}
		id := lot.id
		key := "" // a lot granted in this transaction has no id yet: writeCycles sets the key
		if id > 0 {
			key = expiryKey(id)
		}
		s.post(entryRow{kind: "expiry", lotID: &id, lotDelta: -lot.remaining, key: key, at: at})
		expired += lot.remaining
		lot.remaining = 0
		lot.dirty = true
	}
	return expired
}

// rollsOver says whether the lot's credits are carried over boundary b:
// allocation credits still open whose lot expires after b.
func rollsOver(lot *lotState, b time.Time) bool {
	return lot.source == SourceAllocation && lot.remaining > 0 && lot.expiresAt != nil && lot.expiresAt.After(b)
}

// rollOver carries the open allocation credits over boundary b. What
// exceeds capacity (nil: no cap) expires at b, taken in consumption order:
// soonest-expiring lots first, then the oldest. A rollover entry records what
// was carried; there is none when nothing was left to carry.
func (s *orgState) rollOver(b time.Time, capacity *credits.Credits) (carried, capExpired int64) {
	for _, lot := range s.lots {
		if rollsOver(lot, b) {
			carried += lot.remaining
		}
	}
	if carried == 0 {
		return 0, 0
	}
	key := rolloverKey(b)
	if capacity != nil && carried > int64(*capacity) {
		excess := carried - int64(*capacity)
		for _, lot := range s.lots {
			if excess == 0 {
				break
			}
			if !rollsOver(lot, b) {
				continue
			}
			take := min(lot.remaining, excess)
			lot.remaining -= take
			lot.dirty = true
			excess -= take
			capExpired += take
			id := lot.id
			s.post(entryRow{kind: "expiry", lotID: &id, lotDelta: -take, key: key})
		}
		carried -= capExpired
	}
	c := carried
	s.post(entryRow{kind: "rollover", key: key, carried: &c})
	return carried, capExpired
}

// nextExpiry is the soonest expiry of the org's open lots (nil when none
// expires): balances.next_expiry_at, which the expiry sweep pages by.
func (s *orgState) nextExpiry() *time.Time {
	var next *time.Time
	for _, lot := range s.lots {
		if lot.remaining > 0 && lot.expiresAt != nil && (next == nil || lot.expiresAt.Before(*next)) {
			next = lot.expiresAt
		}
	}
	return next
}

// loadTermsSQL reads the orgs' plan terms again, in the engine's load batch
// right after the lock. A locking read returns the newest version of the
// rows it locks (balances, with the cycle state) but the rows it only joins
// (orgs) as they were when the statement began: a call that waited for
// another to change an org's terms (a plan change, or a boundary applying a
// pending one) would read the old terms. This statement runs after the lock
// was granted, so it sees them.
const loadTermsSQL = `
SELECT x.* FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT o.org_id, o.plan, o.monthly_credits, o.rollover_months, o.rollover_cap, o.included_runs, o.anchor,
           o.time_zone, o.anchor_from, o.pending
    FROM orgs o WHERE o.org_id = k.org_id
    OFFSET 0
) x ON true`

// loadTerms replaces the terms read with the lock by the fresh ones.
func loadTerms(br pgx.BatchResults, states map[string]*orgState) error {
	rows, _ := br.Query()
	for rows.Next() {
		var r orgRow
		o := &r.org
		if err := rows.Scan(&o.ID, &o.Plan, &r.monthly, &r.rolloverMonths, &r.rolloverCap, &r.runs, &o.Anchor,
			&o.TimeZone, &r.anchorFrom, &r.pending); err != nil {
			return fmt.Errorf("load terms: %w", err)
		}
		fresh, err := r.finish()
		if err != nil {
			return err
		}
		s := states[o.ID]
		rebase := !fresh.Anchor.Equal(s.org.Anchor) || fresh.TimeZone != s.org.TimeZone || !eqTimePtr(fresh.AnchorFrom, s.org.AnchorFrom)
		s.org.Plan, s.org.Overrides, s.org.Anchor, s.org.TimeZone = fresh.Plan, fresh.Overrides, fresh.Anchor, fresh.TimeZone
		s.org.AnchorFrom, s.org.Pending = fresh.AnchorFrom, fresh.Pending
		if rebase {
			if s.anchor, err = s.org.BillingAnchor(); err != nil {
				return fmt.Errorf("org %s: %w", o.ID, err)
			}
			s.cycle = s.anchor.CycleAt(s.at)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load terms: %w", err)
	}
	return nil
}

func eqTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

const updateOrgTermsSQL = `
UPDATE orgs SET plan = u.plan, monthly_credits = u.monthly_credits, rollover_months = u.rollover_months,
       rollover_cap = u.rollover_cap, included_runs = u.included_runs, anchor = u.anchor, time_zone = u.time_zone,
       anchor_from = u.anchor_from, pending = u.pending::jsonb
FROM unnest($1::text[], $2::text[], $3::int8[], $4::int4[], $5::int8[], $6::int8[], $7::timestamptz[], $8::text[],
            $9::timestamptz[], $10::text[])
     AS u(org_id, plan, monthly_credits, rollover_months, rollover_cap, included_runs, anchor, time_zone,
          anchor_from, pending)
WHERE orgs.org_id = u.org_id`

// queueOrgUpdates adds to persist's batch the org rows whose terms a plan
// change or a boundary changed. (The cycle state itself is in balances,
// written with the balance.)
func queueOrgUpdates(b *pgx.Batch, states map[string]*orgState, orgIDs []string) {
	var (
		org, plan, zone         []string
		monthly, capacity, runs []*int64
		months                  []*int32
		anchor                  []time.Time
		from                    []*time.Time
		pending                 []*string
	)
	for _, id := range orgIDs {
		s := states[id]
		if !s.termsDirty {
			continue
		}
		o := s.org
		org, plan, zone = append(org, id), append(plan, o.Plan), append(zone, o.TimeZone)
		monthly, capacity = append(monthly, int64Ptr(o.Overrides.MonthlyCredits)), append(capacity, int64Ptr(o.Overrides.RolloverCap))
		runs = append(runs, o.Overrides.IncludedRuns)
		var m *int32
		if o.Overrides.RolloverMonths != nil {
			v := int32(*o.Overrides.RolloverMonths)
			m = &v
		}
		months = append(months, m)
		anchor, from = append(anchor, o.Anchor), append(from, o.AnchorFrom)
		var p *string
		if o.Pending != nil {
			js, err := json.Marshal(o.Pending)
			if err != nil {
				panic(fmt.Sprintf("ledger: pending terms: %v", err)) // a plain struct
			}
			v := string(js)
			p = &v
		}
		pending = append(pending, p)
	}
	if len(org) > 0 {
		b.Queue(updateOrgTermsSQL, org, plan, monthly, months, capacity, runs, anchor, zone, from, pending)
	}
}
