package stripefake_test

import (
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestRefunds(t *testing.T) {
	t.Parallel()
	type refund struct {
		byCharge bool
		amount   int64 // 0 refunds what is left
		wantCode stripe.ErrorCode
	}
	tests := []struct {
		name         string
		refunds      []refund
		wantRefunded int64
	}{
		{name: "full refund by payment intent", refunds: []refund{{}}, wantRefunded: 2500},
		{name: "partial by charge, then the rest", refunds: []refund{{byCharge: true, amount: 1000}, {}}, wantRefunded: 2500},
		{name: "more than was charged", refunds: []refund{{amount: 2600, wantCode: stripe.ErrorCodeAmountTooLarge}}},
		{name: "twice", refunds: []refund{{}, {wantCode: stripe.ErrorCodeChargeAlreadyRefunded}}, wantRefunded: 2500},
		{name: "partial twice", refunds: []refund{{amount: 1000}, {amount: 1000}}, wantRefunded: 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, pm := s.NewCustomerWithCard(t, "tok_visa")
			pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, ""))
			if err != nil {
				t.Fatalf("charge: %v", err)
			}
			for i, r := range tt.refunds {
				p := &stripe.RefundParams{PaymentIntent: stripe.String(pi.ID)}
				if r.byCharge {
					p = &stripe.RefundParams{Charge: stripe.String(pi.LatestCharge.ID)}
				}
				if r.amount != 0 {
					p.Amount = stripe.Int64(r.amount)
				}
				re, err := api.Refunds.New(p)
				if r.wantCode != "" {
					if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusBadRequest || se.Code != r.wantCode {
						t.Errorf("refund %d: error %d %s, want 400 %s", i, se.HTTPStatusCode, se.Code, r.wantCode)
					}
					continue
				}
				if err != nil {
					t.Fatalf("refund %d: %v", i, err)
				}
				if re.Status != stripe.RefundStatusSucceeded || re.Charge.ID != pi.LatestCharge.ID || re.PaymentIntent.ID != pi.ID {
					t.Errorf("refund %d = %+v", i, re)
				}
			}
			got, err := api.PaymentIntents.Get(pi.ID, &stripe.PaymentIntentParams{Expand: []*string{stripe.String("latest_charge")}})
			if err != nil {
				t.Fatalf("get PaymentIntent: %v", err)
			}
			ch := got.LatestCharge
			if ch.AmountRefunded != tt.wantRefunded || ch.Refunded != (tt.wantRefunded == 2500) {
				t.Errorf("charge amount_refunded %d refunded %v, want %d", ch.AmountRefunded, ch.Refunded, tt.wantRefunded)
			}
			// Charges counts what was charged; refunds are the ledger's business.
			wantCharges(t, s, cus, 2500)
		})
	}

	t.Run("a declined payment has nothing to refund", func(t *testing.T) {
		t.Parallel()
		s := stripefake.New(t)
		api := newAPI(t, s)
		cus, pm := s.NewCustomerWithCard(t, "tok_chargeDeclined")
		_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, ""))
		declined := asStripeError(t, err)
		_, err = api.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(declined.PaymentIntent.ID)})
		if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusBadRequest || se.Param != "payment_intent" {
			t.Errorf("error = %d param %q, want 400 on payment_intent", se.HTTPStatusCode, se.Param)
		}
	})
}
