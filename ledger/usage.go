package ledger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/creditd/creditd/ledger/credits"
)

// UsageEvent is one use of a metered feature. Exactly one of Amount (credits),
// Feature with Units (priced by the catalog's feature rate) or Runs (counted
// against the plan's included runs, overage drawn from the balance) says what
// it costs; Feature may also label an Amount or Runs event.
type UsageEvent struct {
	OrgID      string           `json:"org_id"`
	EventID    string           `json:"event_id"`
	Amount     *credits.Credits `json:"amount,omitempty"`
	Feature    string           `json:"feature,omitempty"`
	Units      int64            `json:"units,omitempty"`
	Runs       int64            `json:"runs,omitempty"`
	Team       string           `json:"team,omitempty"`
	User       string           `json:"user,omitempty"`
	OccurredAt time.Time        `json:"occurred_at,omitzero"`
	Metadata   json.RawMessage  `json:"metadata,omitempty"`
	// TaskID names the queue task that carried the event; it is recorded on
	// the entries but is not part of the request: a redelivered task with
	// another id is still a replay.
	TaskID string `json:"-"`
}

// Rejection reasons of usage events.
const (
	ReasonInsufficientCredits = "insufficient_credits"
	ReasonTeamLimit           = "team_limit"
	ReasonUserLimit           = "user_limit"
	ReasonMonthlyCap          = "monthly_cap"
)

// UsageStatus is the outcome of a usage event.
type UsageStatus string

// Usage outcomes.
const (
	UsageApplied  UsageStatus = "applied"
	UsageRejected UsageStatus = "rejected"
)

// UsageResult is what happened to a usage event. Replaying the event returns
// the same result with Replayed set.
type UsageResult struct {
	OrgID        string          `json:"org"`
	EventID      string          `json:"event_id"`
	Status       UsageStatus     `json:"status"`
	Reason       string          `json:"reason,omitempty"`
	Cost         credits.Credits `json:"cost"`
	Debt         credits.Credits `json:"debt"`
	OverageRuns  int64           `json:"overage_runs,omitempty"`
	BalanceAfter credits.Credits `json:"balance_after"`
	Replayed     bool            `json:"replayed,omitempty"`
}

// maxMetadata bounds the metadata kept with an event.
const maxMetadata = 4096

// Validate checks the event without touching the database.
func (e UsageEvent) Validate() error {
	_, err := e.validate()
	return err
}

// validate checks the event and returns its metadata in the canonical form
// that is stored.
func (e UsageEvent) validate() ([]byte, error) {
	if err := validOrgID(e.OrgID); err != nil {
		return nil, err
	}
	if err := validKey("event_id", e.EventID); err != nil {
		return nil, err
	}
	if strings.HasPrefix(e.EventID, CapturePrefix) {
		return nil, invalid("event_id", "ids starting with %q are reserved for captured holds", CapturePrefix)
	}
	for _, f := range []struct{ name, v string }{{"feature", e.Feature}, {"team", e.Team}, {"user", e.User}} {
		if err := validLabel(f.name, f.v); err != nil {
			return nil, err
		}
	}
	kinds := 0
	if e.Amount != nil {
		kinds++
		if err := validAmount("amount", int64(*e.Amount)); err != nil {
			return nil, err
		}
	}
	if e.Runs != 0 {
		kinds++
		if e.Runs < 0 {
			return nil, invalid("runs", "must be positive")
		}
	}
	if e.Units < 0 {
		return nil, invalid("units", "must be positive")
	}
	if e.Units > 0 && (e.Amount != nil || e.Runs != 0) {
		return nil, invalid("units", "only with feature, not with amount or runs")
	}
	if kinds == 0 && e.Feature == "" {
		return nil, invalid("amount", "one of amount, feature (with units) or runs is required")
	}
	if kinds > 1 {
		return nil, invalid("runs", "give either amount or runs, not both")
	}
	if len(e.Metadata) > maxMetadata {
		return nil, invalid("metadata", "larger than %d bytes", maxMetadata)
	}
	return canonicalMetadata(e.Metadata)
}

// canonicalMetadata decodes metadata and encodes it again, which is what is
// stored: Go's decoder turns an unpaired UTF-16 surrogate escape into U+FFFD,
// which Postgres' jsonb accepts, where it would refuse the escape itself. A
// NUL character, which jsonb cannot hold at all, is refused.
func canonicalMetadata(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalid("metadata", "not valid JSON")
	}
	if hasNUL(v) {
		return nil, invalid("metadata", "contains a NUL character")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("metadata", "%v", err)
	}
	return out, nil
}

func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		return slices.ContainsFunc(x, hasNUL)
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// RecordUsage applies usage events, which may belong to many orgs, in the
// caller's transaction: every org is locked once and its events applied in
// the order given. Events already applied (same org and event id) return
// their first result; the same event id with other content is ErrConflict.
// An event that fails validation fails the whole call with a
// *ValidationError before anything is written, so callers validate each
// event first when they want to archive bad ones individually.
func (l *Ledger) RecordUsage(ctx context.Context, tx pgx.Tx, events []UsageEvent) ([]UsageResult, error) {
	var needs loadNeeds
	orgs := make([]string, 0, 1)
	// Everything about an event that does not depend on its org's state is
	// worked out here, before load takes the orgs' locks: on a busy org the
	// lock, not the machine, is what bounds throughput.
	prepared := make([]preparedUsage, len(events))
	for i := range events {
		p, err := l.prepareUsage(events[i])
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		prepared[i] = p
		orgs = append(orgs, events[i].OrgID)
		needs.events = append(needs.events, orgItem{events[i].OrgID, events[i].EventID})
		if events[i].Team != "" {
			needs.teams = append(needs.teams, events[i].Team)
		}
		if events[i].User != "" {
			needs.users = append(needs.users, events[i].User)
		}
	}
	if len(events) == 0 {
		return nil, nil
	}
	slices.SortFunc(needs.events, func(a, b orgItem) int { return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.id, b.id)) })
	needs.events = slices.Compact(needs.events)
	needs.expiredHolds = true // elapsed holds must not keep counting against the balance
	needs.teams = compact(needs.teams)
	needs.users = compact(needs.users)
	states, err := l.load(ctx, tx, orgs, needs)
	if err != nil {
		return nil, err
	}
	for _, s := range states {
		s.releaseExpiredHolds()
	}
	results := make([]UsageResult, len(events))
	for i, ev := range events {
		r, err := l.applyUsage(states[ev.OrgID], &prepared[i])
		if err != nil {
			return nil, fmt.Errorf("event %s/%s: %w", ev.OrgID, ev.EventID, err)
		}
		results[i] = r
	}
	if err := l.persist(ctx, tx, states); err != nil {
		return nil, usageRace(err)
	}
	return results, nil
}

// usageRace makes ErrRetry of the one duplicate key RecordUsage expects:
// load looks for applied events before it takes the orgs' locks, so an event
// another transaction committed in between is written again here and fails
// on usage_events' primary key. The retry finds it and replays it.
func usageRace(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "usage_events_pkey" {
		return fmt.Errorf("%w: usage event applied meanwhile: %w", ErrRetry, err)
	}
	return err
}

func compact(ss []string) []string {
	slices.Sort(ss)
	return slices.Compact(ss)
}

func usageKey(eventID string) string { return "usage:" + eventID }

// usageRequest is what identifies a usage event for the idempotency check.
type usageRequest struct {
	Amount     *credits.Credits `json:"amount"`
	Feature    string           `json:"feature"`
	Units      int64            `json:"units"`
	Runs       int64            `json:"runs"`
	Team       string           `json:"team"`
	User       string           `json:"user"`
	OccurredAt time.Time        `json:"occurred_at"`
	Metadata   json.RawMessage  `json:"metadata"`
}

// preparedUsage is a validated event with what can be known about it before
// its org is locked.
type preparedUsage struct {
	ev       UsageEvent // OccurredAt in UTC at microseconds, still zero when not given
	key      string
	hash     []byte // of what the caller sent, for the idempotency check
	metadata []byte // canonical
	// cost is the event's price when it does not depend on the org (amount
	// and feature events); runs events are priced under the lock. costErr
	// is pricing's refusal, reported only if the event is not a replay, as
	// when it was priced under the lock: a replay returns its first result
	// whatever the catalog says now.
	cost    int64
	costErr error
}

func (l *Ledger) prepareUsage(ev UsageEvent) (preparedUsage, error) {
	metadata, err := ev.validate()
	if err != nil {
		return preparedUsage{}, err
	}
	// Hash what the caller sent: an event without occurred_at is stamped with
	// the time it is applied, which a redelivery must not turn into a conflict.
	ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
	p := preparedUsage{ev: ev, key: usageKey(ev.EventID), metadata: metadata,
		hash: hashRequest(usageRequest{ev.Amount, ev.Feature, ev.Units, ev.Runs, ev.Team, ev.User, ev.OccurredAt, ev.Metadata})}
	if ev.Runs == 0 {
		if err := l.CheckFeature(ev); err != nil {
			return preparedUsage{}, err
		}
		p.cost, p.costErr = l.staticPrice(ev)
	}
	return p, nil
}

func (l *Ledger) applyUsage(s *orgState, p *preparedUsage) (UsageResult, error) {
	ev := p.ev
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = s.at
	}
	var res UsageResult
	if found, err := s.replay(p.key, p.hash, &res); found {
		res.Replayed = true
		return res, err
	}

	if p.costErr != nil {
		return UsageResult{}, p.costErr
	}
	cost, overage := p.cost, int64(0)
	if ev.Runs > 0 {
		var err error
		if cost, overage, err = l.priceRuns(s, ev.Runs); err != nil {
			return UsageResult{}, err
		}
	}
	res = UsageResult{OrgID: s.org.ID, EventID: ev.EventID, Status: UsageApplied, Cost: credits.Credits(cost), OverageRuns: overage}
	switch {
	case ev.Team != "" && s.overLimit("team", ev.Team, cost):
		res.Reason = ReasonTeamLimit
	case ev.User != "" && s.overLimit("user", ev.User, cost):
		res.Reason = ReasonUserLimit
	case s.org.MonthlyCap != nil && cost > 0 && s.counter("org", "").credits+cost > int64(*s.org.MonthlyCap):
		res.Reason = ReasonMonthlyCap
	case s.org.Policy == PolicyReject && cost > s.available:
		res.Reason = ReasonInsufficientCredits
	}
	row := usageRow{
		eventID: ev.EventID, feature: opt(ev.Feature), team: opt(ev.Team), user: opt(ev.User),
		occurredAt: ev.OccurredAt, amount: cost, overageRuns: overage, metadata: p.metadata,
	}
	if ev.Units > 0 || (ev.Amount == nil && ev.Runs == 0) {
		units := max(ev.Units, 1)
		row.units = &units
	}
	if ev.Runs > 0 {
		runs := ev.Runs
		row.runs = &runs
	}
	if res.Reason != "" {
		res.Status = UsageRejected
		row.status, row.reason = string(UsageRejected), &res.Reason
	} else {
		row.status = string(UsageApplied)
		if cost > 0 {
			debt := s.consume(cost, entryRow{kind: "usage", key: p.key, eventID: &ev.EventID, team: opt(ev.Team),
				user: opt(ev.User), feature: opt(ev.Feature), taskID: opt(ev.TaskID)})
			res.Debt = credits.Credits(debt)
		}
		s.count(ev.Team, ev.User, cost, ev.Runs)
	}
	res.BalanceAfter = credits.Credits(s.available)
	row.hash, row.debt, row.balance = p.hash, int64(res.Debt), s.available
	s.events = append(s.events, row)
	s.remember(p.key, "usage", p.hash, res)
	return res, nil
}

// staticPrice returns the credits an amount or feature event costs, which
// does not depend on its org.
func (l *Ledger) staticPrice(ev UsageEvent) (int64, error) {
	if ev.Amount != nil {
		return int64(*ev.Amount), nil
	}
	rate, ok := l.catalog.FeatureRate(ev.Feature)
	if !ok {
		return 0, invalid("feature", "unknown feature %q", ev.Feature)
	}
	c, ok := rate.MulInt(max(ev.Units, 1))
	if !ok || c > MaxAmount {
		return 0, invalid("units", "cost larger than the maximum of 1000000000000 credits")
	}
	return int64(c), nil
}

// priceRuns returns what runs cost the org past its plan's included runs,
// and how many of them were past it.
func (l *Ledger) priceRuns(s *orgState, runs int64) (cost, overageRuns int64, err error) {
	plan, err := l.Terms(s.org) // the plan's included runs, or the org's override
	if err != nil {
		return 0, 0, err
	}
	before := s.counter("org", "").runs
	overBefore := max(0, before-plan.IncludedRuns)
	overAfter := max(0, before+runs-plan.IncludedRuns)
	a, err := plan.Overage.Cost(overAfter)
	if err != nil {
		return 0, 0, invalid("runs", "overage cost: %v", err)
	}
	b, err := plan.Overage.Cost(overBefore)
	if err != nil {
		return 0, 0, invalid("runs", "overage cost: %v", err)
	}
	return int64(a - b), overAfter - overBefore, nil
}

func (s *orgState) overLimit(scope, subject string, cost int64) bool {
	limit, ok := s.limits[counterKey{scope, subject}]
	return ok && cost > 0 && s.counter(scope, subject).credits+cost > limit
}

// CheckFeature refuses an event priced by a feature the catalog does not
// know, so that callers can turn it away before it reaches the queue (the
// worker would refuse it too).
func (l *Ledger) CheckFeature(ev UsageEvent) error {
	if ev.Amount != nil || ev.Runs > 0 {
		return nil
	}
	if _, ok := l.catalog.FeatureRate(ev.Feature); !ok {
		return invalid("feature", "unknown feature %q", ev.Feature)
	}
	return nil
}
