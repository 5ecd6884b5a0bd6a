package stripefake

import (
	"fmt"
	"net/http"

	"github.com/stripe/stripe-go/v76"
)

func (s *Server) createRefund(c *call) (any, *apiError) {
	if err := c.allow("payment_intent", "charge", "amount", "reason", "metadata[*]"); err != nil {
		return nil, err
	}
	piID, chID := c.str("payment_intent"), c.str("charge")
	switch {
	case piID == "" && chID == "":
		return nil, paramError("parameter_missing", "",
			"One of the following params should be provided for this request: payment_intent or charge.")
	case piID != "" && chID != "":
		return nil, paramError("", "", "You may only specify one of these parameters: charge, payment_intent.")
	}
	amount, err := c.int("amount")
	if err != nil {
		return nil, err
	}
	if c.has("amount") && amount < 1 {
		return nil, paramError("parameter_invalid_integer", "amount", "This value must be greater than or equal to 1.")
	}
	switch r := c.str("reason"); r {
	case "", "duplicate", "fraudulent", "requested_by_customer":
	default:
		return nil, paramError("", "reason", "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer")
	}

	var ch *charge
	if piID != "" {
		pi, ok := s.paymentIntents[piID]
		if !ok {
			return nil, noSuch(http.StatusBadRequest, "payment_intent", piID, "payment_intent")
		}
		if pi.Status != "succeeded" || pi.LatestCharge == nil {
			return nil, invalidRequest(http.StatusBadRequest, "", "payment_intent",
				"This PaymentIntent ("+piID+") does not have a successful charge to refund.")
		}
		ch = s.charges[*pi.LatestCharge]
	} else {
		var ok bool
		if ch, ok = s.charges[chID]; !ok {
			return nil, noSuch(http.StatusBadRequest, "charge", chID, "charge")
		}
		if ch.Status != "succeeded" {
			return nil, invalidRequest(http.StatusBadRequest, "", "charge", "Charge "+chID+" has failed and cannot be refunded.")
		}
	}
	left := ch.Amount - ch.AmountRefunded
	if left == 0 {
		return nil, invalidRequest(http.StatusBadRequest, string(stripe.ErrorCodeChargeAlreadyRefunded), "",
			"Charge "+ch.ID+" has already been refunded.")
	}
	if !c.has("amount") {
		amount = left
	}
	if amount > left {
		return nil, invalidRequest(http.StatusBadRequest, string(stripe.ErrorCodeAmountTooLarge), "amount", fmt.Sprintf(
			"Refund amount (%s) is greater than unrefunded amount on charge (%s)", money(amount, ch.Currency), money(left, ch.Currency)))
	}
	ch.AmountRefunded += amount
	ch.Refunded = ch.AmountRefunded == ch.Amount

	id, _ := s.newID("re_")
	re := &refund{
		ID:                 id,
		Object:             "refund",
		Amount:             amount,
		BalanceTransaction: ptr("txn_" + randomID()),
		Charge:             &ch.ID,
		Created:            s.unix(),
		Currency:           ch.Currency,
		Metadata:           map[string]string{},
		PaymentIntent:      ch.PaymentIntent,
		Reason:             optional(c.str("reason")),
		Status:             "succeeded",
	}
	for k, v := range c.metadata() {
		re.Metadata[k] = v
	}
	s.refunds[id] = re
	return re, nil
}

// money formats minor units the way Stripe's messages do: $15.00, 15.00 eur.
func money(amount int64, currency string) string {
	major := fmt.Sprintf("%d.%02d", amount/100, amount%100)
	if currency == "usd" {
		return "$" + major
	}
	return major + " " + currency
}
