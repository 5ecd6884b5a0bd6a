package stripefake

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

// decline is what charging a card does: the zero value succeeds.
type decline struct {
	code        string
	declineCode string
}

// authRequired is the decline of a card that needs 3D Secure on every charge.
var authRequired = decline{
	code:        string(stripe.ErrorCodeAuthenticationRequired),
	declineCode: string(stripe.ErrorCodeAuthenticationRequired),
}

func (d decline) needsAuth() bool {
	return d.code == authRequired.code
}

// message is the message Stripe's card errors carry for the code.
func (d decline) message() string {
	switch {
	case d.needsAuth():
		return "Your card was declined. This transaction requires authentication."
	case d.declineCode == "insufficient_funds":
		return "Your card has insufficient funds."
	case d.code == "expired_card":
		return "Your card has expired."
	case d.code == "incorrect_cvc":
		return "Your card's security code is incorrect."
	case d.code == "processing_error":
		return "An error occurred while processing your card. Try again in a little bit."
	}
	return "Your card was declined."
}

// testCard is a card behind one of Stripe's test tokens.
type testCard struct {
	brand   string
	last4   string
	decline decline
}

// testCards are the test tokens the fake accepts for card[token].
var testCards = map[string]testCard{
	"tok_visa":       {brand: "visa", last4: "4242"},
	"tok_mastercard": {brand: "mastercard", last4: "4444"},
	"tok_chargeDeclined": {brand: "visa", last4: "0002",
		decline: decline{code: string(stripe.ErrorCodeCardDeclined), declineCode: "generic_decline"}},
	"tok_chargeDeclinedInsufficientFunds": {brand: "visa", last4: "9995",
		decline: decline{code: string(stripe.ErrorCodeCardDeclined), declineCode: "insufficient_funds"}},
	"tok_authenticationRequired": {brand: "visa", last4: "3184", decline: authRequired},
}

// newCard stores a card payment method for a test token.
func (s *Server) newCard(token string) (*paymentMethod, bool) {
	tc, ok := testCards[token]
	if !ok {
		return nil, false
	}
	// Stripe's fingerprint identifies the card number: the same test card
	// always has the same one.
	sum := sha256.Sum256([]byte(tc.brand + tc.last4))
	id, _ := s.newID("pm_")
	pm := &paymentMethod{
		ID:      id,
		Object:  "payment_method",
		Created: s.unix(),
		Card: card{
			Brand:        tc.brand,
			Checks:       cardChecks{CVCCheck: ptr("pass")},
			Country:      "US",
			DisplayBrand: tc.brand,
			ExpMonth:     12,
			ExpYear:      int64(s.now().Year() + 3),
			Fingerprint:  strings.ToUpper(hex.EncodeToString(sum[:8])),
			Funding:      "credit",
			Last4:        tc.last4,
			Networks:     cardNetworks{Available: []string{tc.brand}},
			ThreeDSecureUsage: threeDSecureUs{
				Supported: true,
			},
		},
		Metadata: map[string]string{},
		Type:     "card",
		decline:  tc.decline,
	}
	s.paymentMethods[pm.ID] = pm
	return pm, true
}

// SetDecline makes an existing card decline from now on with code (such as
// "card_declined", "expired_card" or "authentication_required") and
// declineCode (such as "insufficient_funds"); code "" makes it succeed again.
func (s *Server) SetDecline(paymentMethodID, code, declineCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pm, ok := s.paymentMethods[paymentMethodID]
	if !ok {
		s.errorf("stripefake: SetDecline: no such payment method %q", paymentMethodID)
		return
	}
	if code == "" {
		declineCode = ""
	}
	pm.decline = decline{code: code, declineCode: declineCode}
}
