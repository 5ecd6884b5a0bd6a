package stripefake_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

// testKey is the secret key the tests' clients use.
const testKey = "sk_test_stripefake"

// newAPI returns a real stripe-go client talking to s.
func newAPI(t *testing.T, s *stripefake.Server) *client.API {
	t.Helper()
	return apiFor(t, testKey, s.Backend())
}

func apiFor(t *testing.T, key string, b stripe.Backend) *client.API {
	t.Helper()
	api := &client.API{}
	api.Init(key, &stripe.Backends{API: b, Connect: b, Uploads: b})
	return api
}

// backendWithClient is s's backend with a custom HTTP client.
func backendWithClient(s *stripefake.Server, hc *http.Client) stripe.Backend {
	return stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(s.URL),
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
}

// recharge is the off-session charge auto-recharge makes: confirm,
// off_session, the org in metadata and, when key is set, an idempotency key.
func recharge(customerID, paymentMethodID string, amount int64, key string) *stripe.PaymentIntentParams {
	p := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(amount),
		Currency:      stripe.String(string(stripe.CurrencyUSD)),
		Customer:      stripe.String(customerID),
		PaymentMethod: stripe.String(paymentMethodID),
		Confirm:       stripe.Bool(true),
		OffSession:    stripe.Bool(true),
		Description:   stripe.String("creditd auto-recharge"),
	}
	p.AddMetadata("org_id", "acme")
	if key != "" {
		p.SetIdempotencyKey(key)
	}
	return p
}

// asStripeError fails the test unless err is a *stripe.Error.
func asStripeError(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *stripe.Error", err, err)
	}
	return se
}

// wantCharges fails the test unless the customer was charged want in total.
func wantCharges(t *testing.T, s *stripefake.Server, customerID string, want int64) {
	t.Helper()
	if got := s.Charges(customerID); got != want {
		t.Errorf("Charges(%s) = %d, want %d", customerID, got, want)
	}
}
