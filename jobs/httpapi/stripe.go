package httpapi

import (
	"net/http"

	"github.com/stripe/stripe-go/v76/webhook"
)

// stripeWebhook takes Stripe-signed events only: the signature is checked
// with STRIPE_WEBHOOK_SECRET (and its timestamp within Stripe's 5-minute
// tolerance), the event is stored by id and its processing enqueued, then
// it answers 200. Unsigned, badly signed, stale or malformed requests get
// 400 and change nothing; a delivery seen before is answered 200 and
// changes nothing either.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.takeStripeEvent(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) takeStripeEvent(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.StripeWebhookSecret == "" {
		return &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
			msg: "Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set"}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	sig := r.Header.Get("Stripe-Signature")
	if sig == "" {
		return badRequest("Stripe-Signature", "required: only Stripe-signed events are taken")
	}
	// The signature is the authentication; the API version of the event's
	// shape is not, and the handler reads only fields every version has.
	ev, err := webhook.ConstructEventWithOptions(body, sig, s.cfg.StripeWebhookSecret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return badRequest("Stripe-Signature", err.Error())
	}
	isNew, err := s.cfg.Ledger.RecordStripeEvent(r.Context(), s.cfg.DB, ev.ID, string(ev.Type), body)
	if err != nil {
		return err
	}
	if err := s.cfg.Jobs.EnqueueStripeEvent(r.Context(), ev.ID); err != nil {
		// Stored but not enqueued: Stripe delivers again, and that enqueues it.
		return unavailable("redis", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": !isNew})
	return nil
}
