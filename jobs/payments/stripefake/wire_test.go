package stripefake_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

// Defined types without stripe-go's UnmarshalJSON methods, so that a strict
// decoder checks their fields (stripe-go's methods decode leniently).
type (
	wireCustomer      stripe.Customer
	wirePaymentMethod stripe.PaymentMethod
	wirePaymentIntent stripe.PaymentIntent
	wireCharge        stripe.Charge
	wireRefund        stripe.Refund
	wireInvoiceItem   stripe.InvoiceItem
	wireInvoice       stripe.Invoice
	wireList          stripe.PaymentIntentList
	wireError         struct {
		Error stripe.Error `json:"error"`
	}
)

// strictDecode fails the test if raw has a field stripe-go v76 does not
// know: the fake must not invent fields, or misspell Stripe's. The one
// exception is "object":"list", which Stripe sends and stripe-go's list types
// ignore.
func strictDecode(t *testing.T, what string, raw []byte, into any) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	dropListObject(v)
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Errorf("%s: stripe-go v76 does not decode the fake's JSON strictly: %v\n%s", what, err, raw)
	}
}

// dropListObject removes "object":"list" from every list in v.
func dropListObject(v any) {
	switch x := v.(type) {
	case map[string]any:
		if x["object"] == "list" {
			delete(x, "object")
		}
		for _, e := range x {
			dropListObject(e)
		}
	case []any:
		for _, e := range x {
			dropListObject(e)
		}
	}
}

// field returns the raw JSON of one field of an object.
func field(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode object: %v", err)
	}
	return m[name]
}

func TestWireShapes(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)

	cus, err := api.Customers.New(&stripe.CustomerParams{Email: stripe.String("a@example.com")})
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	strictDecode(t, "customer", cus.LastResponse.RawJSON, &wireCustomer{})

	pm, err := api.PaymentMethods.New(&stripe.PaymentMethodParams{
		Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCardParams{Token: stripe.String("tok_visa")},
	})
	if err != nil {
		t.Fatalf("create payment method: %v", err)
	}
	strictDecode(t, "payment method", pm.LastResponse.RawJSON, &wirePaymentMethod{})
	if _, err := api.PaymentMethods.Attach(pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String(cus.ID)}); err != nil {
		t.Fatalf("attach: %v", err)
	}

	p := recharge(cus.ID, pm.ID, 2500, "")
	p.AddExpand("latest_charge")
	pi, err := api.PaymentIntents.New(p)
	if err != nil {
		t.Fatalf("charge: %v", err)
	}
	strictDecode(t, "succeeded payment intent", pi.LastResponse.RawJSON, &wirePaymentIntent{})
	strictDecode(t, "charge", field(t, pi.LastResponse.RawJSON, "latest_charge"), &wireCharge{})

	re, err := api.Refunds.New(&stripe.RefundParams{PaymentIntent: stripe.String(pi.ID), Amount: stripe.Int64(100)})
	if err != nil {
		t.Fatalf("refund: %v", err)
	}
	strictDecode(t, "refund", re.LastResponse.RawJSON, &wireRefund{})

	s.SetDecline(pm.ID, "card_declined", "insufficient_funds")
	_, err = api.PaymentIntents.New(recharge(cus.ID, pm.ID, 2500, ""))
	declined := asStripeError(t, err)
	strictDecode(t, "card error", declined.LastResponse.RawJSON, &wireError{})
	declinedPI := field(t, field(t, declined.LastResponse.RawJSON, "error"), "payment_intent")
	strictDecode(t, "declined payment intent", declinedPI, &wirePaymentIntent{})
	strictDecode(t, "failed charge's payment method", field(t, field(t, declinedPI, "last_payment_error"), "payment_method"), &wirePaymentMethod{})

	s.SetDecline(pm.ID, "authentication_required", "authentication_required")
	onSession := recharge(cus.ID, pm.ID, 2500, "")
	onSession.OffSession = nil
	action, err := api.PaymentIntents.New(onSession)
	if err != nil {
		t.Fatalf("on-session 3DS: %v", err)
	}
	strictDecode(t, "requires_action payment intent", action.LastResponse.RawJSON, &wirePaymentIntent{})
	s.SetDecline(pm.ID, "", "")

	inv, err := api.Invoices.New(&stripe.InvoiceParams{Customer: stripe.String(cus.ID)})
	if err != nil {
		t.Fatalf("create invoice: %v", err)
	}
	ii, err := api.InvoiceItems.New(&stripe.InvoiceItemParams{
		Customer: stripe.String(cus.ID), Invoice: stripe.String(inv.ID), Amount: stripe.Int64(1200),
	})
	if err != nil {
		t.Fatalf("create invoice item: %v", err)
	}
	strictDecode(t, "invoice item", ii.LastResponse.RawJSON, &wireInvoiceItem{})
	if _, err := api.Customers.Update(cus.ID, &stripe.CustomerParams{
		InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{DefaultPaymentMethod: stripe.String(pm.ID)},
	}); err != nil {
		t.Fatalf("set default: %v", err)
	}
	paid, err := api.Invoices.Pay(inv.ID, nil)
	if err != nil {
		t.Fatalf("pay invoice: %v", err)
	}
	strictDecode(t, "paid invoice", paid.LastResponse.RawJSON, &wireInvoice{})

	it := api.PaymentIntents.List(&stripe.PaymentIntentListParams{Customer: stripe.String(cus.ID)})
	for it.Next() {
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list: %v", err)
	}
	strictDecode(t, "payment intent list", it.PaymentIntentList().LastResponse.RawJSON, &wireList{})
}
