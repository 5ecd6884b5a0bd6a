package stripefake_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestFault_TransientErrorThenRetrySucceedsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault      stripefake.Fault
		wantStatus int
		wantType   stripe.ErrorType
		wantCode   stripe.ErrorCode
	}{
		{fault: stripefake.Fault500, wantStatus: http.StatusInternalServerError, wantType: stripe.ErrorTypeAPI},
		{fault: stripefake.Fault429, wantStatus: http.StatusTooManyRequests, wantType: stripe.ErrorTypeInvalidRequest, wantCode: stripe.ErrorCodeRateLimit},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, pm := s.NewCustomerWithCard(t, "tok_visa")
			s.FailNext("/v1/payment_intents", 1, tt.fault)

			_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
			se := asStripeError(t, err)
			if se.HTTPStatusCode != tt.wantStatus || se.Type != tt.wantType || se.Code != tt.wantCode {
				t.Errorf("error = %d %s %s, want %d %s %s", se.HTTPStatusCode, se.Type, se.Code, tt.wantStatus, tt.wantType, tt.wantCode)
			}
			wantCharges(t, s, cus, 0)

			pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
			if err != nil {
				t.Fatalf("retry with the same key: %v", err)
			}
			if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.LastResponse.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("retry = %s, replayed %q; want a fresh success", pi.Status, pi.LastResponse.Header.Get("Idempotent-Replayed"))
			}
			wantCharges(t, s, cus, 2500)
			reqs := s.Requests()
			if len(reqs) != 2 || reqs[0].Status != tt.wantStatus || reqs[0].Fault != tt.fault ||
				reqs[1].Status != http.StatusOK || reqs[1].Fault != stripefake.FaultNone {
				t.Errorf("Requests() = %+v", reqs)
			}
		})
	}
}

func TestFault_DropResponse(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	// A first request leaves a keep-alive connection for the dropped one to
	// reuse: net/http's Transport itself retries an Idempotency-Key request
	// whose reused connection closes before any response byte, which would
	// hide the loss.
	if _, err := api.Customers.Get(cus, nil); err != nil {
		t.Fatalf("get customer: %v", err)
	}
	s.FailNext("/v1/payment_intents", 1, stripefake.FaultDropResponse)

	_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	var se *stripe.Error
	if err == nil || errors.As(err, &se) {
		t.Fatalf("err = %v, want a network error", err)
	}
	// Stripe charged the card even though the client never heard so.
	wantCharges(t, s, cus, 2500)
	stored := s.PaymentIntents()
	if len(stored) != 1 || stored[0].Status != stripe.PaymentIntentStatusSucceeded {
		t.Fatalf("PaymentIntents() = %+v, want one succeeded", stored)
	}

	pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	if err != nil {
		t.Fatalf("retry with the same key: %v", err)
	}
	if pi.ID != stored[0].ID || pi.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry = %s (replayed %q), want the stored %s replayed", pi.ID, pi.LastResponse.Header.Get("Idempotent-Replayed"), stored[0].ID)
	}
	wantCharges(t, s, cus, 2500)
	reqs := s.Requests()[1:]
	if len(reqs) != 2 || reqs[0].Status != 0 || reqs[0].Fault != stripefake.FaultDropResponse || !reqs[1].Replayed {
		t.Errorf("Requests() = %+v, want a dropped request then a replay", reqs)
	}
}

func TestFault_Timeout(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	const timeout = 200 * time.Millisecond
	api := apiFor(t, testKey, backendWithClient(s, &http.Client{Timeout: timeout}))
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	s.FailNext("/v1/payment_intents", 1, stripefake.FaultTimeout)

	start := time.Now()
	_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	if err == nil {
		t.Fatalf("request held by FaultTimeout succeeded")
	}
	if d := time.Since(start); d < timeout || d > 5*time.Second {
		t.Errorf("client gave up after %v, want about %v", d, timeout)
	}
	wantCharges(t, s, cus, 0)

	pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	if err != nil {
		t.Fatalf("retry with the same key: %v", err)
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry = %s, want a fresh success", pi.Status)
	}
	wantCharges(t, s, cus, 2500)
	if reqs := s.Requests(); len(reqs) != 2 || reqs[0].Fault != stripefake.FaultTimeout || reqs[0].Status != 0 {
		t.Errorf("Requests() = %+v, want a held request then a success", reqs)
	}
}

// TestFault_HoldResponse: the charge is made while the client waits, and
// the client gives up (or dies) without an answer; a retry under the same
// key is answered with the stored charge.
func TestFault_HoldResponse(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	const timeout = 300 * time.Millisecond
	api := apiFor(t, testKey, backendWithClient(s, &http.Client{Timeout: timeout}))
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	s.FailNext("/v1/payment_intents", 1, stripefake.FaultHoldResponse)

	start := time.Now()
	_, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	if err == nil {
		t.Fatalf("request held by FaultHoldResponse succeeded")
	}
	if d := time.Since(start); d < timeout || d > 5*time.Second {
		t.Errorf("client gave up after %v, want about %v", d, timeout)
	}
	// Charged while the client waited.
	wantCharges(t, s, cus, 2500)

	pi, err := api.PaymentIntents.New(recharge(cus, pm, 2500, "k"))
	if err != nil {
		t.Fatalf("retry with the same key: %v", err)
	}
	if pi.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry was not replayed")
	}
	wantCharges(t, s, cus, 2500)
	if reqs := s.Requests(); len(reqs) != 2 || reqs[0].Fault != stripefake.FaultHoldResponse || reqs[0].Status != 0 || !reqs[1].Replayed {
		t.Errorf("Requests() = %+v, want a held request then a replay", reqs)
	}
}

// TestListen_Standalone: the fake outside a test, as cmd/stripefake runs it,
// with a customer holding two cards, one that declines.
func TestListen_Standalone(t *testing.T) {
	t.Parallel()
	var misuses []string
	s, err := stripefake.Listen("127.0.0.1:0", func(format string, args ...any) { misuses = append(misuses, format) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cus, pms, err := s.CreateCustomer("tok_visa", "tok_chargeDeclinedInsufficientFunds")
	if err != nil || len(pms) != 2 {
		t.Fatalf("CreateCustomer: %v, %v", pms, err)
	}
	api := newAPI(t, s)
	if _, err := api.PaymentIntents.New(recharge(cus, pms[0], 2500, "a")); err != nil {
		t.Fatalf("charge the good card: %v", err)
	}
	_, err = api.PaymentIntents.New(recharge(cus, pms[1], 2500, "b"))
	if se := asStripeError(t, err); se.DeclineCode != "insufficient_funds" {
		t.Fatalf("declining card: %+v", se)
	}
	wantCharges(t, s, cus, 2500)
	if _, _, err := s.CreateCustomer("tok_nosuchcard"); err == nil {
		t.Fatal("an unknown test token was accepted")
	}
	s.SetDecline("pm_nosuchcard", "card_declined", "")
	if len(misuses) != 1 {
		t.Fatalf("misuses reported: %v", misuses)
	}
	s.Close() // twice is fine
}

func TestFailNext_Queue(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	s.FailNext("/v1/invoices", 5, stripefake.Fault500)
	s.FailNext("/v1/", 1, stripefake.FaultDecline)
	s.FailNext("/v1/payment_intents", 1, stripefake.FaultNone)
	s.FailNext("/v1/payment_intents", 1, stripefake.Fault500)

	steps := []struct {
		name string
		do   func() error
		want stripefake.Fault
	}{
		{
			name: "a decline fault waits for a charge",
			do:   func() error { _, err := api.Customers.Get(cus, nil); return err },
			want: stripefake.FaultNone,
		},
		{
			name: "the charge takes the oldest matching fault",
			do:   func() error { _, err := api.PaymentIntents.New(recharge(cus, pm, 1000, "")); return err },
			want: stripefake.FaultDecline,
		},
		{
			name: "FaultNone lets one request through",
			do:   func() error { _, err := api.PaymentIntents.New(recharge(cus, pm, 1000, "")); return err },
			want: stripefake.FaultNone,
		},
		{
			name: "then the queued 500",
			do:   func() error { _, err := api.PaymentIntents.New(recharge(cus, pm, 1000, "")); return err },
			want: stripefake.Fault500,
		},
		{
			name: "then nothing",
			do:   func() error { _, err := api.PaymentIntents.New(recharge(cus, pm, 1000, "")); return err },
			want: stripefake.FaultNone,
		},
	}
	for i, st := range steps {
		err := st.do()
		got := s.Requests()[i]
		if got.Fault != st.want || (err != nil) != (st.want != stripefake.FaultNone) {
			t.Errorf("%s: request took %v (err %v), want %v", st.name, got.Fault, err, st.want)
		}
	}
	wantCharges(t, s, cus, 2000)
}
