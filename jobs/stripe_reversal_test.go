package jobs_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
)

// rawEvent wraps an object exactly as the Stripe API (here the fake, over
// HTTP) returned it into an event.
func rawEvent(t *testing.T, id, typ string, raw json.RawMessage) stripeEventDoc {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"data": map[string]any{"object": raw}})
	if err != nil {
		t.Fatal(err)
	}
	return stripeEventDoc{id, typ, b}
}

// latestCharge is the PaymentIntent's charge as Stripe returns it now.
func latestCharge(t *testing.T, api *client.API, pi string) json.RawMessage {
	t.Helper()
	got, err := api.PaymentIntents.Get(pi, &stripe.PaymentIntentParams{Expand: []*string{stripe.String("latest_charge")}})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(got.LastResponse.RawJSON, &obj); err != nil {
		t.Fatal(err)
	}
	return obj["latest_charge"]
}

func refund(t *testing.T, api *client.API, pi string, amount int64) {
	t.Helper()
	if _, err := api.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi), Amount: stripe.Int64(amount)}); err != nil {
		t.Fatal(err)
	}
}

// The objects the events carry come from the fake Stripe over HTTP: a
// purchase charged there, refunded there in three steps, and its card
// detached there.
func TestStripeEvent_RefundsAndDetachFromFakeStripe(t *testing.T) {
	fake := stripefake.New(t)
	cus, pm := fake.NewCustomerWithCard(t, "tok_visa")
	t.Parallel()
	api := &client.API{}
	api.Init("sk_test_creditd", &stripe.Backends{API: fake.Backend()})
	f := newEventsFixture(t, "acme")

	params := &stripe.PaymentIntentParams{Amount: stripe.Int64(20_00), Currency: stripe.String("usd"), Customer: stripe.String(cus),
		PaymentMethod: stripe.String(pm), Confirm: stripe.Bool(true), OffSession: stripe.Bool(true)}
	params.AddMetadata("org_id", "acme")
	pi, err := api.PaymentIntents.New(params)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(rawEvent(t, "evt_paid", "payment_intent.succeeded", pi.LastResponse.RawJSON))
	f.wantAvailable("acme", "20")

	refund(t, api, pi.ID, 5_00)
	first := rawEvent(t, "evt_ref1", "charge.refunded", latestCharge(t, api, pi.ID))
	refund(t, api, pi.ID, 7_00)
	second := rawEvent(t, "evt_ref2", "charge.refunded", latestCharge(t, api, pi.ID))
	f.deliver(second, first) // the later total first, each five times
	f.wantAvailable("acme", "8")
	refund(t, api, pi.ID, 8_00)
	f.deliver(rawEvent(t, "evt_ref3", "charge.refunded", latestCharge(t, api, pi.ID)), first, second)
	f.wantAvailable("acme", "0")
	f.wantResult("evt_ref3", "refund of "+pi.ID+": 8.000 credits taken back")

	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.SetPaymentMethod(f.ctx, tx, ledger.PaymentMethod{OrgID: "acme", CustomerID: cus, PaymentMethodID: pm})
		return err
	})
	detached, err := api.PaymentMethods.Detach(pm, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(rawEvent(t, "evt_det", "payment_method.detached", detached.LastResponse.RawJSON))
	f.wantResult("evt_det", "detached card "+pm)
	if _, err := f.l.GetPaymentMethod(f.ctx, f.pool, "acme"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("card after Stripe detached it: %v, want none", err)
	}
	f.verify()
}
