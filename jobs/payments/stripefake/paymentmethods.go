package stripefake

import (
	"net/http"
)

func (s *Server) createPaymentMethod(c *call) (any, *apiError) {
	if err := c.allow("type", "card[token]", "billing_details[name]", "billing_details[email]",
		"billing_details[phone]", "metadata[*]"); err != nil {
		return nil, err
	}
	if err := c.required("type", "card[token]"); err != nil {
		return nil, err
	}
	if t := c.str("type"); t != "card" {
		return nil, paramError("", "type", "The payment method type provided: "+t+" is invalid. This fake supports only card.")
	}
	pm, ok := s.newCard(c.str("card[token]"))
	if !ok {
		return nil, noSuch(http.StatusBadRequest, "token", c.str("card[token]"), "card[token]")
	}
	pm.BillingDetails.Name = optional(c.str("billing_details[name]"))
	pm.BillingDetails.Email = optional(c.str("billing_details[email]"))
	pm.BillingDetails.Phone = optional(c.str("billing_details[phone]"))
	for k, v := range c.metadata() {
		pm.Metadata[k] = v
	}
	return pm, nil
}

func (s *Server) getPaymentMethod(c *call) (any, *apiError) {
	if err := c.allow(); err != nil {
		return nil, err
	}
	return s.paymentMethodByID(c.id, http.StatusNotFound, "payment_method")
}

func (s *Server) attachPaymentMethod(c *call) (any, *apiError) {
	if err := c.allow("customer"); err != nil {
		return nil, err
	}
	if err := c.required("customer"); err != nil {
		return nil, err
	}
	cu, err := s.customerByID(c.str("customer"), http.StatusBadRequest, "customer")
	if err != nil {
		return nil, err
	}
	pm, err := s.paymentMethodByID(c.id, http.StatusNotFound, "payment_method")
	if err != nil {
		return nil, err
	}
	if pm.Customer != nil && *pm.Customer == cu.ID {
		return pm, nil
	}
	if _, err := s.attachable(pm.ID, "payment_method"); err != nil {
		return nil, err
	}
	pm.Customer = &cu.ID
	return pm, nil
}

func (s *Server) detachPaymentMethod(c *call) (any, *apiError) {
	if err := c.allow(); err != nil {
		return nil, err
	}
	pm, err := s.paymentMethodByID(c.id, http.StatusNotFound, "payment_method")
	if err != nil {
		return nil, err
	}
	if pm.Customer == nil {
		return nil, invalidRequest(http.StatusBadRequest, "", "payment_method",
			"The payment method "+pm.ID+" is not attached to a customer.")
	}
	if cu := s.customers[*pm.Customer]; cu != nil {
		if d := cu.InvoiceSettings.DefaultPaymentMethod; d != nil && *d == pm.ID {
			cu.InvoiceSettings.DefaultPaymentMethod = nil
		}
	}
	pm.Customer = nil
	pm.spent = true
	return pm, nil
}

func (s *Server) paymentMethodByID(id string, status int, param string) (*paymentMethod, *apiError) {
	pm, ok := s.paymentMethods[id]
	if !ok {
		return nil, noSuch(status, "PaymentMethod", id, param)
	}
	return pm, nil
}

// attachable returns a payment method that may be attached to a customer:
// it exists, is not attached and was never spent.
func (s *Server) attachable(id, param string) (*paymentMethod, *apiError) {
	pm, err := s.paymentMethodByID(id, http.StatusBadRequest, param)
	if err != nil {
		return nil, err
	}
	if pm.spent {
		return nil, spentError(param)
	}
	if pm.Customer != nil {
		return nil, invalidRequest(http.StatusBadRequest, "", param,
			"The payment method you provided has already been attached to a customer.")
	}
	return pm, nil
}

// spentError is Stripe's error for a payment method that was detached or
// used once without a customer.
func spentError(param string) *apiError {
	return invalidRequest(http.StatusBadRequest, "", param,
		"The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, "+
			"shared with a connected account without Customer attachment, or was detached from a Customer. "+
			"It may not be used again. To use a PaymentMethod multiple times, you must attach it to a Customer first.")
}
