package jobs_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs/payments"
	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// rechargeRedisDB is the Redis database of the recharge test.
const rechargeRedisDB = 1

func (r *alertRig) latestAttempt(org string) ledger.RechargeAttempt {
	r.t.Helper()
	as, err := r.ledger.RechargeAttempts(r.ctx, r.pool, org, 1)
	if err != nil || len(as) == 0 {
		r.t.Fatalf("attempts %v, %v", as, err)
	}
	return as[0]
}

func TestRecharge_EndToEndAgainstFakeStripe(t *testing.T) {
	fake := stripefake.New(t)
	cus, pm := fake.NewCustomerWithCard(t, "tok_visa")
	t.Parallel()
	r := newAlertRig(t, rechargeRedisDB, payments.NewStripeWithBackend("sk_test_creditd", fake.Backend()))
	const org = "acme"
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	r.tx(func(tx pgx.Tx) error {
		if _, err := r.ledger.CreateOrg(r.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard", Anchor: &start, Emails: []string{"admin@acme.test"}}); err != nil {
			return err
		}
		if _, err := r.ledger.AdvanceCycles(r.ctx, tx, []string{org}, now); err != nil {
			return err
		}
		if _, err := r.ledger.SetPaymentMethod(r.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: cus, PaymentMethodID: pm}); err != nil {
			return err
		}
		amount := credits.MustParse("500")
		_, err := r.ledger.SetRecharge(r.ctx, tx, ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: credits.MustParse("100"), Amount: &amount})
		return err
	})

	// Stripe charges, but its answer is lost: the retry under the same key
	// gets the same PaymentIntent, and the credits arrive once.
	fake.FailNext("/v1/payment_intents", 1, stripefake.FaultDropResponse)
	r.spend(org, "a", 50, "18", "100") // 50 concurrent tasks: 1,000 → 100, at the threshold
	waitFor(t, "the recharge to succeed", 30*time.Second, func() bool {
		return r.latestAttempt(org).Status == ledger.RechargeSucceeded
	})
	if got := fake.Charges(cus); got != 500_00 {
		t.Fatalf("Stripe charged %d cents, want 50000 once", got)
	}
	replays := 0
	for _, req := range fake.Requests() {
		if req.Path == "/v1/payment_intents" && req.Replayed {
			replays++
		}
	}
	if replays != 1 {
		t.Fatalf("%d replayed charges, want the one retry after the lost answer", replays)
	}
	b, err := r.ledger.Balance(r.ctx, r.pool, org)
	if err != nil || b.Available != credits.MustParse("600") {
		t.Fatalf("balance %+v, %v; want 600", b, err)
	}
	if as, _ := r.ledger.RechargeAttempts(r.ctx, r.pool, org, 10); len(as) != 1 {
		t.Fatalf("%d attempts, want 1", len(as))
	}

	// The card declines: one failed attempt, auto-recharge paused with the
	// decline as its last error, one alert, and no further charges.
	fake.SetDecline(pm, "card_declined", "insufficient_funds")
	r.spend(org, "b", 10, "50", "100")
	waitFor(t, "the recharge to fail", 30*time.Second, func() bool {
		return r.latestAttempt(org).Status == ledger.RechargeFailed
	})
	a := r.latestAttempt(org)
	if a.ErrorCode != "card_declined" || a.DeclineCode != "insufficient_funds" {
		t.Fatalf("failed attempt %+v", a)
	}
	rs, err := r.ledger.Recharge(r.ctx, r.pool, org)
	if err != nil || !rs.Paused || rs.LastError == nil || rs.LastError.DeclineCode != "insufficient_funds" {
		t.Fatalf("settings %+v, %v", rs, err)
	}
	r.spend(org, "c", 10, "10", "0")
	time.Sleep(300 * time.Millisecond)
	if as, _ := r.ledger.RechargeAttempts(r.ctx, r.pool, org, 10); len(as) != 2 {
		t.Fatalf("%d attempts after the decline, want no new one", len(as))
	}
	if got := fake.Charges(cus); got != 500_00 {
		t.Fatalf("Stripe charged %d cents in all, want still 50000", got)
	}
	failedAlerts := 0
	for _, n := range r.notifications(org) {
		if n.Kind == ledger.AlertRechargeFailed {
			failedAlerts++
		}
	}
	if failedAlerts != 1 {
		t.Fatalf("%d recharge-failed alerts, want 1", failedAlerts)
	}
	rep, err := r.ledger.Verify(r.ctx, r.pool)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
