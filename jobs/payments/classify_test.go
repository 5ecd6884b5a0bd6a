package payments_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/payments"
)

// Stripe answers a request whose idempotency key is in use by another
// request still in flight (a retry after a client-side timeout) with 409
// idempotency_key_in_use. That is transient: the first request may still
// succeed. It must not be classified as a card's final answer
// (*jobs.ChargeDeclined), which fails the attempt, pauses auto-recharge and
// makes the ledger refuse the first request's success.
func TestPaymentRegression_IdempotencyKeyInUseIsRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use",` +
			`"message":"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): rch_1. Please try again later."}}`))
	}))
	t.Cleanup(srv.Close)
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(srv.URL),
		MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	s := payments.NewStripeWithBackend("sk_test_creditd", b)
	_, err := s.ChargeOffSession(context.Background(), jobs.Charge{IdempotencyKey: "rch_1", Customer: "cus_1", PaymentMethod: "pm_1",
		AmountMinor: 500, Currency: "usd", Metadata: map[string]string{"recharge_attempt": "rch_1"}})
	var declined *jobs.ChargeDeclined
	if err == nil || errors.As(err, &declined) {
		t.Fatalf("ChargeOffSession = %v (%T); want a transient, retried error", err, err)
	}
}

// A PaymentIntent Stripe answers as processing (a saved bank debit, which
// setup_intent.succeeded saves like a card) has not failed: it succeeds or
// fails later. Reporting it as a decline fails the attempt, pauses
// auto-recharge with an "authentication_required" alert, and makes the
// ledger refuse the payment_intent.succeeded that follows (money taken,
// no credits).
func TestPaymentRegression_ProcessingIsNotADecline(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"pi_proc1","object":"payment_intent","amount":500,"currency":"usd","status":"processing",` +
			`"customer":"cus_1","payment_method":"pm_1","metadata":{"recharge_attempt":"rch_2"}}`))
	}))
	t.Cleanup(srv.Close)
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(srv.URL),
		MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	s := payments.NewStripeWithBackend("sk_test_creditd", b)
	_, err := s.ChargeOffSession(context.Background(), jobs.Charge{IdempotencyKey: "rch_2", Customer: "cus_1", PaymentMethod: "pm_1",
		AmountMinor: 500, Currency: "usd"})
	var declined *jobs.ChargeDeclined
	if errors.As(err, &declined) {
		t.Fatalf("ChargeOffSession = %v; a processing payment is not declined", err)
	}
}
