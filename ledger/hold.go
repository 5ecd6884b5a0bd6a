package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Hold statuses.
const (
	HoldActive   = "active"
	HoldCaptured = "captured"
	HoldReleased = "released"
	HoldExpired  = "expired"
)

// MaxHoldTTL bounds how long a reservation may stay open.
const MaxHoldTTL = 7 * 24 * time.Hour

// Reservation asks to set credits aside before work starts.
type Reservation struct {
	OrgID   string          `json:"org_id"`
	HoldID  string          `json:"hold_id"`
	Amount  credits.Credits `json:"amount"`
	TTL     time.Duration   `json:"ttl"`
	Feature string          `json:"feature,omitempty"`
	Team    string          `json:"team,omitempty"`
	User    string          `json:"user,omitempty"`
}

// HoldResult is the state of a hold after an operation.
type HoldResult struct {
	OrgID        string           `json:"org"`
	HoldID       string           `json:"hold_id"`
	Status       string           `json:"status"`
	Amount       credits.Credits  `json:"amount"`
	Captured     *credits.Credits `json:"captured,omitempty"`
	Debt         credits.Credits  `json:"debt"`
	ExpiresAt    time.Time        `json:"expires_at"`
	BalanceAfter credits.Credits  `json:"balance_after"`
	Replayed     bool             `json:"replayed,omitempty"`
}

// Validate checks the reservation without touching the database.
func (r Reservation) Validate() error {
	if err := validOrgID(r.OrgID); err != nil {
		return err
	}
	if err := validKey("hold_id", r.HoldID); err != nil {
		return err
	}
	if err := validAmount("amount", int64(r.Amount)); err != nil {
		return err
	}
	if r.TTL < time.Second || r.TTL > MaxHoldTTL {
		return invalid("ttl_seconds", "must be between 1 second and %s", MaxHoldTTL)
	}
	for _, f := range []struct{ name, v string }{{"feature", r.Feature}, {"team", r.Team}, {"user", r.User}} {
		if err := validLabel(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func holdKey(op, holdID string) string { return op + ":" + holdID }

// CapturePrefix starts the usage event id under which a captured hold is
// recorded ("capture:HOLD"); applications cannot use it for their events.
const CapturePrefix = "capture:"

// Reserve sets credits aside: they count against the balance until the hold
// is captured, released or expires. It fails with ErrInsufficientCredits when
// the available balance cannot cover the amount (whatever the org's policy:
// new operations pause until credits are bought or the next cycle begins).
func (l *Ledger) Reserve(ctx context.Context, tx pgx.Tx, r Reservation) (HoldResult, error) {
	if err := r.Validate(); err != nil {
		return HoldResult{}, err
	}
	key := holdKey("hold", r.HoldID)
	states, err := l.load(ctx, tx, []string{r.OrgID}, loadNeeds{keys: []string{key}, holds: []string{r.HoldID}, expiredHolds: true})
	if err != nil {
		return HoldResult{}, err
	}
	s := states[r.OrgID]
	s.releaseExpiredHolds()
	hash := hashRequest(struct {
		Amount              credits.Credits
		TTL                 time.Duration
		Feature, Team, User string
	}{r.Amount, r.TTL, r.Feature, r.Team, r.User})
	var res HoldResult
	if found, err := s.replay(key, hash, &res); found {
		return replayed(ctx, l, tx, states, res, err)
	}
	if s.holds[r.HoldID] != nil {
		return HoldResult{}, fmt.Errorf("%w: hold %s exists already", ErrConflict, r.HoldID)
	}
	if int64(r.Amount) > s.available {
		return HoldResult{}, fmt.Errorf("%w: org %s has %s available, hold needs %s", ErrInsufficientCredits,
			r.OrgID, credits.Credits(s.available), r.Amount)
	}
	h := &holdState{id: r.HoldID, amount: int64(r.Amount), status: HoldActive, feature: r.Feature, team: r.Team,
		user: r.User, createdAt: s.at, expiresAt: s.at.Add(r.TTL).Truncate(time.Microsecond), isNew: true}
	s.holds[h.id] = h
	s.post(entryRow{kind: "hold", key: key, holdID: &h.id, heldDelta: h.amount, feature: opt(r.Feature),
		team: opt(r.Team), user: opt(r.User)})
	res = s.holdResult(h, 0)
	s.remember(key, "hold", hash, res)
	return res, l.persist(ctx, tx, states)
}

// Capture turns a hold into usage of amount credits, which may be more or
// less than was held: the hold is released and amount is spent in
// consumption order. The part within the hold is never refused (the work is
// done); a part past the hold follows the org's policy: under reject it
// fails with ErrInsufficientCredits when the balance cannot cover it.
// Capturing a hold twice with the same amount returns the first result.
func (l *Ledger) Capture(ctx context.Context, tx pgx.Tx, orgID, holdID string, amount credits.Credits, taskID string) (HoldResult, error) {
	if err := validOrgID(orgID); err != nil {
		return HoldResult{}, err
	}
	if err := validKey("hold_id", holdID); err != nil {
		return HoldResult{}, err
	}
	if amount < 0 {
		return HoldResult{}, invalid("amount", "must not be negative")
	}
	if amount > MaxAmount {
		return HoldResult{}, invalid("amount", "larger than the maximum of 1000000000000 credits")
	}
	key := holdKey("capture", holdID)
	// Every limit is loaded: the hold's team and user are known only once it
	// is read, and usage alerts watch their limits.
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{keys: []string{key}, holds: []string{holdID}, expiredHolds: true, allLimits: true})
	if err != nil {
		return HoldResult{}, err
	}
	s := states[orgID]
	hash := hashRequest(struct{ Amount credits.Credits }{amount})
	var res HoldResult
	if found, err := s.replay(key, hash, &res); found {
		return replayed(ctx, l, tx, states, res, err)
	}
	s.releaseExpiredHolds()
	h := s.holds[holdID]
	if h == nil {
		return HoldResult{}, fmt.Errorf("hold %s: %w", holdID, ErrNotFound)
	}
	if h.status != HoldActive {
		return HoldResult{}, fmt.Errorf("%w: hold %s is %s", ErrConflict, holdID, h.status)
	}
	if s.org.Policy == PolicyReject && int64(amount) > h.amount && int64(amount)-h.amount > s.available {
		return HoldResult{}, fmt.Errorf("%w: capture exceeds the hold by %s and org %s has %s available",
			ErrInsufficientCredits, credits.Credits(int64(amount)-h.amount), orgID, credits.Credits(s.available))
	}
	tmpl := entryRow{kind: "capture", key: key, eventID: &key, holdID: &h.id, feature: opt(h.feature), team: opt(h.team),
		user: opt(h.user), taskID: opt(taskID)}
	release := tmpl
	release.heldDelta = -h.amount
	s.post(release)
	spend := tmpl
	spend.holdID = nil
	debt := s.consume(int64(amount), spend)
	captured := int64(amount)
	h.status, h.captured, h.closedAt, h.dirty = HoldCaptured, &captured, &s.at, true
	s.count(h.team, h.user, captured, 0)
	s.events = append(s.events, usageRow{eventID: key, status: string(UsageApplied), feature: opt(h.feature),
		team: opt(h.team), user: opt(h.user), occurredAt: s.at, amount: captured, hash: hash, debt: debt,
		balance: s.available})
	res = s.holdResult(h, debt)
	s.remember(key, "capture", hash, res)
	return res, l.persist(ctx, tx, states)
}

// Release gives a hold's credits back without spending them. Releasing a
// hold that was already released or expired returns its state.
func (l *Ledger) Release(ctx context.Context, tx pgx.Tx, orgID, holdID string) (HoldResult, error) {
	if err := validOrgID(orgID); err != nil {
		return HoldResult{}, err
	}
	if err := validKey("hold_id", holdID); err != nil {
		return HoldResult{}, err
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{holds: []string{holdID}, expiredHolds: true})
	if err != nil {
		return HoldResult{}, err
	}
	s := states[orgID]
	s.releaseExpiredHolds()
	h := s.holds[holdID]
	if h == nil {
		return HoldResult{}, fmt.Errorf("hold %s: %w", holdID, ErrNotFound)
	}
	switch h.status {
	case HoldActive:
		s.releaseHold(h, HoldReleased)
	case HoldCaptured:
		return HoldResult{}, fmt.Errorf("%w: hold %s was captured", ErrConflict, holdID)
	}
	return s.holdResult(h, 0), l.persist(ctx, tx, states)
}

// Expired is what ExpireDue did to an org.
type Expired struct {
	OrgID        string          `json:"org"`
	Credits      credits.Credits `json:"credits"`
	Lots         int             `json:"lots"`
	Holds        int             `json:"holds"`
	BalanceAfter credits.Credits `json:"balance_after"`
}

// ExpireDue expires the org's lots whose expiry has passed and releases its
// holds whose time is up, each with an entry. It is level-triggered: it acts
// on what is due now, and running it again does nothing more.
func (l *Ledger) ExpireDue(ctx context.Context, tx pgx.Tx, orgID string) (Expired, error) {
	if err := validOrgID(orgID); err != nil {
		return Expired{}, err
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{expiredHolds: true})
	if err != nil {
		return Expired{}, err
	}
	s := states[orgID]
	res := Expired{OrgID: orgID, Holds: s.releaseExpiredHolds()}
	for _, e := range s.entries {
		if e.kind == "expiry" {
			res.Credits -= credits.Credits(e.amount)
			res.Lots++
		}
	}
	res.BalanceAfter = credits.Credits(s.available)
	return res, l.persist(ctx, tx, states)
}

// releaseExpiredHolds releases the holds whose time is up, soonest first, so
// the history reads the same however the holds were loaded.
func (s *orgState) releaseExpiredHolds() int {
	var due []*holdState
	for _, h := range s.holds {
		if h.status == HoldActive && !h.expiresAt.After(s.at) {
			due = append(due, h)
		}
	}
	slices.SortFunc(due, func(a, b *holdState) int {
		if c := a.expiresAt.Compare(b.expiresAt); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, h := range due {
		s.releaseHold(h, HoldExpired)
	}
	return len(due)
}

func (s *orgState) releaseHold(h *holdState, status string) {
	s.post(entryRow{kind: "release", key: holdKey("release", h.id), holdID: &h.id, heldDelta: -h.amount})
	h.status, h.closedAt, h.dirty = status, &s.at, true
}

func (s *orgState) holdResult(h *holdState, debt int64) HoldResult {
	r := HoldResult{OrgID: s.org.ID, HoldID: h.id, Status: h.status, Amount: credits.Credits(h.amount),
		Debt: credits.Credits(debt), ExpiresAt: h.expiresAt, BalanceAfter: credits.Credits(s.available)}
	if h.captured != nil {
		c := credits.Credits(*h.captured)
		r.Captured = &c
	}
	return r
}
