package ledger_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

func (f *fixture) detach(pm string) string {
	f.t.Helper()
	var org string
	f.tx(func(tx pgx.Tx) (err error) {
		org, err = f.l.DetachPaymentMethod(f.ctx, tx, pm)
		return err
	})
	return org
}

func TestDetachPaymentMethod_ClosesTheRechargeGate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourceAdjustment, "start", nil)
	f.saveCard(org, "pm_1")
	if _, err := f.setRecharge(ledger.RechargeSettings{OrgID: org, Enabled: true, Threshold: cr("30"), Amount: crp("50")}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // a replayed event
		if got := f.detach("pm_1"); got != org && got != "" {
			t.Fatalf("detach pm_1: org %q", got)
		}
	}
	if _, err := f.l.GetPaymentMethod(f.ctx, f.pool, org); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("card after detach: %v, want ErrNotFound", err)
	}
	r, err := f.l.Recharge(f.ctx, f.pool, org)
	if err != nil || !r.Paused || r.LastError == nil || r.LastError.Code != "payment_method_detached" {
		t.Fatalf("recharge %+v, %v; want paused: payment_method_detached", r, err)
	}
	f.use(org, "u1", "80") // below the threshold: the detached card is not charged
	if as := f.attempts(org); len(as) != 0 {
		t.Fatalf("attempts %+v after the card was detached, want none", as)
	}
	// A late payment_method.attached of the detached card cannot save it.
	err = ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: "cus_acme", PaymentMethodID: "pm_1"})
		return err
	})
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "payment_method" {
		t.Fatalf("saving the detached card again: %v, want refused", err)
	}
	// A new card ends the pause and charges on the next crossing.
	f.saveCard(org, "pm_2")
	f.use(org, "u2", "1")
	if as := f.attempts(org); len(as) != 1 || as[0].PaymentMethodID != "pm_2" {
		t.Fatalf("attempts %+v after a new card, want one on pm_2", as)
	}
	f.verify()
}

func TestDetachPaymentMethod_UnknownIsRememberedAndRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	if got := f.detach("pm_early"); got != "" {
		t.Fatalf("detach of a card no org has: org %q", got)
	}
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: "cus_acme", PaymentMethodID: "pm_early"})
		return err
	})
	var v *ledger.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("saving a card detached before it was attached: %v, want refused", err)
	}
	if err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.DetachPaymentMethod(f.ctx, tx, "not-a-pm")
		return err
	}); !errors.As(err, &v) || v.Field != "payment_method" {
		t.Fatalf("detach of a malformed id: %v, want refused", err)
	}
}
