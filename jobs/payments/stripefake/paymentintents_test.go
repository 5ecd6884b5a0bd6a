package stripefake_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestPaymentIntent_OffSessionSucceeds(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")

	pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "recharge:acme:1"))
	if err != nil {
		t.Fatalf("create PaymentIntent: %v", err)
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.AmountReceived != 2500 {
		t.Errorf("status %q, amount_received %d; want succeeded, 2500", pi.Status, pi.AmountReceived)
	}
	if pi.Customer == nil || pi.Customer.ID != cus || pi.PaymentMethod == nil || pi.PaymentMethod.ID != pm {
		t.Errorf("customer %+v, payment method %+v; want %s, %s", pi.Customer, pi.PaymentMethod, cus, pm)
	}
	if pi.LatestCharge == nil || !strings.HasPrefix(pi.LatestCharge.ID, "ch_") {
		t.Fatalf("latest_charge = %+v, want a ch_ ID", pi.LatestCharge)
	}
	if pi.Metadata["org_id"] != "acme" || pi.Livemode || pi.Created == 0 {
		t.Errorf("metadata %v, livemode %v, created %d", pi.Metadata, pi.Livemode, pi.Created)
	}
	wantCharges(t, s, cus, 2500)

	got, err := api.PaymentIntents.Get(pi.ID, &stripe.PaymentIntentParams{Expand: []*string{stripe.String("latest_charge")}})
	if err != nil {
		t.Fatalf("get PaymentIntent: %v", err)
	}
	ch := got.LatestCharge
	if ch.Amount != 2500 || ch.Status != stripe.ChargeStatusSucceeded || !ch.Paid || ch.PaymentIntent.ID != pi.ID ||
		ch.Metadata["org_id"] != "acme" || ch.PaymentMethodDetails.Card.Last4 != "4242" {
		t.Errorf("expanded charge = %+v", ch)
	}
	if stored := s.PaymentIntents(); len(stored) != 1 || stored[0].ID != pi.ID {
		t.Errorf("PaymentIntents() = %v, want just %s", stored, pi.ID)
	}
}

func TestPaymentIntent_Declines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		token           string
		setDecline      [2]string
		fault           stripefake.Fault
		wantCode        stripe.ErrorCode
		wantDeclineCode stripe.DeclineCode
	}{
		{name: "generic decline", token: "tok_chargeDeclined", wantCode: "card_declined", wantDeclineCode: "generic_decline"},
		{name: "insufficient funds", token: "tok_chargeDeclinedInsufficientFunds", wantCode: "card_declined", wantDeclineCode: "insufficient_funds"},
		{name: "authentication required", token: "tok_authenticationRequired", wantCode: "authentication_required", wantDeclineCode: "authentication_required"},
		{name: "SetDecline lost card", token: "tok_visa", setDecline: [2]string{"card_declined", "lost_card"}, wantCode: "card_declined", wantDeclineCode: "lost_card"},
		{name: "SetDecline expired card", token: "tok_mastercard", setDecline: [2]string{"expired_card", ""}, wantCode: "expired_card"},
		{name: "FaultDecline", token: "tok_visa", fault: stripefake.FaultDecline, wantCode: "card_declined", wantDeclineCode: "generic_decline"},
		{name: "FaultAuthRequired", token: "tok_visa", fault: stripefake.FaultAuthRequired, wantCode: "authentication_required", wantDeclineCode: "authentication_required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, pm := s.NewCustomerWithCard(t, tt.token)
			if tt.setDecline[0] != "" {
				s.SetDecline(pm, tt.setDecline[0], tt.setDecline[1])
			}
			if tt.fault != stripefake.FaultNone {
				s.FailNext("/v1/payment_intents", 1, tt.fault)
			}

			_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k1"))
			se := asStripeError(t, err)
			if se.HTTPStatusCode != http.StatusPaymentRequired || se.Type != stripe.ErrorTypeCard ||
				se.Code != tt.wantCode || se.DeclineCode != tt.wantDeclineCode {
				t.Errorf("error = status %d, type %s, code %s, decline %s; want 402 card_error %s %s",
					se.HTTPStatusCode, se.Type, se.Code, se.DeclineCode, tt.wantCode, tt.wantDeclineCode)
			}
			if se.Msg == "" || !strings.HasPrefix(se.ChargeID, "ch_") || se.PaymentMethod == nil || se.PaymentMethod.ID != pm {
				t.Errorf("message %q, charge %q, payment method %+v", se.Msg, se.ChargeID, se.PaymentMethod)
			}
			pi := se.PaymentIntent
			if pi == nil || pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod ||
				pi.LastPaymentError == nil || pi.LastPaymentError.Code != tt.wantCode {
				t.Fatalf("error's payment_intent = %+v, want requires_payment_method with last_payment_error %s", pi, tt.wantCode)
			}
			var ce *stripe.CardError
			if !errors.As(err, &ce) || ce.DeclineCode != tt.wantDeclineCode {
				t.Errorf("CardError = %+v, want decline code %q", ce, tt.wantDeclineCode)
			}
			wantCharges(t, s, cus, 0)
			if stored := s.PaymentIntents(); len(stored) != 1 || stored[0].ID != pi.ID || stored[0].Status != pi.Status {
				t.Errorf("PaymentIntents() = %+v, want the declined %s", stored, pi.ID)
			}
			if got := s.Requests()[0].Fault; got != tt.fault {
				t.Errorf("Requests()[0].Fault = %v, want %v", got, tt.fault)
			}
		})
	}
}

func TestPaymentIntent_OnSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		token      string
		fault      stripefake.Fault
		confirm    bool
		noCard     bool
		wantStatus stripe.PaymentIntentStatus
	}{
		{name: "3DS card confirmed on-session", token: "tok_authenticationRequired", confirm: true, wantStatus: stripe.PaymentIntentStatusRequiresAction},
		{name: "FaultAuthRequired on-session", token: "tok_visa", fault: stripefake.FaultAuthRequired, confirm: true, wantStatus: stripe.PaymentIntentStatusRequiresAction},
		{name: "unconfirmed with a card", token: "tok_visa", wantStatus: stripe.PaymentIntentStatusRequiresConfirmation},
		{name: "unconfirmed without a card", token: "tok_visa", noCard: true, wantStatus: stripe.PaymentIntentStatusRequiresPaymentMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, pm := s.NewCustomerWithCard(t, tt.token)
			if tt.fault != stripefake.FaultNone {
				s.FailNext("/v1/payment_intents", 1, tt.fault)
			}
			p := &stripe.PaymentIntentParams{
				Amount:   stripe.Int64(1000),
				Currency: stripe.String("usd"),
				Customer: stripe.String(cus),
			}
			if !tt.noCard {
				p.PaymentMethod = stripe.String(pm)
			}
			if tt.confirm {
				p.Confirm = stripe.Bool(true)
			}
			pi, err := api.PaymentIntents.New(p)
			if err != nil {
				t.Fatalf("create PaymentIntent: %v", err)
			}
			if pi.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", pi.Status, tt.wantStatus)
			}
			if tt.wantStatus == stripe.PaymentIntentStatusRequiresAction &&
				(pi.NextAction == nil || pi.NextAction.Type != stripe.PaymentIntentNextActionTypeUseStripeSDK) {
				t.Errorf("next_action = %+v, want use_stripe_sdk", pi.NextAction)
			}
			wantCharges(t, s, cus, 0)
		})
	}
}

func TestPaymentIntent_InvalidRequests(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	otherCus, otherPM := s.NewCustomerWithCard(t, "tok_visa")
	loose, err := api.PaymentMethods.New(&stripe.PaymentMethodParams{
		Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_visa")},
	})
	if err != nil {
		t.Fatalf("create payment method: %v", err)
	}

	tests := []struct {
		name      string
		params    func() *stripe.PaymentIntentParams
		wantCode  stripe.ErrorCode
		wantParam string
	}{
		{
			name: "confirm without a payment method",
			params: func() *stripe.PaymentIntentParams {
				p := recharge(cus, pm, 1000, "")
				p.PaymentMethod = nil
				return p
			},
			wantCode: "payment_intent_unexpected_state",
		},
		{
			name:      "payment method not attached to the customer",
			params:    func() *stripe.PaymentIntentParams { return recharge(cus, loose.ID, 1000, "") },
			wantCode:  "resource_missing",
			wantParam: "payment_method",
		},
		{
			name:      "another customer's card",
			params:    func() *stripe.PaymentIntentParams { return recharge(cus, otherPM, 1000, "") },
			wantParam: "payment_method",
		},
		{
			name:      "no such payment method",
			params:    func() *stripe.PaymentIntentParams { return recharge(cus, "pm_missing", 1000, "") },
			wantCode:  "resource_missing",
			wantParam: "payment_method",
		},
		{
			name:      "no such customer",
			params:    func() *stripe.PaymentIntentParams { return recharge("cus_missing", pm, 1000, "") },
			wantCode:  "resource_missing",
			wantParam: "customer",
		},
		{
			name:      "amount below Stripe's minimum",
			params:    func() *stripe.PaymentIntentParams { return recharge(cus, pm, 49, "") },
			wantCode:  "amount_too_small",
			wantParam: "amount",
		},
		{
			name: "missing currency",
			params: func() *stripe.PaymentIntentParams {
				p := recharge(cus, pm, 1000, "")
				p.Currency = nil
				return p
			},
			wantCode:  "parameter_missing",
			wantParam: "currency",
		},
		{
			name: "off_session without confirm",
			params: func() *stripe.PaymentIntentParams {
				p := recharge(cus, pm, 1000, "")
				p.Confirm = nil
				return p
			},
			wantParam: "off_session",
		},
		{
			name: "parameter the fake does not model",
			params: func() *stripe.PaymentIntentParams {
				p := recharge(cus, pm, 1000, "")
				p.CaptureMethod = stripe.String("manual")
				return p
			},
			wantCode:  "parameter_unknown",
			wantParam: "capture_method",
		},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				_, err := api.PaymentIntents.New(tt.params())
				se := asStripeError(t, err)
				if se.HTTPStatusCode != http.StatusBadRequest || se.Type != stripe.ErrorTypeInvalidRequest ||
					se.Code != tt.wantCode || se.Param != tt.wantParam || se.Msg == "" {
					t.Errorf("error = status %d, type %s, code %q, param %q, message %q; want 400 invalid_request_error %q %q",
						se.HTTPStatusCode, se.Type, se.Code, se.Param, se.Msg, tt.wantCode, tt.wantParam)
				}
				var ire *stripe.InvalidRequestError
				if !errors.As(err, &ire) {
					t.Errorf("errors.As(%v, *stripe.InvalidRequestError) = false", err)
				}
			})
		}
	})
	wantCharges(t, s, cus, 0)
	wantCharges(t, s, otherCus, 0)
}
