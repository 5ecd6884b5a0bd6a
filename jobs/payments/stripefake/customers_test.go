package stripefake_test

import (
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestSaveCardThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)

	cp := &stripe.CustomerParams{Email: stripe.String("billing@acme.test"), Name: stripe.String("Acme")}
	cp.AddMetadata("org_id", "acme")
	cus, err := api.Customers.New(cp)
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	pm, err := api.PaymentMethods.New(&stripe.PaymentMethodParams{
		Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_mastercard")},
	})
	if err != nil {
		t.Fatalf("create payment method: %v", err)
	}
	if pm.Card.Brand != stripe.PaymentMethodCardBrandMastercard || pm.Card.Last4 != "4444" || pm.Customer != nil {
		t.Errorf("payment method = %s/%s, customer %v", pm.Card.Brand, pm.Card.Last4, pm.Customer)
	}
	attached, err := api.PaymentMethods.Attach(pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if attached.Customer == nil || attached.Customer.ID != cus.ID {
		t.Errorf("attached customer = %v, want %s", attached.Customer, cus.ID)
	}
	if _, err := api.Customers.Update(cus.ID, &stripe.CustomerParams{
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm.ID)},
	}); err != nil {
		t.Fatalf("set default payment method: %v", err)
	}
	got, err := api.Customers.Get(cus.ID, nil)
	if err != nil {
		t.Fatalf("get customer: %v", err)
	}
	if got.InvoiceSettings.DefaultPaymentMethod == nil || got.InvoiceSettings.DefaultPaymentMethod.ID != pm.ID ||
		got.Email != "billing@acme.test" || got.Metadata["org_id"] != "acme" {
		t.Errorf("customer = %+v", got)
	}
	// Saving a card charges nothing.
	wantCharges(t, s, cus.ID, 0)
	if _, err := api.PaymentIntents.New(recharge(cus.ID, pm.ID, 2000, "")); err != nil {
		t.Fatalf("charge the saved card: %v", err)
	}
	wantCharges(t, s, cus.ID, 2000)

	if _, err := api.PaymentMethods.Detach(pm.ID, nil); err != nil {
		t.Fatalf("detach: %v", err)
	}
	got, err = api.Customers.Get(cus.ID, nil)
	if err != nil {
		t.Fatalf("get customer: %v", err)
	}
	if got.InvoiceSettings.DefaultPaymentMethod != nil {
		t.Errorf("default payment method after detach = %v, want none", got.InvoiceSettings.DefaultPaymentMethod)
	}
	_, err = api.PaymentMethods.Attach(pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)})
	if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusBadRequest {
		t.Errorf("re-attaching a detached card: status %d, want 400", se.HTTPStatusCode)
	}
}

func TestNewCustomerWithCard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		token     string
		wantBrand stripe.PaymentMethodCardBrand
		wantLast4 string
	}{
		{"tok_visa", "visa", "4242"},
		{"tok_mastercard", "mastercard", "4444"},
		{"tok_chargeDeclined", "visa", "0002"},
		{"tok_chargeDeclinedInsufficientFunds", "visa", "9995"},
		{"tok_authenticationRequired", "visa", "3184"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cusID, pmID := s.NewCustomerWithCard(t, tt.token)
			pm, err := api.PaymentMethods.Get(pmID, nil)
			if err != nil {
				t.Fatalf("get payment method: %v", err)
			}
			if pm.Card.Brand != tt.wantBrand || pm.Card.Last4 != tt.wantLast4 || pm.Customer.ID != cusID {
				t.Errorf("payment method = %s/%s of %s, want %s/%s of %s", pm.Card.Brand, pm.Card.Last4, pm.Customer.ID, tt.wantBrand, tt.wantLast4, cusID)
			}
			cus, err := api.Customers.Get(cusID, nil)
			if err != nil {
				t.Fatalf("get customer: %v", err)
			}
			if cus.InvoiceSettings.DefaultPaymentMethod == nil || cus.InvoiceSettings.DefaultPaymentMethod.ID != pmID {
				t.Errorf("invoice default = %v, want %s", cus.InvoiceSettings.DefaultPaymentMethod, pmID)
			}
			if n := len(s.Requests()); n != 2 {
				t.Errorf("%d requests recorded, want only the test's 2", n)
			}
		})
	}
}
