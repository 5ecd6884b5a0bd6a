package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func usd(minor int64) credits.Money { return credits.Money{Minor: minor, Currency: "USD"} }

// buy credits a one-time purchase of order for paid.
func (f *fixture) buy(org, pi string, paid credits.Money, order ledger.PurchaseOrder) ledger.GrantResult {
	f.t.Helper()
	var res ledger.GrantResult
	f.tx(func(tx pgx.Tx) (err error) {
		res, err = f.l.CreditOrder(f.ctx, tx, org, pi, paid, order)
		return err
	})
	return res
}

func (f *fixture) reverseE(r ledger.Reversal) (ledger.ReversalResult, error) {
	var res ledger.ReversalResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.ReversePayment(f.ctx, tx, r)
		return err
	})
	return res, err
}

func (f *fixture) refund(pi string, total int64) ledger.ReversalResult {
	f.t.Helper()
	res, err := f.reverseE(ledger.Reversal{PaymentID: pi, Kind: ledger.ReversalRefund, Amount: usd(total)})
	if err != nil {
		f.t.Fatalf("refund %s of %d: %v", pi, total, err)
	}
	return res
}

func (f *fixture) dispute(pi, id string, amount int64) ledger.ReversalResult {
	f.t.Helper()
	res, err := f.reverseE(ledger.Reversal{PaymentID: pi, Kind: ledger.ReversalDispute, DisputeID: id, Amount: usd(amount)})
	if err != nil {
		f.t.Fatalf("dispute %s of %s: %v", id, pi, err)
	}
	return res
}

// lotRemaining is what is left of one lot now.
func (f *fixture) lotRemaining(org string, lotID int64) credits.Credits {
	f.t.Helper()
	for _, lot := range f.balance(org).Lots {
		if lot.ID == lotID {
			return lot.Remaining
		}
	}
	return 0
}

func TestReversePayment_FullRefundOfUnspentPurchase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	g := f.buy(org, "pi_full", usd(20_00), ledger.PurchaseOrder{})
	f.wantAvailable(org, "20")
	res := f.refund("pi_full", 20_00)
	if res.Taken != cr("20") || res.FromLot != cr("20") || res.Debt != 0 || res.Replayed {
		t.Fatalf("full refund %+v, want 20 taken from the lot", res)
	}
	for range 4 { // Stripe delivers again: nothing more
		if again := f.refund("pi_full", 20_00); again.Taken != 0 || !again.Replayed || again.TakenTotal != cr("20") {
			t.Fatalf("replayed refund %+v, want nothing taken", again)
		}
	}
	f.wantAvailable(org, "0")
	if got := f.lotRemaining(org, g.LotID); got != 0 {
		t.Fatalf("lot remaining %s, want 0", got)
	}
	h := f.history(org)
	last := h[len(h)-1]
	if last.Kind != "refund" || last.Amount != cr("-20") || last.PaymentID == nil || *last.PaymentID != "pi_full" ||
		last.LotID == nil || *last.LotID != g.LotID || last.Key != "refund:pi_full:2000" {
		t.Fatalf("last entry %+v, want the refund of pi_full's lot", last)
	}
	f.verify()
}

func TestReversePayment_PartialRefundsInAnyOrderTakeTheTotalOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	// starter: 1,000 credits for 10.00, so 1 minor unit buys 1 credit; a
	// third does not divide evenly.
	f.buy(org, "pi_pkg", usd(10_00), ledger.PurchaseOrder{Package: "starter"})
	steps := []struct {
		name     string
		total    int64 // the cumulative amount_refunded delivered
		taken    string
		avail    string
		replayed bool
	}{
		{"first third", 3_33, "333", "667", false},
		{"replayed", 3_33, "0", "667", true},
		{"second, ahead of a late first", 6_67, "334", "333", false},
		{"the first delivered late", 3_33, "0", "333", true},
		{"rest", 10_00, "333", "0", false},
		{"an older total after the full refund", 6_67, "0", "0", true},
		{"the full refund again", 10_00, "0", "0", true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res := f.refund("pi_pkg", s.total)
			if res.Taken != cr(s.taken) || res.Replayed != s.replayed {
				t.Fatalf("refund total %d: %+v, want %s taken (replayed %v)", s.total, res, s.taken, s.replayed)
			}
			f.wantAvailable(org, s.avail)
		})
	}
	var sum credits.Credits
	for _, e := range f.history(org) {
		if e.Kind == "refund" {
			sum += e.Amount
		}
	}
	if sum != cr("-1000") {
		t.Fatalf("refund entries sum to %s, want -1000 (all the package's credits, once)", sum)
	}
	f.verify()
}

func TestReversePayment_RoundsDownAndAFullRefundTakesAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	// One custom credit at 50.00: a refund of 0.01 is worth 0.0002 credits.
	f.buy(org, "pi_one", usd(50_00), ledger.PurchaseOrder{Credits: cr("1")})
	for _, s := range []struct {
		total int64
		taken string
	}{{1, "0"}, {3, "0"}, {7, "0.001"}, {49_99, "0.998"}, {50_00, "0.001"}} {
		if res := f.refund("pi_one", s.total); res.Taken != cr(s.taken) {
			t.Fatalf("refund total %d: taken %s, want %s", s.total, res.Taken, s.taken)
		}
	}
	f.wantAvailable(org, "0")
	f.verify()
}

func TestReversePayment_SpentCreditsBecomeDebt(t *testing.T) {
	t.Parallel()
	for _, policy := range []ledger.Policy{ledger.PolicyDebt, ledger.PolicyReject} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			org := f.org("acme", &orgOpts{policy: policy})
			g := f.buy(org, "pi_spent", usd(20_00), ledger.PurchaseOrder{})
			f.use(org, "u1", "15")
			expires := t0.Add(10 * 24 * time.Hour)
			f.grant(org, "8", ledger.SourcePromo, "promo-1", &expires)
			res := f.refund("pi_spent", 20_00)
			if res.Taken != cr("20") || res.FromLot != cr("5") || res.FromOther != cr("8") || res.Debt != cr("7") {
				t.Fatalf("refund %+v, want 5 from the lot, 8 from the promo, 7 debt", res)
			}
			b := f.balance(org)
			if b.Available != cr("-7") || b.Debt != cr("7") || !b.Paused || f.lotRemaining(org, g.LotID) != 0 {
				t.Fatalf("balance %+v, want -7 in debt, paused", b)
			}
			if policy == ledger.PolicyReject {
				if u, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "u2", Amount: crp("1")}); err != nil || u.Status != ledger.UsageRejected {
					t.Fatalf("usage in debt under reject: %+v, %v; want rejected", u, err)
				}
			}
			// The next credits repay the debt first.
			if r := f.grant(org, "10", ledger.SourceAdjustment, "adj-1", nil); r.Repaid != cr("7") {
				t.Fatalf("grant after the refund repaid %s, want 7", r.Repaid)
			}
			f.wantAvailable(org, "3")
			f.verify()
		})
	}
}

func TestReversePayment_DisputeAfterPartialRefund(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.buy(org, "pi_d", usd(20_00), ledger.PurchaseOrder{})
	if res := f.refund("pi_d", 5_00); res.Taken != cr("5") {
		t.Fatalf("partial refund took %s, want 5", res.Taken)
	}
	// The dispute is for the whole charge: only the 15.00 not refunded is
	// taken.
	res := f.dispute("pi_d", "dp_1", 20_00)
	if res.Taken != cr("15") || res.TakenTotal != cr("20") || res.Kind != "dispute" {
		t.Fatalf("dispute %+v, want 15 more taken, 20 in all", res)
	}
	for range 4 {
		if again := f.dispute("pi_d", "dp_1", 20_00); again.Taken != 0 || !again.Replayed {
			t.Fatalf("replayed dispute %+v, want nothing", again)
		}
	}
	if _, err := f.reverseE(ledger.Reversal{PaymentID: "pi_d", Kind: ledger.ReversalDispute, DisputeID: "dp_1", Amount: usd(3_00)}); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("dispute dp_1 again with another amount: %v, want ErrConflict", err)
	}
	// More money back than was paid takes nothing more.
	if res := f.dispute("pi_d", "dp_2", 15_00); res.Taken != 0 || res.Replayed {
		t.Fatalf("second dispute %+v, want recorded, nothing taken", res)
	}
	if res := f.refund("pi_d", 20_00); res.Taken != 0 {
		t.Fatalf("refund after the dispute took %s, want 0", res.Taken)
	}
	f.wantAvailable(org, "0")
	var kinds []string
	for _, e := range f.history(org) {
		kinds = append(kinds, e.Kind)
	}
	if got, want := joined(kinds), "grant refund dispute"; got != want {
		t.Fatalf("history kinds %q, want %q", got, want)
	}
	f.verify()
}

func TestReversePayment_DisputePausesAutoRecharge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.saveCard(org, "pm_1")
	f.buy(org, "pi_r", usd(100_00), ledger.PurchaseOrder{})
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("30"), Amount: crp("50")}); err != nil {
		t.Fatal(err)
	}
	// The balance falls to 0, below the threshold, but the disputed card is
	// not charged again.
	f.dispute("pi_r", "dp_r", 100_00)
	if as := f.attempts(org); len(as) != 0 {
		t.Fatalf("attempts %+v after a dispute, want none", as)
	}
	r, err := f.l.Recharge(f.ctx, f.pool, org)
	if err != nil || !r.Paused || r.LastError == nil || r.LastError.Code != "payment_disputed" {
		t.Fatalf("recharge %+v, %v; want paused by the dispute", r, err)
	}
	f.use(org, "u1", "1")
	if as := f.attempts(org); len(as) != 0 {
		t.Fatalf("attempts %+v after usage while paused, want none", as)
	}
	f.verify()
}

func TestReversePayment_RefusesBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.buy(org, "pi_ok", usd(10_00), ledger.PurchaseOrder{})
	tests := []struct {
		name  string
		r     ledger.Reversal
		field string
	}{
		{"no payment", ledger.Reversal{Kind: ledger.ReversalRefund, Amount: usd(1)}, "payment_id"},
		{"unknown kind", ledger.Reversal{PaymentID: "pi_ok", Kind: "chargeback", Amount: usd(1)}, "kind"},
		{"negative refund", ledger.Reversal{PaymentID: "pi_ok", Kind: ledger.ReversalRefund, Amount: usd(-1)}, "amount"},
		{"dispute without id", ledger.Reversal{PaymentID: "pi_ok", Kind: ledger.ReversalDispute, Amount: usd(1)}, "dispute_id"},
		{"no currency", ledger.Reversal{PaymentID: "pi_none", Kind: ledger.ReversalRefund, Amount: credits.Money{Minor: 1}}, "amount"},
		{"other currency", ledger.Reversal{PaymentID: "pi_ok", Kind: ledger.ReversalRefund, Amount: credits.Money{Minor: 1, Currency: "EUR"}}, "amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.reverseE(tc.r)
			var v *ledger.ValidationError
			if !errors.As(err, &v) || v.Field != tc.field {
				t.Fatalf("err %v, want a validation error of %s", err, tc.field)
			}
		})
	}
	f.wantAvailable(org, "10")
	f.verify()
}

func TestReversePayment_BeforeThePaymentIsCreditedIsKept(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	// Stripe delivers the refunds and a dispute before the success: nothing
	// to take yet, each kept.
	for _, total := range []int64{5_00, 8_00, 5_00} {
		if res := f.refund("pi_late", total); !res.Pending || res.Taken != 0 {
			t.Fatalf("refund of an uncredited payment %+v, want pending", res)
		}
	}
	if res := f.dispute("pi_late", "dp_late", 2_00); !res.Pending {
		t.Fatalf("dispute of an uncredited payment %+v, want pending", res)
	}
	// A refund in another currency is dropped when the payment arrives.
	if _, err := f.reverseE(ledger.Reversal{PaymentID: "pi_late", Kind: ledger.ReversalDispute, DisputeID: "dp_eur",
		Amount: credits.Money{Minor: 1_00, Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	f.wantAvailable(org, "0")
	// The credit applies them in its own transaction: 20 bought, 8 refunded
	// (the highest total) and 2 disputed taken back.
	for range 3 {
		f.buy(org, "pi_late", usd(20_00), ledger.PurchaseOrder{})
	}
	f.wantAvailable(org, "10")
	if res := f.refund("pi_late", 8_00); res.Taken != 0 || !res.Replayed || res.TakenTotal != cr("10") {
		t.Fatalf("the refund again after the credit %+v, want nothing more", res)
	}
	var kinds []string
	for _, e := range f.history(org) {
		kinds = append(kinds, e.Kind)
	}
	if got, want := joined(kinds), "grant refund dispute"; got != want {
		t.Fatalf("history kinds %q, want %q", got, want)
	}
	f.verify()
}

func TestReversePayment_RacingTheCreditTakesBackOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	const payments = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*payments)
	for i := range payments {
		pi := fmt.Sprintf("pi_race%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) error {
				_, err := f.l.CreditOrder(f.ctx, tx, org, pi, usd(10_00), ledger.PurchaseOrder{})
				return err
			})
		}()
		go func() {
			defer wg.Done()
			errs <- ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) error {
				_, err := f.l.ReversePayment(f.ctx, tx, ledger.Reversal{PaymentID: pi, Kind: ledger.ReversalRefund, Amount: usd(4_00)})
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each payment bought 10 and had 4 taken back, whichever came first.
	f.wantAvailable(org, fmt.Sprint(payments*6))
	f.verify()
}

func TestReversePayment_RefundedPurchaseRechargesLikeUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.saveCard(org, "pm_1")
	f.buy(org, "pi_p", usd(100_00), ledger.PurchaseOrder{})
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("30"), Amount: crp("50")}); err != nil {
		t.Fatal(err)
	}
	f.refund("pi_p", 80_00) // 100 → 20, below the threshold: one attempt, not paused
	if as := f.attempts(org); len(as) != 1 || as[0].Credits != cr("50") {
		t.Fatalf("attempts %+v after a refund below the threshold, want one of 50", as)
	}
	if r, err := f.l.Recharge(f.ctx, f.pool, org); err != nil || r.Paused {
		t.Fatalf("recharge %+v, %v; want armed, not paused", r, err)
	}
	f.verify()
}
