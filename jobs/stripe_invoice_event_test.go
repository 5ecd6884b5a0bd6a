package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// stripeObjectEvent is an event of type typ carrying obj, as Stripe sends it.
func stripeObjectEvent(id, typ string, obj map[string]any) []byte {
	ev := map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": time.Now().Unix(), "data": map[string]any{"object": obj}}
	b, _ := json.Marshal(ev)
	return b
}

// TestStripeEvent_FollowsInvoices: invoice.payment_failed records the
// failure and leaves the invoice open; invoice.paid marks it paid, once
// however often it is delivered, and a later failure does not reopen it; the
// invoice's PaymentIntent is not credited as a purchase; Stripe invoices
// that are not creditd's are ignored.
func TestStripeEvent_FollowsInvoices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := ledgertest.NewPool(t)
	clock := ledgertest.NewClock(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC))
	l := ledger.New(config.DefaultCatalog(), clock)
	h := &jobs.StripeEventHandler{Ledger: l, DB: pool}
	tx := func(fn func(tx pgx.Tx) error) {
		t.Helper()
		if err := ledger.WithTx(ctx, pool, fn); err != nil {
			t.Fatal(err)
		}
	}
	tx(func(tx pgx.Tx) error {
		if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: "acme", Plan: "standard"}); err != nil {
			return err
		}
		_, err := l.SetPaymentMethod(ctx, tx, ledger.PaymentMethod{OrgID: "acme", CustomerID: "cus_acme", PaymentMethodID: "pm_1"})
		return err
	})
	clock.Set(time.Date(2026, 2, 1, 1, 0, 0, 0, time.UTC))
	tx(func(tx pgx.Tx) error { _, err := l.MakeInvoice(ctx, tx, "acme", "2026-01"); return err })

	deliver := func(id, typ string, obj map[string]any) {
		t.Helper()
		for range 2 {
			if _, err := l.RecordStripeEvent(ctx, pool, id, typ, stripeObjectEvent(id, typ, obj)); err != nil {
				t.Fatal(err)
			}
			task, err := jobs.NewStripeEventTask(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.ProcessTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
	}
	invoice := func() ledger.Invoice {
		t.Helper()
		inv, err := l.GetInvoice(ctx, pool, "acme", "2026-01")
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	ours := map[string]string{"org_id": "acme", "period": "2026-01"}
	stripeInv := func(extra map[string]any) map[string]any {
		obj := map[string]any{"id": "in_acme1", "object": "invoice", "customer": "cus_acme", "metadata": ours,
			"attempt_count": 1, "created": clock.Now().Unix()}
		for k, v := range extra {
			obj[k] = v
		}
		return obj
	}

	deliver("evt_fail", "invoice.payment_failed", stripeInv(nil))
	if inv := invoice(); inv.Status != ledger.InvoiceOpen || inv.PaymentError == "" || inv.StripeInvoiceID != "in_acme1" {
		t.Fatalf("after payment_failed: %s, error %q, Stripe %q; want open with the error", inv.Status, inv.PaymentError, inv.StripeInvoiceID)
	}
	paidAt := time.Date(2026, 2, 1, 2, 0, 0, 0, time.UTC)
	deliver("evt_paid", "invoice.paid", stripeInv(map[string]any{"status": "paid",
		"status_transitions": map[string]any{"paid_at": paidAt.Unix()}}))
	deliver("evt_fail_late", "invoice.payment_failed", stripeInv(nil))
	inv := invoice()
	if inv.Status != ledger.InvoicePaid || inv.PaidAt == nil || !inv.PaidAt.Equal(paidAt) || inv.PaymentError != "" {
		t.Fatalf("after paid: %s at %v, error %q; want paid at %s", inv.Status, inv.PaidAt, inv.PaymentError, paidAt)
	}

	// The invoice's PaymentIntent succeeds too: not a purchase.
	deliver("evt_pi", "payment_intent.succeeded", map[string]any{"id": "pi_inv1", "object": "payment_intent",
		"amount": 1000, "amount_received": 1000, "currency": "usd", "status": "succeeded", "customer": "cus_acme",
		"invoice": "in_acme1", "metadata": map[string]string{}})
	if ps, err := l.Payments(ctx, pool, "acme", time.Time{}, clock.Now().AddDate(1, 0, 0)); err != nil || len(ps) != 0 {
		t.Fatalf("payments %+v, %v: the invoice's payment was credited as a purchase", ps, err)
	}
	// Someone else's Stripe invoice.
	deliver("evt_other", "invoice.paid", map[string]any{"id": "in_other", "object": "invoice", "customer": "cus_acme"})
	for _, id := range []string{"evt_pi", "evt_other"} {
		ev, err := l.GetStripeEvent(ctx, pool, id)
		if err != nil || ev.ProcessedAt == nil {
			t.Fatalf("%s: %+v, %v; want processed", id, ev, err)
		}
	}
}
