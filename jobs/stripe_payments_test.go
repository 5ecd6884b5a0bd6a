package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// eventsFixture runs stripe:event tasks against a real database.
type eventsFixture struct {
	t    *testing.T
	ctx  context.Context
	pool interface {
		ledger.DBTX
		ledger.TxBeginner
	}
	l *ledger.Ledger
	h *jobs.StripeEventHandler
}

func newEventsFixture(t *testing.T, orgs ...string) *eventsFixture {
	t.Helper()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	f := &eventsFixture{t: t, ctx: context.Background(), pool: pool, l: l, h: &jobs.StripeEventHandler{Ledger: l, DB: pool}}
	for _, org := range orgs {
		f.tx(func(tx pgx.Tx) error {
			_, err := l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard"})
			return err
		})
	}
	return f
}

func (f *eventsFixture) tx(fn func(tx pgx.Tx) error) {
	f.t.Helper()
	if err := ledger.WithTx(f.ctx, f.pool, fn); err != nil {
		f.t.Fatal(err)
	}
}

// stripeEvent is one webhook event as Stripe sends it.
type stripeEventDoc struct {
	id, typ string
	payload []byte
}

func event(id, typ string, obj map[string]any) stripeEventDoc {
	b, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": time.Now().Unix(), "data": map[string]any{"object": obj}})
	if err != nil {
		panic(err)
	}
	return stripeEventDoc{id, typ, b}
}

// deliver delivers the events five times each, in the given order on even
// rounds and in reverse on odd ones: every event is stored once and acted
// on once, whatever the order.
func (f *eventsFixture) deliver(evs ...stripeEventDoc) {
	f.t.Helper()
	for round := range 5 {
		order := slices.Clone(evs)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, ev := range order {
			if _, err := f.l.RecordStripeEvent(f.ctx, f.pool, ev.id, ev.typ, ev.payload); err != nil {
				f.t.Fatal(err)
			}
			task, err := jobs.NewStripeEventTask(ev.id)
			if err != nil {
				f.t.Fatal(err)
			}
			if err := f.h.ProcessTask(f.ctx, task); err != nil {
				f.t.Fatalf("event %s: %v", ev.id, err)
			}
		}
	}
}

// wantResult checks what processing recorded on the event.
func (f *eventsFixture) wantResult(id, contains string) {
	f.t.Helper()
	ev, err := f.l.GetStripeEvent(f.ctx, f.pool, id)
	if err != nil || ev.ProcessedAt == nil || !strings.Contains(ev.Result, contains) {
		f.t.Fatalf("event %s: %+v, %v; want processed with %q", id, ev, err, contains)
	}
}

func (f *eventsFixture) balance(org string) ledger.Balance {
	f.t.Helper()
	b, err := f.l.Balance(f.ctx, f.pool, org)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *eventsFixture) wantAvailable(org, want string) {
	f.t.Helper()
	if got := f.balance(org).Available; got != credits.MustParse(want) {
		f.t.Fatalf("available %s, want %s", got, want)
	}
}

func (f *eventsFixture) verify() {
	f.t.Helper()
	rep, err := f.l.Verify(f.ctx, f.pool)
	if err != nil || !rep.OK {
		f.t.Fatalf("verify %+v, %v", rep, err)
	}
}

func paymentIntent(pi string, amount int64, metadata map[string]string) map[string]any {
	return map[string]any{"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount,
		"currency": "usd", "status": "succeeded", "metadata": metadata}
}

func checkoutSession(cs, pi string, amount int64, metadata map[string]string, extra map[string]any) map[string]any {
	obj := map[string]any{"id": cs, "object": "checkout.session", "mode": "payment", "payment_status": "paid",
		"status": "complete", "amount_total": amount, "currency": "usd", "payment_intent": pi, "metadata": metadata}
	for k, v := range extra {
		obj[k] = v
	}
	return obj
}

func TestStripeEvent_CheckoutAndPaymentIntentCreditOnce(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme", "beta")
	steps := []struct {
		name   string
		events []stripeEventDoc
		avail  string            // after the step
		result map[string]string // event id -> what its result says
	}{
		{"package: payment intent first", []stripeEventDoc{
			event("evt_pi1", "payment_intent.succeeded", paymentIntent("pi_1", 10_00, map[string]string{"org_id": "acme", "package": "starter"})),
			event("evt_cs1", "checkout.session.completed", checkoutSession("cs_1", "pi_1", 10_00, map[string]string{"org_id": "acme", "package": "starter"}, nil)),
		}, "1000", map[string]string{"evt_pi1": "purchase: 1000", "evt_cs1": "purchase: 1000"}},
		{"custom credits: checkout first", []stripeEventDoc{
			event("evt_cs2", "checkout.session.completed", checkoutSession("cs_2", "pi_2", 150_00, map[string]string{"org_id": "acme", "credits": "3"}, nil)),
			event("evt_pi2", "payment_intent.succeeded", paymentIntent("pi_2", 150_00, map[string]string{"org_id": "acme", "credits": "3"})),
		}, "1003", nil},
		{"catalog rate by client_reference_id", []stripeEventDoc{
			event("evt_cs3", "checkout.session.completed", checkoutSession("cs_3", "pi_3", 12_34, nil, map[string]any{"client_reference_id": "acme"})),
		}, "1015.34", map[string]string{"evt_cs3": "purchase: 12.34"}},
		{"package at the wrong price", []stripeEventDoc{
			event("evt_cs4", "checkout.session.completed", checkoutSession("cs_4", "pi_4", 9_00, map[string]string{"org_id": "acme", "package": "starter"}, nil)),
		}, "1015.34", map[string]string{"evt_cs4": "refused: amount: paid 9.00 USD, but package starter costs 10.00 USD"}},
		{"custom credits at the wrong price", []stripeEventDoc{
			event("evt_cs5", "checkout.session.completed", checkoutSession("cs_5", "pi_5", 100_00, map[string]string{"org_id": "acme", "credits": "3"}, nil)),
		}, "1015.34", map[string]string{"evt_cs5": "refused: amount"}},
		{"not a purchase", []stripeEventDoc{
			event("evt_cs6", "checkout.session.completed", checkoutSession("cs_6", "pi_6", 10_00, map[string]string{"org_id": "acme"}, map[string]any{"mode": "subscription"})),
			event("evt_cs7", "checkout.session.completed", checkoutSession("cs_7", "pi_7", 10_00, map[string]string{"org_id": "acme"}, map[string]any{"payment_status": "unpaid"})),
		}, "1015.34", map[string]string{"evt_cs6": "ignored", "evt_cs7": "ignored"}},
		{"paid later", []stripeEventDoc{
			event("evt_cs10", "checkout.session.completed", checkoutSession("cs_10", "pi_10", 10_00, map[string]string{"org_id": "acme"}, map[string]any{"payment_status": "unpaid"})),
			event("evt_cs11", "checkout.session.async_payment_succeeded", checkoutSession("cs_10", "pi_10", 10_00, map[string]string{"org_id": "acme"}, nil)),
		}, "1025.34", map[string]string{"evt_cs10": "ignored", "evt_cs11": "purchase: 10"}},
		{"no org", []stripeEventDoc{
			event("evt_cs8", "checkout.session.completed", checkoutSession("cs_8", "pi_8", 10_00, nil, map[string]any{"client_reference_id": "user-42"})),
		}, "1025.34", map[string]string{"evt_cs8": "unmatched"}},
		{"paths that disagree credit once", []stripeEventDoc{
			event("evt_pi9", "payment_intent.succeeded", paymentIntent("pi_9", 10_00, map[string]string{"org_id": "acme"})),
			event("evt_cs9", "checkout.session.completed", checkoutSession("cs_9", "pi_9", 10_00, map[string]string{"org_id": "acme", "package": "starter"}, nil)),
		}, "1035.34", map[string]string{"evt_pi9": "purchase: 10", "evt_cs9": "refused: conflict"}},
		{"one payment named for two orgs", []stripeEventDoc{
			event("evt_pi12", "payment_intent.succeeded", paymentIntent("pi_12", 10_00, map[string]string{"org_id": "acme"})),
			event("evt_cs12", "checkout.session.completed", checkoutSession("cs_12", "pi_12", 10_00, map[string]string{"org_id": "beta"}, nil)),
		}, "1045.34", map[string]string{"evt_pi12": "purchase: 10", "evt_cs12": "refused: conflict: payment credited to another org"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.t = t
			f.deliver(s.events...)
			f.wantAvailable("acme", s.avail)
			f.wantAvailable("beta", "0")
			for id, want := range s.result {
				f.wantResult(id, want)
			}
		})
	}
	f.t = t
	f.verify()
}

func charge(ch, pi string, amount, refunded int64) map[string]any {
	return map[string]any{"id": ch, "object": "charge", "amount": amount, "amount_refunded": refunded, "currency": "usd",
		"payment_intent": pi, "refunded": refunded == amount, "status": "succeeded"}
}

func dispute(dp, ch, pi string, amount int64) map[string]any {
	return map[string]any{"id": dp, "object": "dispute", "amount": amount, "currency": "usd", "charge": ch,
		"payment_intent": pi, "status": "needs_response"}
}

func TestStripeEvent_RefundsAndDisputesTakeBackOnce(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	f.deliver(event("evt_p1", "payment_intent.succeeded", paymentIntent("pi_1", 20_00, map[string]string{"org_id": "acme"})))
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: "acme", EventID: "u1", Amount: ptr(credits.MustParse("5"))}})
		return err
	})
	// Three partial refunds, each carrying the cumulative total, delivered
	// five times each and out of order: 20 taken back once, 15 from the
	// lot and the 5 spent as debt.
	f.deliver(
		event("evt_r3", "charge.refunded", charge("ch_1", "pi_1", 20_00, 20_00)),
		event("evt_r1", "charge.refunded", charge("ch_1", "pi_1", 20_00, 5_00)),
		event("evt_r2", "charge.refunded", charge("ch_1", "pi_1", 20_00, 12_00)),
	)
	b := f.balance("acme")
	if b.Available != credits.MustParse("-5") || b.Debt != credits.MustParse("5") || !b.Paused {
		t.Fatalf("balance %+v, want -5 in debt and paused", b)
	}
	// A dispute of money refunded already takes nothing more.
	f.deliver(event("evt_d1", "charge.dispute.created", dispute("dp_1", "ch_1", "pi_1", 20_00)))
	f.wantResult("evt_d1", "0 credits taken back")
	f.wantAvailable("acme", "-5")

	// A dispute of another purchase, delivered five times: once.
	f.deliver(event("evt_p2", "payment_intent.succeeded", paymentIntent("pi_2", 30_00, map[string]string{"org_id": "acme"})))
	f.deliver(event("evt_d2", "charge.dispute.created", dispute("dp_2", "ch_2", "pi_2", 10_00)))
	f.wantAvailable("acme", "15") // -5 + 30 - 10
	f.wantResult("evt_d2", "dispute of pi_2: 10.000 credits taken back")

	// A refund of a payment no org was credited for: unmatched, kept, and
	// taken back when the payment is credited after it.
	f.deliver(event("evt_r4", "charge.refunded", charge("ch_3", "pi_3", 10_00, 4_00)))
	f.wantResult("evt_r4", "unmatched: payment pi_3")
	f.deliver(event("evt_p3", "payment_intent.succeeded", paymentIntent("pi_3", 10_00, map[string]string{"org_id": "acme"})))
	f.wantAvailable("acme", "21") // 15 + 10 - 4
	// Neither names a payment intent: unmatched.
	f.deliver(event("evt_r5", "charge.refunded", map[string]any{"id": "ch_9", "object": "charge", "amount": 100, "amount_refunded": 100, "currency": "usd"}))
	f.wantResult("evt_r5", "unmatched: refund names no payment intent")

	h, err := f.l.History(f.ctx, f.pool, "acme", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h {
		if e.Kind == "refund" || e.Kind == "dispute" {
			kinds = append(kinds, e.Kind+":"+*e.PaymentID+":"+e.Amount.String())
		}
	}
	want := []string{"refund:pi_1:-15.000", "refund:pi_1:-5.000", "dispute:pi_2:-10.000", "refund:pi_3:-4.000"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("refund and dispute entries %v, want %v", kinds, want)
	}
	f.verify()
}

func paymentMethod(pm, customer string, metadata map[string]string) map[string]any {
	obj := map[string]any{"id": pm, "object": "payment_method", "type": "card", "metadata": metadata,
		"card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}}
	if customer != "" {
		obj["customer"] = customer
	}
	return obj
}

func TestStripeEvent_PaymentMethodAttachedAndDetached(t *testing.T) {
	t.Parallel()
	f := newEventsFixture(t, "acme")
	// Known by metadata, then by its customer.
	f.deliver(event("evt_a1", "payment_method.attached", paymentMethod("pm_A", "cus_A", map[string]string{"org_id": "acme"})))
	f.wantResult("evt_a1", "saved card pm_A")
	f.deliver(event("evt_a2", "payment_method.attached", paymentMethod("pm_B", "cus_A", nil)))
	pm, err := f.l.GetPaymentMethod(f.ctx, f.pool, "acme")
	if err != nil || pm.PaymentMethodID != "pm_B" || pm.CustomerID != "cus_A" || pm.Brand != "visa" || pm.Last4 != "4242" {
		t.Fatalf("card %+v, %v; want pm_B, visa 4242", pm, err)
	}
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetRecharge(f.ctx, tx, ledger.RechargeSettings{OrgID: "acme", Enabled: true,
			Threshold: credits.MustParse("10"), Amount: ptr(credits.MustParse("50"))})
		return err
	})
	// The org is at 0, below the threshold: turning it on charged at once.
	opened, err := f.l.RechargeAttempts(f.ctx, f.pool, "acme", 10)
	if err != nil || len(opened) != 1 {
		t.Fatalf("attempts %+v, %v; want the one opened by turning auto-recharge on", opened, err)
	}
	// Detached (the object names no customer any more), delivered five
	// times and with a late attached of the same card between: removed,
	// auto-recharge paused, never saved again.
	f.deliver(
		event("evt_d1", "payment_method.detached", paymentMethod("pm_B", "", nil)),
		event("evt_a3", "payment_method.attached", paymentMethod("pm_B", "cus_A", map[string]string{"org_id": "acme"})),
	)
	f.wantResult("evt_d1", "detached card pm_B")
	if _, err := f.l.GetPaymentMethod(f.ctx, f.pool, "acme"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("card after detach: %v, want none", err)
	}
	r, err := f.l.Recharge(f.ctx, f.pool, "acme")
	if err != nil || !r.Paused || r.LastError == nil || r.LastError.Code != "payment_method_detached" {
		t.Fatalf("recharge %+v, %v; want paused, payment_method_detached", r, err)
	}
	// The gate is closed: usage below the threshold opens no charge.
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: "acme", EventID: "u1", Amount: ptr(credits.MustParse("1"))}})
		return err
	})
	if as, err := f.l.RechargeAttempts(f.ctx, f.pool, "acme", 10); err != nil || len(as) != 1 || as[0].ID != opened[0].ID {
		t.Fatalf("attempts %+v, %v; want no new one with the card detached", as, err)
	}
	// A detached card no org had, then its late attached: refused.
	f.deliver(
		event("evt_d2", "payment_method.detached", paymentMethod("pm_X", "", nil)),
		event("evt_a4", "payment_method.attached", paymentMethod("pm_X", "cus_A", map[string]string{"org_id": "acme"})),
	)
	f.wantResult("evt_d2", "unmatched")
	f.wantResult("evt_a4", "refused")
	// Nobody's customer and no metadata: unmatched.
	f.deliver(event("evt_a5", "payment_method.attached", paymentMethod("pm_C", "cus_nobody", nil)))
	f.wantResult("evt_a5", "unmatched")
	f.verify()
}
