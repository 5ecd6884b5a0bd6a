package jobs_test

import (
	"errors"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Regressions found by a review of the payment paths (issue 6); each failed
// before its fix.

// A PaymentIntent a Stripe invoice created (invoice set: an auto-pay
// invoice, a subscription's invoice) pays that invoice; it is not a
// one-time purchase of credits and must not be credited as one.
func TestPaymentRegression_InvoicePaymentIntentIsNotCreditedAsPurchase(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: "acme", CustomerID: "cus_acme", PaymentMethodID: "pm_1"})
		return err
	})
	pi := paymentIntent("pi_invoice1", 50_00, map[string]string{})
	pi["customer"] = "cus_acme"
	pi["invoice"] = "in_autopay1"
	f.deliver(event("evt_inv1", "payment_intent.succeeded", pi))
	f.wantAvailable("acme", "0")
	f.verify()
}

// A payment_intent.succeeded naming a recharge attempt the ledger refuses
// (no such attempt, or one that failed before) is a refusal: it must be
// recorded on the event like a refused purchase, not retried as if the
// database were down.
func TestPaymentRegression_RefusedRechargeEventIsRecordedNotRetried(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	ev := event("evt_rch1", "payment_intent.succeeded",
		paymentIntent("pi_rch1", 5_00, map[string]string{"org_id": "acme", "recharge_attempt": "rch_unknown"}))
	if _, err := f.l.RecordStripeEvent(f.ctx, f.pool, ev.id, ev.typ, ev.payload); err != nil {
		t.Fatal(err)
	}
	task, err := jobs.NewStripeEventTask(ev.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.h.ProcessTask(f.ctx, task); err != nil && !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask: %v: retried (16 times, then archived unrecorded), want recorded as refused", err)
	}
	f.wantResult(ev.id, "refused")
}

// A stored event without a data object (malformed) must be archived or
// recorded, not panic in the worker.
func TestPaymentRegression_EventWithoutDataDoesNotPanic(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	for _, typ := range []string{"payment_intent.succeeded", "charge.refunded", "checkout.session.completed", "payment_method.detached"} {
		t.Run(typ, func(t *testing.T) {
			id := "evt_nodata_" + typ[:6]
			payload := []byte(`{"id":"` + id + `","object":"event","type":"` + typ + `"}`)
			if _, err := f.l.RecordStripeEvent(f.ctx, f.pool, id, typ, payload); err != nil {
				t.Fatal(err)
			}
			task, err := jobs.NewStripeEventTask(id)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("ProcessTask panicked: %v", r)
				}
			}()
			_ = f.h.ProcessTask(f.ctx, task)
		})
	}
}

// Reconciliation must not credit the PaymentIntent of a paid Stripe invoice
// (an auto-pay invoice of the org's customer) as a one-time purchase.
func TestPaymentRegression_ReconcileDoesNotCreditInvoicePayments(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	inv, err := r.api.Invoices.New(&stripe.InvoiceParams{Customer: stripe.String(r.cus),
		CollectionMethod:     stripe.String(string(stripe.InvoiceCollectionMethodChargeAutomatically)),
		DefaultPaymentMethod: stripe.String(r.pm)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.api.InvoiceItems.New(&stripe.InvoiceItemParams{Customer: stripe.String(r.cus), Invoice: stripe.String(inv.ID),
		Amount: stripe.Int64(29_00), Description: stripe.String("usage 2026-11")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.api.Invoices.Pay(inv.ID, &stripe.InvoicePayParams{OffSession: stripe.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	before := r.available()
	res := r.reconcile()
	if len(res.Credited) != 0 || r.available() != before {
		t.Fatalf("reconciliation credited %+v (available %s -> %s) for the payment of invoice %s", res.Credited, before, r.available(), inv.ID)
	}
	r.verify()
}

// An inquiry (a dispute in status warning_needs_response: Amex/Discover
// pre-dispute, no funds withdrawn, still refundable) arrives as
// charge.dispute.created too. No money went back to the payer, so no
// credits may be taken back and auto-recharge not paused for it.
func TestPaymentRegression_DisputeInquiryTakesNothingBack(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	f.deliver(event("evt_pq1", "payment_intent.succeeded", paymentIntent("pi_q1", 20_00, map[string]string{"org_id": "acme"})))
	inquiry := dispute("dp_q1", "ch_q1", "pi_q1", 20_00)
	inquiry["status"] = "warning_needs_response"
	inquiry["is_charge_refundable"] = true
	f.deliver(event("evt_dq1", "charge.dispute.created", inquiry))
	f.wantAvailable("acme", "20")
	// It escalates: the funds are withdrawn, and the credits taken back once,
	// also when the dispute's created event comes again.
	escalated := dispute("dp_q1", "ch_q1", "pi_q1", 20_00)
	escalated["status"] = "needs_response"
	f.deliver(event("evt_dq2", "charge.dispute.funds_withdrawn", escalated))
	f.deliver(event("evt_dq3", "charge.dispute.created", escalated))
	f.wantAvailable("acme", "0")
	f.verify()
}

// The consequence of a transient Stripe answer (409 idempotency_key_in_use
// while the first request is in flight, or a processing PaymentIntent)
// being recorded as a decline: the attempt is failed, and when the first
// request's charge succeeds, neither the webhook nor reconciliation credit
// it. The card was charged once and nothing was credited.
func TestPaymentRegression_ChargeThatSucceedsAfterAFailedAttemptIsCredited(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	r.spend("u1", "150") // 200 -> 50: at or below the threshold, an attempt opens
	a := r.pendingAttempt()
	r.tx(func(tx pgx.Tx) error { // what the task records for the 409 it took for a decline
		return r.ledger.FailRecharge(r.ctx, tx, reconcileOrg, a.ID, ledger.RechargeError{Code: "idempotency_key_in_use", Message: "in progress"})
	})
	pi := r.chargeLikeTheTask(a) // the first request, still in flight at Stripe, succeeds
	res := r.reconcile()
	if r.fake.Charges(r.cus) != a.Amount.Minor || r.available() != credits.MustParse("550") {
		t.Fatalf("charged %d for %s, available %s (want 550); reconciliation: %+v", r.fake.Charges(r.cus), pi, r.available(), res.Mismatches)
	}
}
