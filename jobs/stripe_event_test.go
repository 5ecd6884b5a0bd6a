package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// stripeEvent is a payment_intent.succeeded event as Stripe sends it.
func stripeEvent(id, pi string, amount int64, metadata map[string]string, customer string) []byte {
	obj := map[string]any{"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount,
		"currency": "usd", "status": "succeeded", "metadata": metadata}
	if customer != "" {
		obj["customer"] = customer
	}
	ev := map[string]any{"id": id, "object": "event", "type": "payment_intent.succeeded", "api_version": "2023-10-16",
		"created": time.Now().Unix(), "data": map[string]any{"object": obj}}
	b, _ := json.Marshal(ev)
	return b
}

func TestStripeEvent_CreditsOnceInAnyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	h := &jobs.StripeEventHandler{Ledger: l, DB: pool}
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: "acme", Plan: "standard"}); err != nil {
			return err
		}
		_, err := l.SetPaymentMethod(ctx, tx, ledger.PaymentMethod{OrgID: "acme", CustomerID: "cus_acme", PaymentMethodID: "pm_1"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	deliver := func(id string, payload []byte) {
		t.Helper()
		for range 5 { // Stripe delivers again; each is stored once and acted on once
			if _, err := l.RecordStripeEvent(ctx, pool, id, "payment_intent.succeeded", payload); err != nil {
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
	available := func() credits.Credits {
		t.Helper()
		b, err := l.Balance(ctx, pool, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return b.Available
	}
	// A purchase of 20.00 by metadata, delivered five times: 20 credits.
	deliver("evt_1", stripeEvent("evt_1", "pi_p1", 20_00, map[string]string{"org_id": "acme"}, ""))
	// The same payment in a second event (Stripe sends e.g. checkout and
	// payment_intent events for one payment): still once.
	deliver("evt_2", stripeEvent("evt_2", "pi_p1", 20_00, nil, "cus_acme"))
	if got := available(); got != credits.MustParse("20") {
		t.Fatalf("available %s after one purchase delivered ten times, want 20", got)
	}
	// Below the catalog's 5.00 minimum: recorded as refused, not credited.
	deliver("evt_3", stripeEvent("evt_3", "pi_p2", 3_00, map[string]string{"org_id": "acme"}, ""))
	ev, err := l.GetStripeEvent(ctx, pool, "evt_3")
	if err != nil || !strings.Contains(ev.Result, "refused") || ev.ProcessedAt == nil {
		t.Fatalf("event %+v, %v; want processed as refused", ev, err)
	}
	// A recharge: the webhook and the recharge task both report it, in
	// either order; the credits arrive once.
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		amount := credits.MustParse("50")
		_, err := l.SetRecharge(ctx, tx, ledger.RechargeSettings{OrgID: "acme", Enabled: true, Threshold: credits.MustParse("30"), Amount: &amount})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.RecordUsage(ctx, tx, []ledger.UsageEvent{{OrgID: "acme", EventID: "u1", Amount: ptr(credits.MustParse("15"))}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	as, err := l.RechargeAttempts(ctx, pool, "acme", 1)
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts %v, %v", as, err)
	}
	deliver("evt_4", stripeEvent("evt_4", "pi_r1", 50_00, map[string]string{"org_id": "acme", "recharge_attempt": as[0].ID}, "cus_acme"))
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.CompleteRecharge(ctx, tx, "acme", as[0].ID, "pi_r1") // the task, later
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := available(); got != credits.MustParse("55") {
		t.Fatalf("available %s, want 5 + 50 credited once", got)
	}
	// Not ours: a customer no org has.
	deliver("evt_5", stripeEvent("evt_5", "pi_x", 10_00, nil, "cus_other"))
	if ev, _ := l.GetStripeEvent(ctx, pool, "evt_5"); !strings.Contains(ev.Result, "unmatched") {
		t.Fatalf("event %+v, want unmatched", ev)
	}
	rep, err := l.Verify(ctx, pool)
	if err != nil || !rep.OK {
		t.Fatalf("verify %+v, %v", rep, err)
	}
	// A malformed task is archived naming the field.
	err = h.ProcessTask(ctx, asynq.NewTask(jobs.TypeStripeEvent, []byte(`{"v":1}`)))
	if err == nil || !strings.Contains(fmt.Sprint(err), "event_id") {
		t.Fatalf("task without event id: %v", err)
	}
}

func TestStripeEvent_SetupIntentSavesTheCard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	h := &jobs.StripeEventHandler{Ledger: l, DB: pool}
	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: "acme", Plan: "standard"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"id":"evt_s1","object":"event","type":"setup_intent.succeeded","data":{"object":{"id":"seti_1",` +
		`"object":"setup_intent","status":"succeeded","customer":"cus_A","metadata":{"org_id":"acme"},` +
		`"payment_method":{"id":"pm_C","object":"payment_method","type":"card","card":{"brand":"visa","last4":"4242"}}}}}`)
	if _, err := l.RecordStripeEvent(ctx, pool, "evt_s1", "setup_intent.succeeded", payload); err != nil {
		t.Fatal(err)
	}
	task, err := jobs.NewStripeEventTask("evt_s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	pm, err := l.GetPaymentMethod(ctx, pool, "acme")
	if err != nil || pm.CustomerID != "cus_A" || pm.PaymentMethodID != "pm_C" || pm.Brand != "visa" || pm.Last4 != "4242" {
		t.Fatalf("payment method %+v, %v", pm, err)
	}
}
