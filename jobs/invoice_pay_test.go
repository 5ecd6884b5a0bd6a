package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/payments"
	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// TestInvoicePay_LateRetryAndPaymentsOff: the Stripe invoice is created and
// recorded, then paying it fails and Stripe forgets the idempotency keys
// (after 24 hours): the late retry pays that same Stripe invoice, creating no
// other. Without payments configured the invoice stays open with the reason
// recorded and the task is archived.
func TestInvoicePay_LateRetryAndPaymentsOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := stripefake.New(t)
	pool := ledgertest.NewPool(t)
	clock := ledgertest.NewClock(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC))
	l := ledger.New(config.DefaultCatalog(), clock)
	on := true
	cus, pm := fake.NewCustomerWithCard(t, "tok_visa")
	for org, card := range map[string][2]string{"acme": {cus, pm}, "offline": {"cus_offline", "pm_offline"}} {
		if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: org, Plan: "standard"}); err != nil {
				return err
			}
			if _, err := l.SetPaymentMethod(ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: card[0], PaymentMethodID: card[1]}); err != nil {
				return err
			}
			_, err := l.SetInvoiceSettings(ctx, tx, ledger.InvoiceSettings{OrgID: org, AutoPay: &on})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(time.Date(2026, 2, 1, 1, 0, 0, 0, time.UTC))
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.MakeInvoices(ctx, tx, []string{"acme", "offline"}, clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	run := func(h *jobs.InvoicePayHandler, org string) error {
		t.Helper()
		task, err := jobs.NewInvoicePayTask(org, "2026-01")
		if err != nil {
			t.Fatal(err)
		}
		return h.ProcessTask(ctx, task)
	}
	invoice := func(org string) ledger.Invoice {
		t.Helper()
		inv, err := l.GetInvoice(ctx, pool, org, "2026-01")
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}

	h := &jobs.InvoicePayHandler{Ledger: l, DB: pool, Invoicer: payments.NewStripeWithBackend("sk_test_creditd", fake.Backend()), Clock: clock}
	fake.FailNext("/v1/invoices/", 1, stripefake.Fault500) // the first call after creating: reading it back
	if err := run(h, "acme"); err == nil {
		t.Fatal("the task succeeded through a Stripe 500")
	}
	first := invoice("acme")
	if first.Status != ledger.InvoiceOpen || first.StripeInvoiceID == "" {
		t.Fatalf("after the failure: %s, Stripe %q; want open with its Stripe invoice recorded", first.Status, first.StripeInvoiceID)
	}
	fake.ExpireIdempotencyKeys()
	if err := run(h, "acme"); err != nil {
		t.Fatal(err)
	}
	paid := invoice("acme")
	if paid.Status != ledger.InvoicePaid || paid.StripeInvoiceID != first.StripeInvoiceID {
		t.Fatalf("after the retry: %s, Stripe %q; want paid through %s", paid.Status, paid.StripeInvoiceID, first.StripeInvoiceID)
	}
	if n, charged := len(fake.Invoices(cus)), fake.Charges(cus); n != 1 || charged != 1000 {
		t.Fatalf("%d Stripe invoices, %d cents charged; want 1 and 1000", n, charged)
	}
	if err := run(h, "acme"); err != nil { // once more: nothing to do
		t.Fatal(err)
	}
	if n := len(fake.Invoices(cus)); n != 1 {
		t.Fatalf("%d Stripe invoices after a third run, want 1", n)
	}

	off := &jobs.InvoicePayHandler{Ledger: l, DB: pool}
	if err := run(off, "offline"); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("payments off: err = %v, want the task archived", err)
	}
	if inv := invoice("offline"); inv.Status != ledger.InvoiceOpen || !strings.Contains(inv.PaymentError, "payments_not_configured") {
		t.Fatalf("payments off: %s, error %q; want open with payments_not_configured", inv.Status, inv.PaymentError)
	}
}
