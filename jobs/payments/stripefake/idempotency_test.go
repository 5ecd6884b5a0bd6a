package stripefake_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestIdempotency_SameKeyReplays(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")

	first, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "recharge:acme:7"))
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	again, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "recharge:acme:7"))
	if err != nil {
		t.Fatalf("replayed request: %v", err)
	}
	if again.ID != first.ID || again.Status != stripe.PaymentIntentStatusSucceeded {
		t.Errorf("replay = %s %s, want %s succeeded", again.ID, again.Status, first.ID)
	}
	if h := again.LastResponse.Header.Get("Idempotent-Replayed"); h != "true" {
		t.Errorf("Idempotent-Replayed header = %q, want true", h)
	}
	wantCharges(t, s, cus, 2500)
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Replayed || !reqs[1].Replayed || reqs[1].IdempotencyKey != "recharge:acme:7" {
		t.Errorf("Requests() = %+v, want the first served and the second replayed", reqs)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// run makes requests and returns the total the customer should have
		// been charged.
		run func(t *testing.T, s *stripefake.Server, cus, pm string) int64
	}{
		{
			name: "same key other parameters is an idempotency_error",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				api := newAPI(t, s)
				if _, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k")); err != nil {
					t.Fatalf("first request: %v", err)
				}
				_, err := api.PaymentIntents.New(recharge(cus, pm, 5000, "k"))
				se := asStripeError(t, err)
				var ie *stripe.IdempotencyError
				if se.HTTPStatusCode != http.StatusBadRequest || se.Type != stripe.ErrorTypeIdempotency || !errors.As(err, &ie) {
					t.Errorf("error = status %d type %s, want 400 idempotency_error", se.HTTPStatusCode, se.Type)
				}
				return 2500
			},
		},
		{
			name: "a decline is replayed even after the card is fixed",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				api := newAPI(t, s)
				s.SetDecline(pm, "card_declined", "insufficient_funds")
				_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
				first := asStripeError(t, err)
				s.SetDecline(pm, "", "")
				_, err = api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
				replayed := asStripeError(t, err)
				if replayed.DeclineCode != "insufficient_funds" || replayed.PaymentIntent.ID != first.PaymentIntent.ID ||
					replayed.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("replay = %s %s, want the stored insufficient_funds decline of %s",
						replayed.DeclineCode, replayed.PaymentIntent.ID, first.PaymentIntent.ID)
				}
				if _, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k2")); err != nil {
					t.Fatalf("new key after the card was fixed: %v", err)
				}
				return 2500
			},
		},
		{
			name: "keys are per API key",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				a := newAPI(t, s)
				b := apiFor(t, "sk_test_other", s.Backend())
				pa, err := a.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
				if err != nil {
					t.Fatalf("first key: %v", err)
				}
				pb, err := b.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
				if err != nil {
					t.Fatalf("second key: %v", err)
				}
				if pa.ID == pb.ID {
					t.Errorf("two API keys shared idempotency key k: both got %s", pa.ID)
				}
				return 5000
			},
		},
		{
			name: "expired keys run again",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				api := newAPI(t, s)
				if _, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k")); err != nil {
					t.Fatalf("first request: %v", err)
				}
				s.ExpireIdempotencyKeys()
				pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
				if err != nil {
					t.Fatalf("after expiry: %v", err)
				}
				if pi.LastResponse.Header.Get("Idempotent-Replayed") != "" {
					t.Errorf("request after ExpireIdempotencyKeys was replayed")
				}
				return 5000
			},
		},
		{
			name: "a rejected parameter is not stored",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				api := newAPI(t, s)
				bad := recharge(cus, pm, 2500, "k")
				bad.Currency = nil
				if _, err := api.PaymentIntents.New(bad); err == nil {
					t.Fatalf("request without currency succeeded")
				}
				if _, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k")); err != nil {
					t.Fatalf("fixed request with the same key: %v", err)
				}
				return 2500
			},
		},
		{
			name: "concurrent requests with one key charge once",
			run: func(t *testing.T, s *stripefake.Server, cus, pm string) int64 {
				api := newAPI(t, s)
				const workers = 8
				ids := make([]string, workers)
				errs := make([]error, workers)
				var wg sync.WaitGroup
				for i := range workers {
					wg.Go(func() {
						pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
						errs[i] = err
						if err == nil {
							ids[i] = pi.ID
						}
					})
				}
				wg.Wait()
				for i := range workers {
					if errs[i] != nil || ids[i] != ids[0] {
						t.Errorf("worker %d: %s, %v; want %s", i, ids[i], errs[i], ids[0])
					}
				}
				return 2500
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			cus, pm := s.NewCustomerWithCard(t, "tok_visa")
			want := tt.run(t, s, cus, pm)
			wantCharges(t, s, cus, want)
		})
	}
}
