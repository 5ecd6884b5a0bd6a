package payments

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/jobs"
)

// Stripe charges saved cards off-session through the Stripe API.
type Stripe struct {
	api *client.API
}

// NewStripe returns a charger using secretKey, against apiBase when it is
// set (STRIPE_API_BASE: a local fake) or Stripe itself. stripe-go's own
// retries are off: the task retries, under the same idempotency key.
func NewStripe(secretKey, apiBase string) *Stripe {
	cfg := &stripe.BackendConfig{MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if apiBase != "" {
		cfg.URL = stripe.String(apiBase)
	}
	api := &client.API{}
	api.Init(secretKey, &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, cfg)})
	return &Stripe{api: api}
}

// NewStripeWithBackend is NewStripe over a given backend (tests).
func NewStripeWithBackend(secretKey string, b stripe.Backend) *Stripe {
	api := &client.API{}
	api.Init(secretKey, &stripe.Backends{API: b})
	return &Stripe{api: api}
}

// ChargeOffSession creates and confirms a PaymentIntent for the saved card,
// off-session, under the charge's idempotency key: however often it is
// called for one attempt, Stripe makes one charge and answers with it.
func (s *Stripe) ChargeOffSession(ctx context.Context, c jobs.Charge) (string, error) {
	p := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(c.AmountMinor),
		Currency:      stripe.String(c.Currency),
		Customer:      stripe.String(c.Customer),
		PaymentMethod: stripe.String(c.PaymentMethod),
		Confirm:       stripe.Bool(true),
		OffSession:    stripe.Bool(true),
		Description:   stripe.String(c.Description),
	}
	p.Context = ctx
	p.SetIdempotencyKey(c.IdempotencyKey)
	for k, v := range c.Metadata {
		p.AddMetadata(k, v)
	}
	pi, err := s.api.PaymentIntents.New(p)
	if err != nil {
		return "", classify(err)
	}
	if pi.Status == stripe.PaymentIntentStatusProcessing {
		// Not an answer yet (a bank debit, say): retried under the same key,
		// and the webhook or reconciliation credits it when it succeeds.
		return "", fmt.Errorf("stripe: payment %s is still processing", pi.ID)
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded {
		return "", &jobs.ChargeDeclined{Code: "authentication_required", Message: fmt.Sprintf("payment %s is %s", pi.ID, pi.Status)}
	}
	return pi.ID, nil
}

// classify turns Stripe's refusals that retrying cannot change (the card's
// answer, a missing or detached payment method, a bad request) into
// *jobs.ChargeDeclined; everything else (network, 409 while the first
// request under the key runs, 429, 5xx) stays an ordinary, retried error.
func classify(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("stripe: %w", err)
	}
	switch {
	case se.Type == stripe.ErrorTypeCard, se.HTTPStatusCode == http.StatusPaymentRequired:
	case se.HTTPStatusCode == http.StatusTooManyRequests, se.HTTPStatusCode >= 500, se.HTTPStatusCode == 0,
		se.HTTPStatusCode == http.StatusConflict: // idempotency_key_in_use: the first request under the key is still running
		return fmt.Errorf("stripe: %w", err)
	case se.Type == stripe.ErrorTypeIdempotency:
		// The key was used with other parameters: a bug, not a card's
		// answer; surface it without charging.
	case se.HTTPStatusCode >= 400:
	default:
		return fmt.Errorf("stripe: %w", err)
	}
	code := string(se.Code)
	if code == "" {
		code = string(se.Type)
	}
	return &jobs.ChargeDeclined{Code: code, DeclineCode: string(se.DeclineCode), Message: se.Msg}
}
