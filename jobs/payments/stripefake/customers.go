package stripefake

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func (s *Server) createCustomer(c *call) (any, *apiError) {
	if err := c.allow("email", "name", "description", "phone", "metadata[*]",
		"payment_method", "invoice_settings[default_payment_method]"); err != nil {
		return nil, err
	}
	var pm *paymentMethod
	if id := c.str("payment_method"); id != "" {
		var err *apiError
		if pm, err = s.attachable(id, "payment_method"); err != nil {
			return nil, err
		}
	}
	def := c.str("invoice_settings[default_payment_method]")
	if def != "" && (pm == nil || pm.ID != def) {
		return nil, notAttached(def, "invoice_settings[default_payment_method]")
	}
	cu := s.newCustomer()
	cu.Email = optional(c.str("email"))
	cu.Name = optional(c.str("name"))
	cu.Description = optional(c.str("description"))
	cu.Phone = optional(c.str("phone"))
	for k, v := range c.metadata() {
		cu.Metadata[k] = v
	}
	if pm != nil {
		pm.Customer = &cu.ID
	}
	cu.InvoiceSettings.DefaultPaymentMethod = optional(def)
	return cu, nil
}

func (s *Server) getCustomer(c *call) (any, *apiError) {
	if err := c.allow(); err != nil {
		return nil, err
	}
	return s.customerByID(c.id, http.StatusNotFound, "id")
}

func (s *Server) updateCustomer(c *call) (any, *apiError) {
	if err := c.allow("email", "name", "description", "phone", "metadata", "metadata[*]",
		"invoice_settings[default_payment_method]"); err != nil {
		return nil, err
	}
	cu, err := s.customerByID(c.id, http.StatusNotFound, "id")
	if err != nil {
		return nil, err
	}
	const defParam = "invoice_settings[default_payment_method]"
	if c.has(defParam) {
		def := c.str(defParam)
		if pm, ok := s.paymentMethods[def]; def != "" && (!ok || pm.Customer == nil || *pm.Customer != cu.ID) {
			return nil, notAttached(def, defParam)
		}
		cu.InvoiceSettings.DefaultPaymentMethod = optional(def)
	}
	for _, f := range []struct {
		name string
		dst  **string
	}{{"email", &cu.Email}, {"name", &cu.Name}, {"description", &cu.Description}, {"phone", &cu.Phone}} {
		if c.has(f.name) {
			*f.dst = optional(c.str(f.name))
		}
	}
	c.mergeMetadata(cu.Metadata)
	return cu, nil
}

func (s *Server) newCustomer() *customer {
	id, _ := s.newID("cus_")
	cu := &customer{
		ID:                  id,
		Object:              "customer",
		Created:             s.unix(),
		InvoicePrefix:       strings.ToUpper(id[len("cus_") : len("cus_")+8]),
		Metadata:            map[string]string{},
		NextInvoiceSequence: 1,
		PreferredLocales:    []string{},
		TaxExempt:           "none",
	}
	s.customers[id] = cu
	return cu
}

func (s *Server) customerByID(id string, status int, param string) (*customer, *apiError) {
	cu, ok := s.customers[id]
	if !ok {
		return nil, noSuch(status, "customer", id, param)
	}
	return cu, nil
}

// notAttached is Stripe's error for a payment method that is not the
// customer's.
func notAttached(pmID, param string) *apiError {
	return invalidRequest(http.StatusBadRequest, "resource_missing", param,
		"The customer does not have a payment method with the ID "+pmID+". The payment method must be attached to the customer.")
}

// NewCustomerWithCard creates, without going through HTTP (so Requests does
// not show it), a customer with a card from a test token attached and set as
// the customer's default payment method for invoices — what creditd's "save
// the org's default card" leaves behind.
func (s *Server) NewCustomerWithCard(tb testing.TB, token string) (customerID, paymentMethodID string) {
	tb.Helper()
	cus, pms, err := s.CreateCustomer(token)
	if err != nil {
		tb.Fatalf("stripefake: NewCustomerWithCard: %v", err)
	}
	return cus, pms[0]
}

// CreateCustomer creates, without going through HTTP, a customer with one
// attached card per test token (see the package documentation), the first
// its default payment method, and returns their ids in the tokens' order.
func (s *Server) CreateCustomer(tokens ...string) (customerID string, paymentMethodIDs []string, err error) {
	if len(tokens) == 0 {
		return "", nil, errors.New("a customer needs at least one card")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range tokens {
		if _, ok := testCards[tok]; !ok {
			return "", nil, fmt.Errorf("unknown test token %q", tok)
		}
	}
	cu := s.newCustomer()
	for _, tok := range tokens {
		pm, _ := s.newCard(tok)
		pm.Customer = &cu.ID
		paymentMethodIDs = append(paymentMethodIDs, pm.ID)
	}
	def := paymentMethodIDs[0]
	cu.InvoiceSettings.DefaultPaymentMethod = &def
	return cu.ID, paymentMethodIDs, nil
}
