package ledger_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func (f *fixture) saveCard(org, pm string) {
	f.t.Helper()
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: "cus_" + org, PaymentMethodID: pm,
			Brand: "visa", Last4: "4242"})
		return err
	})
}

func (f *fixture) setRecharge(r ledger.RechargeSettings) (ledger.RechargeSettings, error) {
	var out ledger.RechargeSettings
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		out, err = f.l.SetRecharge(f.ctx, tx, r)
		return err
	})
	return out, err
}

func (f *fixture) attempts(org string) []ledger.RechargeAttempt {
	f.t.Helper()
	as, err := f.l.RechargeAttempts(f.ctx, f.pool, org, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

func TestRecharge_SettingsNeedACardAndValidInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	zero := cr("0")
	eur := credits.Money{Minor: 100, Currency: "EUR"}
	tests := []struct {
		name  string
		r     ledger.RechargeSettings
		field string
	}{
		{"no card", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10"), Amount: crp("50")}, "payment_method"},
		{"neither amount nor target", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10")}, "amount"},
		{"both", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10"), Amount: crp("5"), Target: crp("50")}, "amount"},
		{"zero amount", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10"), Amount: &zero}, "amount"},
		{"target not above threshold", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10"), Target: crp("10")}, "target"},
		{"negative threshold", ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("-1"), Amount: crp("5")}, "threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.setRecharge(tt.r)
			var v *ledger.ValidationError
			if !errors.As(err, &v) || v.Field != tt.field {
				t.Fatalf("err = %v, want a validation error of %s", err, tt.field)
			}
		})
	}
	f.saveCard(org, "pm_card1")
	_, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("10"), Amount: crp("50"), MonthlyCap: &eur})
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "monthly_cap" {
		t.Fatalf("cap in another currency: %v", err)
	}
	err = ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: "nope", PaymentMethodID: "pm_1"})
		return err
	})
	if !errors.As(err, &v) || v.Field != "customer" {
		t.Fatalf("bad customer id: %v", err)
	}
}

func TestRecharge_OneAttemptPerCrossing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme", "admin@acme.test")
	f.saveCard(org, "pm_card1")
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("500")}); err != nil {
		t.Fatal(err)
	}
	f.use(org, "e1", "850") // 150: above the threshold
	if n := len(f.attempts(org)); n != 0 {
		t.Fatalf("%d attempts above the threshold", n)
	}

	// 50 concurrent writers take it below: exactly one attempt.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := ledger.UsageEvent{OrgID: org, EventID: fmt.Sprint("c", i), Amount: crp("2")}
			errs <- ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) error {
				_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{ev})
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
	as := f.attempts(org)
	if len(as) != 1 || as[0].Status != ledger.RechargePending || as[0].Credits != cr("500") ||
		as[0].Amount != (credits.Money{Minor: 500_00, Currency: "USD"}) || as[0].PaymentMethodID != "pm_card1" {
		t.Fatalf("attempts %+v, want one pending of 500 credits for 500.00 USD", as)
	}

	// Success: credited once, under the PaymentIntent's key, and the gate re-arms.
	for range 2 {
		f.tx(func(tx pgx.Tx) error {
			_, err := f.l.CompleteRecharge(f.ctx, tx, org, as[0].ID, "pi_1")
			return err
		})
	}
	f.wantAvailable(org, "550")
	b := f.balance(org)
	recharged := 0
	for _, lot := range b.Lots {
		if lot.Source == ledger.SourceRecharge && lot.ExpiresAt == nil {
			recharged++
		}
	}
	if recharged != 1 {
		t.Fatalf("%d recharge lots, want 1: %+v", recharged, b.Lots)
	}
	pays, err := f.l.Payments(f.ctx, f.pool, org, time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(pays) != 1 || pays[0].PaymentID != "pi_1" || pays[0].Kind != ledger.PaymentRecharge || pays[0].Credits != cr("500") ||
		pays[0].Paid != (credits.Money{Minor: 500_00, Currency: "USD"}) {
		t.Fatalf("payments %+v, want the one recharge of 500 credits for 500.00 USD", pays)
	}
	f.use(org, "e2", "460") // 90: the next crossing opens the next attempt
	if as := f.attempts(org); len(as) != 2 || as[0].Status != ledger.RechargePending || as[1].Status != ledger.RechargeSucceeded {
		t.Fatalf("attempts %+v", as)
	}
	f.verify()
}

func TestRecharge_TargetCapAndFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme", "admin@acme.test")
	f.saveCard(org, "pm_card1")
	capUSD := credits.Money{Minor: 1000_00, Currency: "USD"}
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Target: crp("800"), MonthlyCap: &capUSD}); err != nil {
		t.Fatal(err)
	}
	f.use(org, "e1", "950.5") // 49.5: one charge to the target, 750.5 credits
	as := f.attempts(org)
	if len(as) != 1 || as[0].Credits != cr("750.5") || as[0].Amount.Minor != 750_50 {
		t.Fatalf("attempts %+v, want one of 750.5 credits for 750.50 USD", as)
	}
	f.tx(func(tx pgx.Tx) error { _, err := f.l.CompleteRecharge(f.ctx, tx, org, as[0].ID, "pi_1"); return err })
	f.use(org, "e2", "750") // 50 again: another 750 would pass the 1,000.00 cap
	if n := len(f.attempts(org)); n != 1 {
		t.Fatalf("%d attempts, want the cap to stop the second", n)
	}

	// A decline pauses auto-recharge, alerts once, and keeps the error.
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetRecharge(f.ctx, tx, ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("10")})
		return err
	})
	f.use(org, "e3", "1") // below again, no cap now: an attempt
	as = f.attempts(org)
	if len(as) != 2 || as[0].Status != ledger.RechargePending {
		t.Fatalf("attempts %+v", as)
	}
	decline := ledger.RechargeError{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}
	for range 2 {
		f.tx(func(tx pgx.Tx) error { return f.l.FailRecharge(f.ctx, tx, org, as[0].ID, decline) })
	}
	rs, err := f.l.Recharge(f.ctx, f.pool, org)
	if err != nil || !rs.Paused || rs.LastError == nil || rs.LastError.DeclineCode != "insufficient_funds" {
		t.Fatalf("settings %+v, %v; want paused with the decline", rs, err)
	}
	failed := 0
	for _, n := range f.notifications(org) {
		if n.Kind == ledger.AlertRechargeFailed {
			failed++
			if n.Details["decline_code"] != "insufficient_funds" || len(n.Deliveries) != 1 {
				t.Fatalf("recharge failed notification %+v", n)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d recharge-failed alerts, want 1", failed)
	}
	f.use(org, "e4", "1")
	if n := len(f.attempts(org)); n != 2 {
		t.Fatalf("%d attempts while paused, want no new one", n)
	}
	// A new card ends the pause; the next write below the threshold charges it.
	f.saveCard(org, "pm_card2")
	f.use(org, "e5", "1")
	if as := f.attempts(org); len(as) != 3 || as[0].PaymentMethodID != "pm_card2" {
		t.Fatalf("attempts %+v, want a new one on the new card", as)
	}
	var refs []ledger.RechargeRef
	now := f.clock.Now()
	f.tx(func(tx pgx.Tx) (err error) {
		refs, err = f.l.ClaimRecharges(f.ctx, tx, now, 10*time.Minute, 10)
		return err
	})
	if len(refs) != 1 || refs[0].AttemptID != f.attempts(org)[0].ID {
		t.Fatalf("claimed %+v, want the pending attempt", refs)
	}
	f.verify()
}

// The database itself refuses a second pending attempt of one org, whatever
// the code above it does.
func TestRecharge_DatabaseAllowsOnePendingAttempt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.saveCard(org, "pm_card1")
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("500")}); err != nil {
		t.Fatal(err)
	}
	f.use(org, "e1", "950")
	if as := f.attempts(org); len(as) != 1 || as[0].Status != ledger.RechargePending {
		t.Fatalf("attempts %+v, want one pending", as)
	}
	_, err := f.pool.Exec(f.ctx, `INSERT INTO recharge_attempts (org_id, attempt_id, status, credits, amount_minor, currency,
		customer_id, payment_method_id, created_at, relay_after)
		VALUES ($1, 'rch_000000000000000000000001', 'pending', 1000, 100, 'USD', 'cus_acme', 'pm_card1', now(), now())`, org)
	if err == nil || !strings.Contains(err.Error(), "recharge_attempts_one_in_flight") {
		t.Fatalf("a second pending attempt: %v, want the one-in-flight index to refuse it", err)
	}
}

// TestRecharge_ArmedWhileLow: auto-recharge armed while the balance is
// already at or below its threshold charges at once, not at the next spend;
// an org the cycle's cap left low is charged by the first sweep of the next
// cycle, without waiting for a write.
func TestRecharge_ArmedWhileLow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t.Run("turned on below the threshold", func(t *testing.T) {
		org := f.standardOrg("low", "admin@low.test")
		f.use(org, "e1", "950") // 50, nothing armed
		f.saveCard(org, "pm_card1")
		if n := len(f.attempts(org)); n != 0 {
			t.Fatalf("%d attempts from saving a card with auto-recharge off", n)
		}
		if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("500")}); err != nil {
			t.Fatal(err)
		}
		as := f.attempts(org)
		if len(as) != 1 || as[0].Status != ledger.RechargePending || as[0].Credits != cr("500") {
			t.Fatalf("attempts %+v, want one pending of 500 credits opened by turning it on", as)
		}
		if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("500")}); err != nil {
			t.Fatal(err)
		}
		if n := len(f.attempts(org)); n != 1 {
			t.Fatalf("%d attempts after setting it again, want still the one pending", n)
		}
	})
	t.Run("cap spent, next cycle", func(t *testing.T) {
		org := "capped"
		f.newOrg(ledger.NewOrg{ID: org, Plan: "enterprise", Anchor: &t0})
		f.advance(t0.Add(time.Hour), org)
		f.grant(org, "1000", ledger.SourcePromo, "welcome", nil)
		f.saveCard(org, "pm_card1")
		capUSD := credits.Money{Minor: 500_00, Currency: "USD"}
		if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("100"), Amount: crp("500"),
			MonthlyCap: &capUSD}); err != nil {
			t.Fatal(err)
		}
		f.use(org, "e1", "950") // 50: the first charge
		as := f.attempts(org)
		if len(as) != 1 {
			t.Fatalf("attempts %+v", as)
		}
		f.tx(func(tx pgx.Tx) error {
			_, err := f.l.CompleteRecharge(f.ctx, tx, org, as[0].ID, "pi_capped1")
			return err
		})
		f.use(org, "e2", "500") // 50 again: the cap is spent this cycle
		f.clock.Set(t0.Add(2 * time.Hour))
		f.advance(t0.Add(2*time.Hour), org)
		if n := len(f.attempts(org)); n != 1 {
			t.Fatalf("%d attempts within the capped cycle, want 1", n)
		}
		f.clock.Set(t0.AddDate(0, 1, 0).Add(time.Hour))
		f.advance(t0.AddDate(0, 1, 0).Add(time.Hour), org) // the next cycle: no write, the sweep charges
		as = f.attempts(org)
		if len(as) != 2 || as[0].Status != ledger.RechargePending {
			t.Fatalf("attempts %+v, want a new pending one in the next cycle", as)
		}
	})
	f.verify()
}
