package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Reversal kinds: why money paid for credits went back to the payer. They
// are also the kinds of the entries that take the credits back.
const (
	ReversalRefund  = "refund"
	ReversalDispute = "dispute"
)

// Reversal is a refund or a dispute of a credited payment.
type Reversal struct {
	PaymentID string // the Stripe PaymentIntent that was credited
	Kind      string // refund or dispute
	// Amount is, for a refund, the total refunded so far (Stripe's
	// cumulative amount_refunded of the charge); for a dispute, the amount
	// disputed.
	Amount    credits.Money
	DisputeID string // disputes only: the dispute's id, its idempotency key
}

// Validate checks the reversal without touching the database.
func (r Reversal) Validate() error {
	if r.PaymentID == "" {
		return invalid("payment_id", "required")
	}
	if err := validKey("payment_id", r.PaymentID); err != nil {
		return err
	}
	if !credits.ValidCurrency(r.Amount.Currency) {
		return invalid("amount", "currency %q is not a three-letter upper-case ISO 4217 code", r.Amount.Currency)
	}
	switch r.Kind {
	case ReversalRefund:
		if r.Amount.Minor < 0 {
			return invalid("amount", "must not be negative")
		}
		if r.DisputeID != "" {
			return invalid("dispute_id", "only disputes have one")
		}
	case ReversalDispute:
		if r.Amount.Minor <= 0 {
			return invalid("amount", "must be positive")
		}
		if r.DisputeID == "" {
			return invalid("dispute_id", "required")
		}
		if err := validKey("dispute_id", r.DisputeID); err != nil {
			return err
		}
	default:
		return invalid("kind", "must be refund or dispute, not %q", r.Kind)
	}
	return nil
}

// ReversalResult is what a refund or dispute took back.
type ReversalResult struct {
	OrgID     string `json:"org"`
	PaymentID string `json:"payment_id"`
	Kind      string `json:"kind"`
	// Taken is what this reversal took back: FromLot of the payment's own
	// lot, FromOther of the org's other credits (what the payment bought was
	// spent already), Debt what no credits covered.
	Taken     credits.Credits `json:"taken"`
	FromLot   credits.Credits `json:"from_lot"`
	FromOther credits.Credits `json:"from_other"`
	Debt      credits.Credits `json:"debt"`
	// Refunded and Disputed are the payment's totals after this reversal,
	// TakenTotal the credits taken back for both.
	Refunded     credits.Money   `json:"refunded"`
	Disputed     credits.Money   `json:"disputed"`
	TakenTotal   credits.Credits `json:"taken_total"`
	BalanceAfter credits.Credits `json:"balance_after"`
	// Replayed: nothing new (the refund total or the dispute was seen
	// before).
	Replayed bool `json:"replayed,omitempty"`
	// Pending: no org was credited for the payment (yet); the reversal is
	// kept and applied if one is.
	Pending bool `json:"pending,omitempty"`
}

const lockPaymentSQL = `
SELECT refunded_minor, disputed_minor, taken_back FROM payments WHERE payment_id = $1 FOR UPDATE`

const insertDisputeSQL = `
INSERT INTO payment_disputes (dispute_id, org_id, payment_id, amount_minor, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (dispute_id) DO NOTHING`

const selectDisputeSQL = `SELECT payment_id, amount_minor FROM payment_disputes WHERE dispute_id = $1`

const updatePaymentTakenSQL = `
UPDATE payments SET refunded_minor = $2, disputed_minor = $3, taken_back = $4 WHERE payment_id = $1`

// pauseForReversalSQL pauses the org's auto-recharge with why.
const pauseForReversalSQL = `UPDATE recharge_settings SET paused = true, last_error = $2, updated_at = $3 WHERE org_id = $1`

// ReversePayment takes back the credits of a refunded or disputed payment,
// in proportion to the money returned: of a payment that bought C credits
// for P, money M returned in all (refunds and disputes, at most P) takes
// back floor(C × M / P) credits in all, exact in 128 bits. Rounding down
// favours the payer by under a millicredit, and a full refund (M = P)
// takes back exactly C. Each call takes only what its new money adds to
// that total, so replays, late events and several partial refunds take
// back the total exactly once; a dispute of money already refunded takes
// nothing more.
//
// Credits come back from what is left of the payment's lot first; what was
// spent of it is taken from the org's other credits, in consumption order,
// and what none cover becomes debt, repaid by the next credits added (as
// usage does: debt exists only while no credits do). Every part is a
// 'refund' or 'dispute' entry naming the payment.
//
// A dispute, or any reversal of an automatic recharge, also pauses the
// org's auto-recharge (its last error says why): the card is not charged
// again automatically until an admin updates it or enables recharge again.
//
// A reversal of a payment no org was credited for is kept (Pending): Stripe
// may deliver a refund before the success it reverses, so it is applied in
// the transaction that credits the payment, by whichever path.
func (l *Ledger) ReversePayment(ctx context.Context, tx pgx.Tx, r Reversal) (ReversalResult, error) {
	if err := r.Validate(); err != nil {
		return ReversalResult{}, err
	}
	if err := lockPayment(ctx, tx, r.PaymentID); err != nil {
		return ReversalResult{}, err
	}
	res, err := l.reverse(ctx, tx, r)
	if errors.Is(err, ErrNotFound) {
		return ReversalResult{PaymentID: r.PaymentID, Kind: r.Kind, Pending: true}, l.keepReversal(ctx, tx, r)
	}
	return res, err
}

// reverse is ReversePayment of a credited payment (ErrNotFound otherwise),
// under the payment's lock.
func (l *Ledger) reverse(ctx context.Context, tx pgx.Tx, r Reversal) (ReversalResult, error) {
	if err := r.Validate(); err != nil {
		return ReversalResult{}, err
	}
	p, err := l.GetPayment(ctx, tx, r.PaymentID)
	if err != nil {
		return ReversalResult{}, err
	}
	if r.Amount.Currency != p.Paid.Currency {
		return ReversalResult{}, invalid("amount", "is in %q, but payment %s was paid in %s", r.Amount.Currency, p.PaymentID, p.Paid.Currency)
	}
	states, err := l.load(ctx, tx, []string{p.OrgID}, loadNeeds{})
	if err != nil {
		return ReversalResult{}, err
	}
	s := states[p.OrgID]
	var refunded, disputed, taken int64
	if err := tx.QueryRow(ctx, lockPaymentSQL, p.PaymentID).Scan(&refunded, &disputed, &taken); err != nil {
		return ReversalResult{}, mapError(fmt.Errorf("reverse payment %s: %w", p.PaymentID, err))
	}
	fresh := false
	key := ""
	switch r.Kind {
	case ReversalRefund:
		if total := min(r.Amount.Minor, p.Paid.Minor); total > refunded {
			refunded, fresh = total, true
		}
		key = fmt.Sprintf("refund:%s:%d", p.PaymentID, refunded)
	case ReversalDispute:
		if fresh, err = l.recordDispute(ctx, tx, p, r, s); err != nil {
			return ReversalResult{}, err
		}
		if fresh {
			if disputed, err = checkedAdd(disputed, r.Amount.Minor); err != nil {
				return ReversalResult{}, err
			}
		}
		key = "dispute:" + r.DisputeID
	}
	res := ReversalResult{OrgID: p.OrgID, PaymentID: p.PaymentID, Kind: r.Kind, Replayed: !fresh,
		Refunded: credits.Money{Minor: refunded, Currency: p.Paid.Currency}, Disputed: credits.Money{Minor: disputed, Currency: p.Paid.Currency}}
	target := takenFor(p, refunded, disputed)
	take := target - taken
	pause := fresh && (r.Kind == ReversalDispute || p.Kind == PaymentRecharge)
	if take > 0 {
		tmpl := entryRow{kind: r.Kind, key: key, paymentID: &p.PaymentID}
		for _, lot := range s.lots {
			if lot.id != p.LotID || lot.remaining == 0 {
				continue
			}
			from := min(lot.remaining, take)
			lot.remaining -= from
			lot.dirty = true
			e := tmpl
			id := lot.id
			e.lotID, e.lotDelta = &id, -from
			s.post(e)
			res.FromLot = credits.Credits(from)
		}
		if rest := take - int64(res.FromLot); rest > 0 {
			debt := s.consume(rest, tmpl)
			res.Debt, res.FromOther = credits.Credits(debt), credits.Credits(rest-debt)
		}
	}
	if pause {
		s.rechargeAt = nil // no recharge opens in this transaction; the pause below keeps the gate closed
	}
	if err := l.persist(ctx, tx, states); err != nil {
		return ReversalResult{}, fmt.Errorf("reverse payment %s: %w", p.PaymentID, err)
	}
	if _, err := tx.Exec(ctx, updatePaymentTakenSQL, p.PaymentID, refunded, disputed, target); err != nil {
		return ReversalResult{}, mapError(fmt.Errorf("reverse payment %s: %w", p.PaymentID, err))
	}
	if pause {
		if err := pauseForReversal(ctx, tx, p, r, s); err != nil {
			return ReversalResult{}, err
		}
	}
	res.Taken, res.TakenTotal, res.BalanceAfter = credits.Credits(take), credits.Credits(target), credits.Credits(s.available)
	return res, nil
}

// recordDispute stores the dispute under its id; fresh is false when it
// was stored before (the same dispute of the same payment and amount, or
// ErrConflict).
func (l *Ledger) recordDispute(ctx context.Context, tx pgx.Tx, p Payment, r Reversal, s *orgState) (fresh bool, err error) {
	tag, err := tx.Exec(ctx, insertDisputeSQL, r.DisputeID, p.OrgID, p.PaymentID, r.Amount.Minor, s.at)
	if err != nil {
		return false, mapError(fmt.Errorf("dispute %s: %w", r.DisputeID, err))
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var payment string
	var minor int64
	if err := tx.QueryRow(ctx, selectDisputeSQL, r.DisputeID).Scan(&payment, &minor); err != nil {
		return false, mapError(fmt.Errorf("dispute %s: %w", r.DisputeID, err))
	}
	if payment != p.PaymentID || minor != r.Amount.Minor {
		return false, fmt.Errorf("%w: dispute %s was recorded for %d of %s, not %d of %s", ErrConflict, r.DisputeID, minor, payment,
			r.Amount.Minor, p.PaymentID)
	}
	return false, nil
}

// takenFor is the credits a payment's refunds and disputes take back in
// all: floor(credits × least(paid, refunded + disputed) / paid).
func takenFor(p Payment, refunded, disputed int64) int64 {
	back := p.Paid.Minor
	if sum := refunded + disputed; sum >= 0 && sum < back { // sum < 0: overflowed, so above paid
		back = sum
	}
	hi, lo := bits.Mul64(uint64(p.Credits), uint64(back))
	q, _ := bits.Div64(hi, lo, uint64(p.Paid.Minor)) // back <= paid: the quotient is at most credits
	return int64(q)
}

func checkedAdd(a, b int64) (int64, error) {
	if sum := a + b; sum >= a {
		return sum, nil
	}
	return 0, invalid("amount", "disputes of one payment add up to more than can be counted")
}

func pauseForReversal(ctx context.Context, tx pgx.Tx, p Payment, r Reversal, s *orgState) error {
	e := RechargeError{Code: "payment_refunded", Message: fmt.Sprintf("payment %s (%s) was refunded", p.PaymentID, p.Kind), At: s.at}
	if r.Kind == ReversalDispute {
		e.Code, e.Message = "payment_disputed", fmt.Sprintf("payment %s (%s) is disputed (%s)", p.PaymentID, p.Kind, r.DisputeID)
	}
	js, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("pause recharge of org %s: %w", p.OrgID, err)
	}
	if _, err := tx.Exec(ctx, pauseForReversalSQL, p.OrgID, js, s.at); err != nil {
		return mapError(fmt.Errorf("pause recharge of org %s: %w", p.OrgID, err))
	}
	return setRechargeGate(ctx, tx, p.OrgID)
}
