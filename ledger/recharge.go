package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// PaymentMethod is an org's saved card: Stripe's ids and what an admin needs
// to recognise it. Never more card data.
type PaymentMethod struct {
	OrgID           string    `json:"org"`
	CustomerID      string    `json:"customer_id"`
	PaymentMethodID string    `json:"payment_method_id"`
	Brand           string    `json:"brand,omitempty"`
	Last4           string    `json:"last4,omitempty"`
	UpdatedAt       time.Time `json:"updated_at"`
}

var (
	customerIDPattern      = regexp.MustCompile(`^cus_[A-Za-z0-9]{1,250}$`)
	paymentMethodIDPattern = regexp.MustCompile(`^(pm|card)_[A-Za-z0-9]{1,250}$`)
	brandPattern           = regexp.MustCompile(`^[a-z_]{1,32}$`)
	last4Pattern           = regexp.MustCompile(`^[0-9]{4}$`)
)

// Validate checks the ids' shapes without touching the database.
func (p PaymentMethod) Validate() error {
	switch {
	case validOrgID(p.OrgID) != nil:
		return validOrgID(p.OrgID)
	case !customerIDPattern.MatchString(p.CustomerID):
		return invalid("customer", "%q is not a Stripe customer id (cus_...)", p.CustomerID)
	case !paymentMethodIDPattern.MatchString(p.PaymentMethodID):
		return invalid("payment_method", "%q is not a Stripe payment method id (pm_...)", p.PaymentMethodID)
	case p.Brand != "" && !brandPattern.MatchString(p.Brand):
		return invalid("brand", "%q is not a card brand", p.Brand)
	case p.Last4 != "" && !last4Pattern.MatchString(p.Last4):
		return invalid("last4", "must be four digits")
	}
	return nil
}

const upsertPaymentMethodSQL = `
INSERT INTO payment_methods (org_id, customer_id, payment_method_id, brand, last4, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (org_id) DO UPDATE SET customer_id = excluded.customer_id, payment_method_id = excluded.payment_method_id,
    brand = excluded.brand, last4 = excluded.last4, updated_at = excluded.updated_at`

// A card saved again ends a pause: the admin has updated it.
const unpauseRechargeSQL = `UPDATE recharge_settings SET paused = false, updated_at = $2 WHERE org_id = $1 AND paused`

// SetPaymentMethod saves the org's default card for off-session charges.
// Saving charges nothing. A saved card ends an auto-recharge pause left by a
// failed charge. A payment method Stripe detached is refused.
func (l *Ledger) SetPaymentMethod(ctx context.Context, tx pgx.Tx, p PaymentMethod) (PaymentMethod, error) {
	if err := p.Validate(); err != nil {
		return PaymentMethod{}, err
	}
	states, err := l.load(ctx, tx, []string{p.OrgID}, loadNeeds{})
	if err != nil {
		return PaymentMethod{}, err
	}
	if err := refuseDetached(ctx, tx, p.PaymentMethodID); err != nil {
		return PaymentMethod{}, err
	}
	p.UpdatedAt = states[p.OrgID].at
	if _, err := tx.Exec(ctx, upsertPaymentMethodSQL, p.OrgID, p.CustomerID, p.PaymentMethodID, opt(p.Brand), opt(p.Last4), p.UpdatedAt); err != nil {
		return PaymentMethod{}, mapError(fmt.Errorf("save payment method: %w", err))
	}
	if _, err := tx.Exec(ctx, unpauseRechargeSQL, p.OrgID, p.UpdatedAt); err != nil {
		return PaymentMethod{}, mapError(fmt.Errorf("save payment method: %w", err))
	}
	if err := setRechargeGate(ctx, tx, p.OrgID); err != nil {
		return PaymentMethod{}, err
	}
	return p, l.rechargeIfLow(ctx, tx, p.OrgID)
}

const selectGateSQL = `SELECT recharge_at, available FROM balances WHERE org_id = $1`

// rechargeIfLow opens a recharge attempt at once when auto-recharge is armed
// (just now: turned on, a card saved) while the balance is already at or
// below its threshold, rather than waiting for the next spend.
func (l *Ledger) rechargeIfLow(ctx context.Context, tx pgx.Tx, orgID string) error {
	var gate *int64
	var available int64
	if err := tx.QueryRow(ctx, selectGateSQL, orgID).Scan(&gate, &available); err != nil {
		return mapError(fmt.Errorf("recharge gate of org %s: %w", orgID, err))
	}
	if gate == nil || available > *gate {
		return nil
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return err
	}
	states[orgID].rechargeCheck = true
	return l.persist(ctx, tx, states)
}

const selectPaymentMethodSQL = `
SELECT customer_id, payment_method_id, coalesce(brand, ''), coalesce(last4, ''), updated_at FROM payment_methods WHERE org_id = $1`

// GetPaymentMethod reads the org's saved card; ErrNotFound when it has none.
func (l *Ledger) GetPaymentMethod(ctx context.Context, db DBTX, orgID string) (PaymentMethod, error) {
	p := PaymentMethod{OrgID: orgID}
	err := db.QueryRow(ctx, selectPaymentMethodSQL, orgID).Scan(&p.CustomerID, &p.PaymentMethodID, &p.Brand, &p.Last4, &p.UpdatedAt)
	if err != nil {
		return PaymentMethod{}, fmt.Errorf("payment method of org %s: %w", orgID, mapError(err))
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, nil
}

// RechargeSettings are an org's auto-recharge terms.
type RechargeSettings struct {
	OrgID     string          `json:"org"`
	Enabled   bool            `json:"enabled"`
	Threshold credits.Credits `json:"threshold"`
	// Exactly one of Amount (credits per charge) and Target (charge what
	// brings the balance to it) is set.
	Amount     *credits.Credits `json:"amount,omitempty"`
	Target     *credits.Credits `json:"target,omitempty"`
	MonthlyCap *credits.Money   `json:"monthly_cap,omitempty"` // what automatic charges may spend per cycle
	Paused     bool             `json:"paused"`                // a charge failed: no automatic attempts until the card is updated or an admin enables it again
	LastError  *RechargeError   `json:"last_error,omitempty"`
	UpdatedAt  time.Time        `json:"updated_at"`
}

// RechargeError is why a charge failed, as Stripe said it.
type RechargeError struct {
	AttemptID   string    `json:"attempt_id"`
	Code        string    `json:"code"`
	DeclineCode string    `json:"decline_code,omitempty"`
	Message     string    `json:"message"`
	At          time.Time `json:"at"`
}

// Validate checks the settings without touching the database.
func (r RechargeSettings) Validate() error {
	if err := validOrgID(r.OrgID); err != nil {
		return err
	}
	if !r.Enabled {
		return nil
	}
	if r.Threshold < 0 || r.Threshold > MaxAmount {
		return invalid("threshold", "must be from 0 to %d credits", MaxAmount/1000)
	}
	switch {
	case (r.Amount == nil) == (r.Target == nil):
		return invalid("amount", "give exactly one of amount and target")
	case r.Amount != nil:
		if err := validAmount("amount", int64(*r.Amount)); err != nil {
			return err
		}
	default:
		if err := validAmount("target", int64(*r.Target)); err != nil {
			return err
		}
		if *r.Target <= r.Threshold {
			return invalid("target", "must be above the threshold (%s)", r.Threshold)
		}
	}
	if r.MonthlyCap != nil && r.MonthlyCap.Minor <= 0 {
		return invalid("monthly_cap", "must be positive")
	}
	return nil
}

const upsertRechargeSQL = `
INSERT INTO recharge_settings (org_id, enabled, threshold, amount, target, monthly_cap, paused, last_error, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, false, NULL, $7)
ON CONFLICT (org_id) DO UPDATE SET enabled = excluded.enabled, threshold = excluded.threshold, amount = excluded.amount,
    target = excluded.target, monthly_cap = excluded.monthly_cap, paused = false, updated_at = excluded.updated_at`

const disableRechargeSQL = `UPDATE recharge_settings SET enabled = false, updated_at = $2 WHERE org_id = $1`

// SetRecharge sets or turns off (Enabled false) the org's auto-recharge.
// Turning it on needs a saved card, and ends a pause (the last error stays
// visible until the next attempt). The cap is in the org's currency.
func (l *Ledger) SetRecharge(ctx context.Context, tx pgx.Tx, r RechargeSettings) (RechargeSettings, error) {
	if err := r.Validate(); err != nil {
		return RechargeSettings{}, err
	}
	states, err := l.load(ctx, tx, []string{r.OrgID}, loadNeeds{})
	if err != nil {
		return RechargeSettings{}, err
	}
	s := states[r.OrgID]
	if !r.Enabled {
		if _, err := tx.Exec(ctx, disableRechargeSQL, r.OrgID, s.at); err != nil {
			return RechargeSettings{}, mapError(fmt.Errorf("recharge: %w", err))
		}
	} else {
		if _, err := l.GetPaymentMethod(ctx, tx, r.OrgID); errors.Is(err, ErrNotFound) {
			return RechargeSettings{}, invalid("payment_method", "org %s has no saved card: save one first (creditd payment-method set)", r.OrgID)
		} else if err != nil {
			return RechargeSettings{}, err
		}
		var capMinor *int64
		if r.MonthlyCap != nil {
			if r.MonthlyCap.Currency != s.org.Currency {
				return RechargeSettings{}, invalid("monthly_cap", "is in %s, but org %s pays in %s", r.MonthlyCap.Currency, r.OrgID, s.org.Currency)
			}
			capMinor = &r.MonthlyCap.Minor
		}
		if _, err := tx.Exec(ctx, upsertRechargeSQL, r.OrgID, true, int64(r.Threshold), int64Ptr(r.Amount), int64Ptr(r.Target),
			capMinor, s.at); err != nil {
			return RechargeSettings{}, mapError(fmt.Errorf("recharge: %w", err))
		}
	}
	if err := setRechargeGate(ctx, tx, r.OrgID); err != nil {
		return RechargeSettings{}, err
	}
	if err := l.rechargeIfLow(ctx, tx, r.OrgID); err != nil {
		return RechargeSettings{}, err
	}
	return l.Recharge(ctx, tx, r.OrgID)
}

const selectRechargeSQL = `
SELECT s.enabled, s.threshold, s.amount, s.target, s.monthly_cap, o.currency, s.paused, s.last_error, s.updated_at
FROM recharge_settings s JOIN orgs o ON o.org_id = s.org_id WHERE s.org_id = $1`

// Recharge reads the org's auto-recharge settings; an org that never set
// them has them off.
func (l *Ledger) Recharge(ctx context.Context, db DBTX, orgID string) (RechargeSettings, error) {
	if _, err := l.GetOrg(ctx, db, orgID); err != nil {
		return RechargeSettings{}, err
	}
	r := RechargeSettings{OrgID: orgID}
	var threshold int64
	var amount, target, capMinor *int64
	var currency string
	var lastErr []byte
	err := db.QueryRow(ctx, selectRechargeSQL, orgID).Scan(&r.Enabled, &threshold, &amount, &target, &capMinor, &currency,
		&r.Paused, &lastErr, &r.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return r, nil
	case err != nil:
		return RechargeSettings{}, mapError(fmt.Errorf("recharge of org %s: %w", orgID, err))
	}
	r.Threshold, r.Amount, r.Target, r.UpdatedAt = credits.Credits(threshold), creditsPtr(amount), creditsPtr(target), r.UpdatedAt.UTC()
	if capMinor != nil {
		r.MonthlyCap = &credits.Money{Minor: *capMinor, Currency: currency}
	}
	if lastErr != nil {
		r.LastError = &RechargeError{}
		if err := json.Unmarshal(lastErr, r.LastError); err != nil {
			return RechargeSettings{}, fmt.Errorf("recharge of org %s: last error: %w", orgID, err)
		}
	}
	return r, nil
}

// setRechargeGate recomputes the org's recharge gate under its lock: the
// threshold while auto-recharge is armed, NULL otherwise.
const setRechargeGateSQL = `
UPDATE balances b SET recharge_at = (
    SELECT s.threshold FROM recharge_settings s JOIN payment_methods p ON p.org_id = s.org_id
    WHERE s.org_id = b.org_id AND s.enabled AND NOT s.paused
      AND NOT EXISTS (SELECT 1 FROM recharge_attempts a WHERE a.org_id = b.org_id AND a.status = 'pending'))
WHERE b.org_id = $1`

func setRechargeGate(ctx context.Context, tx pgx.Tx, orgID string) error {
	if _, err := tx.Exec(ctx, setRechargeGateSQL, orgID); err != nil {
		return mapError(fmt.Errorf("recharge gate of org %s: %w", orgID, err))
	}
	return nil
}

// What a recharge needs when the gate opens: the settings, the card and what
// automatic charges have spent since the cycle began.
const loadRechargeSQL = `
SELECT k.org_id, s.threshold, s.amount, s.target, s.monthly_cap, p.customer_id, p.payment_method_id,
       coalesce((SELECT sum(a.amount_minor) FROM recharge_attempts a
                 WHERE a.org_id = k.org_id AND a.status IN ('pending', 'succeeded') AND a.created_at >= k.since), 0)
FROM unnest($1::text[], $2::timestamptz[]) AS k(org_id, since)
JOIN recharge_settings s ON s.org_id = k.org_id AND s.enabled AND NOT s.paused
JOIN payment_methods p ON p.org_id = k.org_id`

type rechargeRow struct {
	attemptID, customer, paymentMethod, currency string
	credits, minor                               int64
}

// triggerRecharges opens an attempt for every org this transaction left at
// or below its recharge threshold: in the same transaction, so the attempt
// exists exactly when the balance that called for it does, and one at most
// (the gate closes; the database's one-in-flight index backs it).
func (l *Ledger) triggerRecharges(ctx context.Context, tx pgx.Tx, states map[string]*orgState, orgIDs []string) error {
	var need []string
	var since []time.Time
	for _, id := range orgIDs {
		s := states[id]
		if s.rechargeAt != nil && (len(s.entries) > 0 || s.rechargeCheck) && s.available <= *s.rechargeAt {
			need, since = append(need, id), append(since, s.cycle.Start)
		}
	}
	if len(need) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, loadRechargeSQL, need, since)
	if err != nil {
		return mapError(fmt.Errorf("load recharge: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var org, customer, pm string
		var threshold, spent int64
		var amount, target, capMinor *int64
		if err := rows.Scan(&org, &threshold, &amount, &target, &capMinor, &customer, &pm, &spent); err != nil {
			return fmt.Errorf("load recharge: %w", err)
		}
		s := states[org]
		want := int64(0)
		if amount != nil {
			want = *amount
		} else {
			want = *target - s.available // one charge to the target, never one per increment
		}
		minor, err := l.priceOf(credits.Credits(want), s.org.Currency)
		if err != nil {
			return err
		}
		if capMinor != nil && spent+minor > *capMinor {
			continue // the cycle's cap is spent: the gate stays open, the next cycle charges again
		}
		s.recharges = append(s.recharges, rechargeRow{attemptID: newAttemptID(), customer: customer, paymentMethod: pm,
			currency: s.org.Currency, credits: want, minor: minor})
		s.rechargeAt = nil
	}
	return rows.Err()
}

// priceOf is what credits cost at the catalog's purchase rate, in minor
// units of currency, rounded up to a whole minor unit.
func (l *Ledger) priceOf(c credits.Credits, currency string) (int64, error) {
	rate := l.catalog.Purchase.CreditsPerUnit
	if rate <= 0 || c <= 0 {
		return 0, invalid("amount", "cannot price %s credits at %s credits per unit", c, rate)
	}
	perUnit := uint64(1)
	for range credits.MinorDigits(currency) {
		perUnit *= 10
	}
	hi, lo := bits.Mul64(uint64(c), perUnit)
	if hi >= uint64(rate) {
		return 0, invalid("amount", "%s credits cost more than can be charged", c)
	}
	q, r := bits.Div64(hi, lo, uint64(rate))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, invalid("amount", "%s credits cost more than can be charged", c)
	}
	return int64(q), nil
}

func newAttemptID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ledger: attempt id: %v", err)) // crypto/rand does not fail on Linux
	}
	return "rch_" + hex.EncodeToString(b[:])
}

const insertRechargeAttemptsSQL = `
INSERT INTO recharge_attempts (org_id, attempt_id, status, credits, amount_minor, currency, customer_id, payment_method_id,
                               created_at, relay_after)
SELECT org_id, attempt_id, 'pending', credits, amount_minor, currency, customer_id, payment_method_id, at, at
FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
     AS u(org_id, attempt_id, credits, amount_minor, currency, customer_id, payment_method_id, at)`

// queueRechargeWrites adds the attempts triggerRecharges opened to persist's
// batch.
func queueRechargeWrites(b *pgx.Batch, states map[string]*orgState, orgIDs []string) {
	var org, id, currency, customer, pm []string
	var cr, minor []int64
	var at []time.Time
	for _, o := range orgIDs {
		s := states[o]
		for _, r := range s.recharges {
			org, id, currency, customer, pm = append(org, o), append(id, r.attemptID), append(currency, r.currency), append(customer, r.customer), append(pm, r.paymentMethod)
			cr, minor, at = append(cr, r.credits), append(minor, r.minor), append(at, s.at)
		}
	}
	if len(org) > 0 {
		b.Queue(insertRechargeAttemptsSQL, org, id, cr, minor, currency, customer, pm, at)
	}
}

// RechargeAttempt is one automatic charge.
type RechargeAttempt struct {
	OrgID           string          `json:"org"`
	ID              string          `json:"attempt_id"` // also the Stripe idempotency key
	Status          string          `json:"status"`     // pending, succeeded or failed
	Credits         credits.Credits `json:"credits"`
	Amount          credits.Money   `json:"amount"`
	CustomerID      string          `json:"customer_id"`
	PaymentMethodID string          `json:"payment_method_id"`
	PaymentIntentID string          `json:"payment_intent_id,omitempty"`
	ErrorCode       string          `json:"error_code,omitempty"`
	DeclineCode     string          `json:"decline_code,omitempty"`
	ErrorMessage    string          `json:"error_message,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	FinishedAt      *time.Time      `json:"finished_at,omitempty"`
}

// Recharge attempt states.
const (
	RechargePending   = "pending"
	RechargeSucceeded = "succeeded"
	RechargeFailed    = "failed"
)

const selectAttemptsSQL = `
SELECT attempt_id, status, credits, amount_minor, currency, customer_id, payment_method_id, coalesce(payment_intent_id, ''),
       coalesce(error_code, ''), coalesce(decline_code, ''), coalesce(error_message, ''), created_at, finished_at
FROM recharge_attempts WHERE org_id = $1 AND ($2 = '' OR attempt_id = $2)
ORDER BY seq DESC LIMIT $3`

// RechargeAttempts lists the org's attempts, newest first, at most limit.
func (l *Ledger) RechargeAttempts(ctx context.Context, db DBTX, orgID string, limit int) ([]RechargeAttempt, error) {
	return l.attempts(ctx, db, orgID, "", limit)
}

// GetRechargeAttempt reads one attempt; ErrNotFound when there is none.
func (l *Ledger) GetRechargeAttempt(ctx context.Context, db DBTX, orgID, attemptID string) (RechargeAttempt, error) {
	as, err := l.attempts(ctx, db, orgID, attemptID, 1)
	if err != nil {
		return RechargeAttempt{}, err
	}
	if len(as) == 0 {
		return RechargeAttempt{}, fmt.Errorf("recharge attempt %s of org %s: %w", attemptID, orgID, ErrNotFound)
	}
	return as[0], nil
}

func (l *Ledger) attempts(ctx context.Context, db DBTX, orgID, attemptID string, limit int) ([]RechargeAttempt, error) {
	rows, err := db.Query(ctx, selectAttemptsSQL, orgID, attemptID, limit)
	if err != nil {
		return nil, mapError(fmt.Errorf("recharge attempts: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RechargeAttempt, error) {
		a := RechargeAttempt{OrgID: orgID}
		err := row.Scan(&a.ID, &a.Status, &a.Credits, &a.Amount.Minor, &a.Amount.Currency, &a.CustomerID, &a.PaymentMethodID,
			&a.PaymentIntentID, &a.ErrorCode, &a.DeclineCode, &a.ErrorMessage, &a.CreatedAt, &a.FinishedAt)
		a.CreatedAt = a.CreatedAt.UTC()
		return a, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("recharge attempts: %w", err))
	}
	return out, nil
}

const finishAttemptSQL = `
UPDATE recharge_attempts SET status = $3, payment_intent_id = nullif($4, ''), error_code = nullif($5, ''),
       decline_code = nullif($6, ''), error_message = nullif($7, ''), finished_at = $8
WHERE org_id = $1 AND attempt_id = $2 AND status = 'pending'`

const succeedFailedAttemptSQL = `
UPDATE recharge_attempts SET status = 'succeeded', payment_intent_id = $3
WHERE org_id = $1 AND attempt_id = $2 AND status = 'failed'`

// CompleteRecharge credits a successful charge: a never-expiring recharge
// lot keyed by the PaymentIntent, so no other path (webhook,
// reconciliation) can ever credit it again, and the attempt marked
// succeeded, also one recorded as failed before: a charge Stripe made is
// credited whatever was recorded. Completing it again returns the first
// grant.
func (l *Ledger) CompleteRecharge(ctx context.Context, tx pgx.Tx, orgID, attemptID, paymentIntentID string) (GrantResult, error) {
	a, err := l.GetRechargeAttempt(ctx, tx, orgID, attemptID)
	if err != nil {
		return GrantResult{}, err
	}
	if a.Status == RechargeSucceeded && a.PaymentIntentID != paymentIntentID {
		return GrantResult{}, fmt.Errorf("%w: recharge attempt %s succeeded with %s, not %s", ErrConflict, attemptID, a.PaymentIntentID, paymentIntentID)
	}
	res, err := l.Grant(ctx, tx, Grant{OrgID: orgID, Amount: a.Credits, Source: SourceRecharge, Key: "payment:" + paymentIntentID,
		PaymentID: paymentIntentID})
	if err != nil {
		return GrantResult{}, err
	}
	if err := l.recordPayment(ctx, tx, PaymentRecharge, paymentIntentID, res, a.Amount); err != nil {
		return GrantResult{}, err
	}
	if _, err := tx.Exec(ctx, finishAttemptSQL, orgID, attemptID, RechargeSucceeded, paymentIntentID, "", "", "", l.now()); err != nil {
		return GrantResult{}, mapError(fmt.Errorf("complete recharge %s: %w", attemptID, err))
	}
	if a.Status == RechargeFailed {
		// Recorded as failed (an answer taken for a refusal, say), yet Stripe
		// charged it: the money was taken, so the credits are added. The
		// failure's codes stay on the attempt and the pause stays until an
		// admin acts.
		if _, err := tx.Exec(ctx, succeedFailedAttemptSQL, orgID, attemptID, paymentIntentID); err != nil {
			return GrantResult{}, mapError(fmt.Errorf("complete recharge %s: %w", attemptID, err))
		}
	}
	return res, setRechargeGate(ctx, tx, orgID)
}

const pauseRechargeSQL = `UPDATE recharge_settings SET paused = true, last_error = $2, updated_at = $3 WHERE org_id = $1`

// FailRecharge records a charge Stripe refused for good (declined, needs
// authentication, no card): the attempt keeps Stripe's codes, the org's
// auto-recharge pauses with it as its last error, and the recharge-failed
// alert goes to the admins. Nothing is charged again until the card is
// updated or an admin enables auto-recharge again.
func (l *Ledger) FailRecharge(ctx context.Context, tx pgx.Tx, orgID, attemptID string, e RechargeError) error {
	if e.Code == "" {
		return invalid("code", "required")
	}
	states, err := l.load(ctx, tx, []string{orgID}, loadNeeds{})
	if err != nil {
		return err
	}
	now := states[orgID].at
	tag, err := tx.Exec(ctx, finishAttemptSQL, orgID, attemptID, RechargeFailed, "", e.Code, e.DeclineCode, e.Message, now)
	if err != nil {
		return mapError(fmt.Errorf("fail recharge %s: %w", attemptID, err))
	}
	if tag.RowsAffected() == 0 {
		a, err := l.GetRechargeAttempt(ctx, tx, orgID, attemptID)
		if err != nil {
			return err
		}
		if a.Status == RechargeFailed {
			return nil // recorded before
		}
		return fmt.Errorf("%w: recharge attempt %s is %s", ErrConflict, attemptID, a.Status)
	}
	e.AttemptID, e.At = attemptID, now
	js, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("fail recharge %s: %w", attemptID, err)
	}
	if _, err := tx.Exec(ctx, pauseRechargeSQL, orgID, js, now); err != nil {
		return mapError(fmt.Errorf("fail recharge %s: %w", attemptID, err))
	}
	details := map[string]string{"code": e.Code, "message": e.Message, "attempt_id": attemptID}
	if e.DeclineCode != "" {
		details["decline_code"] = e.DeclineCode
	}
	if _, err := l.RaiseAlert(ctx, tx, orgID, AlertRechargeFailed, "recharge_failed:"+attemptID, details); err != nil {
		return err
	}
	return setRechargeGate(ctx, tx, orgID)
}

// RechargeRef names one attempt.
type RechargeRef struct {
	OrgID     string `json:"org_id"`
	AttemptID string `json:"attempt_id"`
}

const claimRechargesSQL = `
UPDATE recharge_attempts a SET relay_after = $2
FROM (SELECT org_id, attempt_id FROM recharge_attempts
      WHERE status = 'pending' AND relay_after <= $1
      ORDER BY relay_after, org_id, attempt_id LIMIT $3
      FOR UPDATE SKIP LOCKED) c
WHERE a.org_id = c.org_id AND a.attempt_id = c.attempt_id
RETURNING a.org_id, a.attempt_id`

// ClaimRecharges hands up to limit pending attempts to the caller (the
// relay, which enqueues their tasks) and claims them again stale after,
// if still pending: a lost task is re-sent under the same idempotency key,
// which Stripe answers with the first charge's result.
func (l *Ledger) ClaimRecharges(ctx context.Context, tx pgx.Tx, now time.Time, stale time.Duration, limit int) ([]RechargeRef, error) {
	return claim[RechargeRef](ctx, tx, claimRechargesSQL, "recharges", now, stale, limit)
}
