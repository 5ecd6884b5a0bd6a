package stripefake_test

import (
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

// draftInvoice creates the monthly invoice's draft with one 29.00 line.
func draftInvoice(t *testing.T, api *client.API, cus string) *stripe.Invoice {
	t.Helper()
	p := &stripe.InvoiceParams{
		Customer:         stripe.String(cus),
		AutoAdvance:      stripe.Bool(false),
		CollectionMethod: stripe.String(string(stripe.InvoiceCollectionMethodChargeAutomatically)),
	}
	p.AddMetadata("org_id", "acme")
	p.AddMetadata("period", "2026-02")
	inv, err := api.Invoices.New(p)
	if err != nil {
		t.Fatalf("create invoice: %v", err)
	}
	if _, err := api.InvoiceItems.New(&stripe.InvoiceItemParams{
		Customer:    stripe.String(cus),
		Invoice:     stripe.String(inv.ID),
		Amount:      stripe.Int64(2900),
		Currency:    stripe.String("usd"),
		Description: stripe.String("membership, February 2026"),
	}); err != nil {
		t.Fatalf("create invoice item: %v", err)
	}
	return inv
}

func TestInvoice_FinalizeAndPay(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, _ := s.NewCustomerWithCard(t, "tok_visa")
	inv := draftInvoice(t, api, cus)

	fin, err := api.Invoices.FinalizeInvoice(inv.ID, nil)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if fin.Status != stripe.InvoiceStatusOpen || fin.AmountDue != 2900 || fin.Number == "" || fin.PaymentIntent == nil {
		t.Fatalf("finalized invoice = status %s, amount_due %d, number %q, payment_intent %v", fin.Status, fin.AmountDue, fin.Number, fin.PaymentIntent)
	}
	paid, err := api.Invoices.Pay(inv.ID, &stripe.InvoicePayParams{OffSession: stripe.Bool(true)})
	if err != nil {
		t.Fatalf("pay: %v", err)
	}
	if paid.Status != stripe.InvoiceStatusPaid || !paid.Paid || paid.AmountPaid != 2900 || paid.AmountRemaining != 0 || paid.Charge == nil {
		t.Errorf("paid invoice = status %s, paid %v, amount_paid %d, remaining %d, charge %v",
			paid.Status, paid.Paid, paid.AmountPaid, paid.AmountRemaining, paid.Charge)
	}
	got, err := api.Invoices.Get(inv.ID, nil)
	if err != nil {
		t.Fatalf("get invoice: %v", err)
	}
	if got.Status != stripe.InvoiceStatusPaid || got.Metadata["period"] != "2026-02" || len(got.Lines.Data) != 1 ||
		got.Lines.Data[0].Amount != 2900 || got.StatusTransitions.PaidAt == 0 {
		t.Errorf("invoice = %+v", got)
	}
	pi, err := api.PaymentIntents.Get(paid.PaymentIntent.ID, nil)
	if err != nil {
		t.Fatalf("get invoice's PaymentIntent: %v", err)
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.Invoice == nil || pi.Invoice.ID != inv.ID {
		t.Errorf("invoice's PaymentIntent = %s, invoice %v", pi.Status, pi.Invoice)
	}
	wantCharges(t, s, cus, 2900)

	_, err = api.Invoices.Pay(inv.ID, nil)
	if se := asStripeError(t, err); se.HTTPStatusCode != http.StatusBadRequest || se.Code != "invoice_already_paid" {
		t.Errorf("second pay = %d %s, want 400 invoice_already_paid", se.HTTPStatusCode, se.Code)
	}
	wantCharges(t, s, cus, 2900)
}

func TestInvoice_PayFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		token      string
		wantCode   stripe.ErrorCode
		wantStatus stripe.PaymentIntentStatus
	}{
		{name: "declined", token: "tok_chargeDeclinedInsufficientFunds", wantCode: "card_declined", wantStatus: stripe.PaymentIntentStatusRequiresPaymentMethod},
		{name: "needs authentication", token: "tok_authenticationRequired", wantCode: "invoice_payment_intent_requires_action", wantStatus: stripe.PaymentIntentStatusRequiresAction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, pm := s.NewCustomerWithCard(t, tt.token)
			inv := draftInvoice(t, api, cus)

			// Paying a draft finalizes it first.
			_, err := api.Invoices.Pay(inv.ID, nil)
			se := asStripeError(t, err)
			if se.HTTPStatusCode != http.StatusPaymentRequired || se.Type != stripe.ErrorTypeCard || se.Code != tt.wantCode ||
				se.PaymentIntent == nil || se.PaymentIntent.Status != tt.wantStatus {
				t.Errorf("pay error = %d %s %s, payment_intent %+v; want 402 card_error %s, %s",
					se.HTTPStatusCode, se.Type, se.Code, se.PaymentIntent, tt.wantCode, tt.wantStatus)
			}
			got, err := api.Invoices.Get(inv.ID, nil)
			if err != nil {
				t.Fatalf("get invoice: %v", err)
			}
			if got.Status != stripe.InvoiceStatusOpen || got.AttemptCount != 1 || !got.Attempted || got.Number == "" {
				t.Errorf("invoice = status %s, attempt_count %d, attempted %v, number %q", got.Status, got.AttemptCount, got.Attempted, got.Number)
			}
			wantCharges(t, s, cus, 0)

			// After the admin fixes the card, paying again succeeds.
			s.SetDecline(pm, "", "")
			paid, err := api.Invoices.Pay(inv.ID, nil)
			if err != nil {
				t.Fatalf("pay after the card was fixed: %v", err)
			}
			if paid.Status != stripe.InvoiceStatusPaid || paid.AttemptCount != 2 {
				t.Errorf("invoice = status %s, attempt_count %d; want paid after 2 attempts", paid.Status, paid.AttemptCount)
			}
			wantCharges(t, s, cus, 2900)
		})
	}
}

func TestInvoice_Errors(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	cus, _ := s.NewCustomerWithCard(t, "tok_visa")
	bare, err := api.Customers.New(&stripe.CustomerParams{Email: stripe.String("ops@example.com")})
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}

	tests := []struct {
		name     string
		do       func(t *testing.T) error
		wantCode stripe.ErrorCode
	}{
		{
			name: "pay without a payment method",
			do: func(t *testing.T) error {
				_, err := api.Invoices.Pay(draftInvoice(t, api, bare.ID).ID, nil)
				return err
			},
		},
		{
			name: "add an item to a finalized invoice",
			do: func(t *testing.T) error {
				inv := draftInvoice(t, api, cus)
				if _, err := api.Invoices.FinalizeInvoice(inv.ID, nil); err != nil {
					t.Fatalf("finalize: %v", err)
				}
				_, err := api.InvoiceItems.New(&stripe.InvoiceItemParams{
					Customer: stripe.String(cus), Invoice: stripe.String(inv.ID), Amount: stripe.Int64(100),
				})
				return err
			},
			wantCode: stripe.ErrorCodeInvoiceNotEditable,
		},
		{
			name: "finalize twice",
			do: func(t *testing.T) error {
				inv := draftInvoice(t, api, cus)
				if _, err := api.Invoices.FinalizeInvoice(inv.ID, nil); err != nil {
					t.Fatalf("finalize: %v", err)
				}
				_, err := api.Invoices.FinalizeInvoice(inv.ID, nil)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			se := asStripeError(t, tt.do(t))
			if se.HTTPStatusCode != http.StatusBadRequest || se.Type != stripe.ErrorTypeInvalidRequest || se.Code != tt.wantCode {
				t.Errorf("error = %d %s %q, want 400 invalid_request_error %q", se.HTTPStatusCode, se.Type, se.Code, tt.wantCode)
			}
		})
	}
}

func TestInvoice_PendingItems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		behavior  string
		wantLines int
		wantTotal int64
	}{
		{behavior: "include", wantLines: 2, wantTotal: 1500},
		{behavior: "exclude", wantLines: 0, wantTotal: 0},
	}
	for _, tt := range tests {
		t.Run(tt.behavior, func(t *testing.T) {
			t.Parallel()
			s := stripefake.New(t)
			api := newAPI(t, s)
			cus, _ := s.NewCustomerWithCard(t, "tok_visa")
			for _, amount := range []int64{1000, 500} {
				if _, err := api.InvoiceItems.New(&stripe.InvoiceItemParams{
					Customer: stripe.String(cus), Amount: stripe.Int64(amount), Currency: stripe.String("usd"),
				}); err != nil {
					t.Fatalf("create pending item: %v", err)
				}
			}
			inv, err := api.Invoices.New(&stripe.InvoiceParams{
				Customer:                    stripe.String(cus),
				PendingInvoiceItemsBehavior: stripe.String(tt.behavior),
			})
			if err != nil {
				t.Fatalf("create invoice: %v", err)
			}
			if len(inv.Lines.Data) != tt.wantLines || inv.Total != tt.wantTotal || inv.Status != stripe.InvoiceStatusDraft {
				t.Errorf("invoice = %d lines, total %d, status %s; want %d lines, total %d, draft",
					len(inv.Lines.Data), inv.Total, inv.Status, tt.wantLines, tt.wantTotal)
			}
		})
	}
}
