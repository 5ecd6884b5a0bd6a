package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

func (s *Server) createInvoiceItem(c *call) (any, *apiError) {
	if err := c.allow("customer", "amount", "currency", "description", "invoice", "metadata[*]"); err != nil {
		return nil, err
	}
	if err := c.required("customer", "amount"); err != nil {
		return nil, err
	}
	amount, err := c.int("amount")
	if err != nil {
		return nil, err
	}
	if c.str("invoice") == "" {
		if err := c.required("currency"); err != nil {
			return nil, err
		}
	}
	cu, err := s.customerByID(c.str("customer"), http.StatusBadRequest, "customer")
	if err != nil {
		return nil, err
	}
	currency := strings.ToLower(c.str("currency"))
	var inv *invoice
	if id := c.str("invoice"); id != "" {
		var ok bool
		if inv, ok = s.invoices[id]; !ok {
			return nil, noSuch(http.StatusBadRequest, "invoice", id, "invoice")
		}
		switch {
		case inv.Customer != cu.ID:
			return nil, invalidRequest(http.StatusBadRequest, "", "invoice",
				"The invoice "+id+" belongs to customer "+inv.Customer+", not "+cu.ID+".")
		case inv.Status != "draft":
			return nil, invalidRequest(http.StatusBadRequest, string(stripe.ErrorCodeInvoiceNotEditable), "invoice",
				"You can only add invoice items to draft invoices; "+id+" is "+inv.Status+".")
		case currency == "":
			currency = inv.Currency
		case currency != inv.Currency:
			return nil, invalidRequest(http.StatusBadRequest, "", "currency", fmt.Sprintf(
				"The currency of this invoice item (%s) does not match the currency of the invoice (%s).", currency, inv.Currency))
		}
	}

	id, seq := s.newID("ii_")
	now := s.unix()
	ii := &invoiceItem{
		ID:                id,
		Object:            "invoiceitem",
		Amount:            amount,
		Currency:          currency,
		Customer:          cu.ID,
		Date:              now,
		Description:       optional(c.str("description")),
		Discountable:      true,
		Discounts:         []string{},
		Metadata:          map[string]string{},
		Period:            period{Start: now, End: now},
		Quantity:          1,
		TaxRates:          []struct{}{},
		UnitAmount:        amount,
		UnitAmountDecimal: strconv.FormatInt(amount, 10),
		seq:               seq,
	}
	for k, v := range c.metadata() {
		ii.Metadata[k] = v
	}
	s.invoiceItems[id] = ii
	if inv != nil {
		s.addLine(inv, ii)
	}
	return ii, nil
}

func (s *Server) createInvoice(c *call) (any, *apiError) {
	if err := c.allow("customer", "auto_advance", "collection_method", "days_until_due", "description",
		"metadata[*]", "currency", "default_payment_method", "pending_invoice_items_behavior"); err != nil {
		return nil, err
	}
	if err := c.required("customer"); err != nil {
		return nil, err
	}
	autoAdvance, err := c.bool("auto_advance")
	if err != nil {
		return nil, err
	}
	method := c.str("collection_method")
	switch method {
	case "":
		method = "charge_automatically"
	case "charge_automatically":
	case "send_invoice":
		if err := c.required("days_until_due"); err != nil {
			return nil, err
		}
	default:
		return nil, paramError("", "collection_method", "Invalid collection_method: must be one of charge_automatically or send_invoice")
	}
	days, err := c.int("days_until_due")
	if err != nil {
		return nil, err
	}
	include := false
	switch b := c.str("pending_invoice_items_behavior"); b {
	case "", "exclude":
	case "include":
		include = true
	default:
		return nil, paramError("", "pending_invoice_items_behavior",
			"Invalid pending_invoice_items_behavior: must be one of exclude or include")
	}
	cu, err := s.customerByID(c.str("customer"), http.StatusBadRequest, "customer")
	if err != nil {
		return nil, err
	}
	if pmID := c.str("default_payment_method"); pmID != "" {
		if pm, ok := s.paymentMethods[pmID]; !ok || pm.Customer == nil || *pm.Customer != cu.ID {
			return nil, notAttached(pmID, "default_payment_method")
		}
	}

	var pending []*invoiceItem
	if include {
		for _, ii := range s.invoiceItems {
			if ii.Customer == cu.ID && ii.Invoice == nil {
				pending = append(pending, ii)
			}
		}
		sort.Slice(pending, func(i, j int) bool { return pending[i].seq < pending[j].seq })
	}
	currency := strings.ToLower(c.str("currency"))
	if currency == "" && len(pending) > 0 {
		currency = pending[0].Currency
	}
	if currency == "" {
		currency = "usd"
	}

	id, _ := s.newID("in_")
	now := s.unix()
	inv := &invoice{
		ID:                   id,
		Object:               "invoice",
		AccountCountry:       "US",
		AutoAdvance:          autoAdvance,
		BillingReason:        "manual",
		CollectionMethod:     method,
		Created:              now,
		Currency:             currency,
		Customer:             cu.ID,
		CustomerEmail:        cu.Email,
		CustomerName:         cu.Name,
		DefaultPaymentMethod: optional(c.str("default_payment_method")),
		Description:          optional(c.str("description")),
		Discounts:            []string{},
		Lines:                list[*lineItem]{Object: "list", Data: []*lineItem{}, URL: "/v1/invoices/" + id + "/lines"},
		Metadata:             map[string]string{},
		PeriodEnd:            now,
		PeriodStart:          now,
		Status:               "draft",
	}
	if method == "send_invoice" {
		inv.DueDate = ptr(now + days*86400)
	}
	for k, v := range c.metadata() {
		inv.Metadata[k] = v
	}
	s.invoices[id] = inv
	for _, ii := range pending {
		if ii.Currency == currency {
			s.addLine(inv, ii)
		}
	}
	return inv, nil
}

func (s *Server) getInvoice(c *call) (any, *apiError) {
	if err := c.allow(); err != nil {
		return nil, err
	}
	return s.invoiceByID(c.id)
}

func (s *Server) finalizeInvoice(c *call) (any, *apiError) {
	if err := c.allow("auto_advance"); err != nil {
		return nil, err
	}
	autoAdvance, err := c.bool("auto_advance")
	if err != nil {
		return nil, err
	}
	inv, err := s.invoiceByID(c.id)
	if err != nil {
		return nil, err
	}
	if inv.Status != "draft" {
		return nil, invalidRequest(http.StatusBadRequest, "", "",
			"This invoice is already finalized, you can't re-finalize a non-draft invoice.")
	}
	if c.has("auto_advance") {
		inv.AutoAdvance = autoAdvance
	}
	s.finalize(inv)
	return inv, nil
}

// payInvoice charges an open invoice (finalizing a draft first) to the
// payment_method parameter, else the invoice's default payment method, else
// the customer's invoice_settings.default_payment_method. A card that needs
// authentication leaves the invoice's PaymentIntent in requires_action,
// whatever off_session says.
func (s *Server) payInvoice(c *call) (any, *apiError) {
	if err := c.allow("payment_method", "off_session"); err != nil {
		return nil, err
	}
	if _, err := c.bool("off_session"); err != nil {
		return nil, err
	}
	inv, err := s.invoiceByID(c.id)
	if err != nil {
		return nil, err
	}
	switch inv.Status {
	case "paid":
		// The message is Stripe's; the code is the one clients report
		// seeing (stripe-go v76 has no constant for it).
		return nil, invalidRequest(http.StatusBadRequest, "invoice_already_paid", "", "Invoice is already paid")
	case "draft":
		s.finalize(inv)
		if inv.Status == "paid" {
			return inv, nil
		}
	}
	cu := s.customers[inv.Customer]
	pmID := c.str("payment_method")
	switch {
	case pmID != "":
	case inv.DefaultPaymentMethod != nil:
		pmID = *inv.DefaultPaymentMethod
	case cu.InvoiceSettings.DefaultPaymentMethod != nil:
		pmID = *cu.InvoiceSettings.DefaultPaymentMethod
	default:
		return nil, invalidRequest(http.StatusBadRequest, "", "",
			"This customer has no attached payment source or default payment method. Please consider adding a default payment method.")
	}
	pm, err := s.usable(pmID, cu)
	if err != nil {
		return nil, err
	}

	pi := s.paymentIntents[*inv.PaymentIntent]
	inv.Attempted = true
	inv.AttemptCount++
	failure := s.chargeCard(c, pi, pm, false)
	inv.Charge = pi.LatestCharge
	switch {
	case failure != nil:
		body := *failure
		body.PaymentIntent = pi
		return nil, &apiError{status: http.StatusPaymentRequired, body: body}
	case pi.Status == "requires_action":
		return nil, &apiError{status: http.StatusPaymentRequired, body: errorBody{
			Code:   string(stripe.ErrorCodeInvoicePaymentIntentRequiresAction),
			DocURL: docURL(string(stripe.ErrorCodeInvoicePaymentIntentRequiresAction)),
			Message: "This payment requires additional user action before it can be completed successfully. " +
				"Payment can be completed using the PaymentIntent associated with `invoice.payment_intent`.",
			PaymentIntent: pi,
			Type:          string(stripe.ErrorTypeCard),
		}}
	}
	s.markPaid(inv)
	return inv, nil
}

func (s *Server) invoiceByID(id string) (*invoice, *apiError) {
	inv, ok := s.invoices[id]
	if !ok {
		return nil, noSuch(http.StatusNotFound, "invoice", id, "invoice")
	}
	return inv, nil
}

// addLine puts an invoice item on a draft invoice and updates its totals.
func (s *Server) addLine(inv *invoice, ii *invoiceItem) {
	ii.Invoice = &inv.ID
	id, _ := s.newID("il_")
	inv.Lines.Data = append(inv.Lines.Data, &lineItem{
		ID:                     id,
		Object:                 "line_item",
		Amount:                 ii.Amount,
		AmountExcludingTax:     ii.Amount,
		Currency:               ii.Currency,
		Description:            ii.Description,
		DiscountAmounts:        []struct{}{},
		Discountable:           true,
		Discounts:              []string{},
		InvoiceItem:            ii.ID,
		Metadata:               ii.Metadata,
		Period:                 ii.Period,
		Quantity:               1,
		TaxAmounts:             []struct{}{},
		TaxRates:               []struct{}{},
		Type:                   "invoiceitem",
		UnitAmountExcludingTax: strconv.FormatInt(ii.Amount, 10),
	})
	inv.Subtotal += ii.Amount
	inv.SubtotalExcludingTax = inv.Subtotal
	inv.Total = inv.Subtotal
	inv.TotalExcludingTax = inv.Total
	inv.AmountDue = max(inv.Total, 0)
	inv.AmountRemaining = inv.AmountDue
}

// finalize opens a draft invoice: it gets a number and, if anything is due,
// a PaymentIntent; an invoice with nothing due is paid at once, as Stripe
// does.
func (s *Server) finalize(inv *invoice) {
	cu := s.customers[inv.Customer]
	now := s.unix()
	inv.Status = "open"
	inv.Number = ptr(fmt.Sprintf("%s-%04d", cu.InvoicePrefix, cu.NextInvoiceSequence))
	cu.NextInvoiceSequence++
	inv.StatusTransitions.FinalizedAt = &now
	inv.EffectiveAt = &now
	inv.StartingBalance = 0
	inv.EndingBalance = ptr(int64(0))
	if inv.AmountDue == 0 {
		s.markPaid(inv)
		return
	}
	pi := s.newPaymentIntent(inv.AmountDue, inv.Currency, cu)
	pi.Invoice = &inv.ID
	inv.PaymentIntent = &pi.ID
}

func (s *Server) markPaid(inv *invoice) {
	now := s.unix()
	inv.Status = "paid"
	inv.Paid = true
	inv.AmountPaid = inv.AmountDue
	inv.AmountRemaining = 0
	inv.StatusTransitions.PaidAt = &now
}

// Invoices returns the customer's invoices, oldest first, decoded by
// stripe-go from the JSON the fake serves: a test counts how many invoices
// a retried task made.
func (s *Server) Invoices(customerID string) []*stripe.Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	var invs []*invoice
	for _, inv := range s.invoices {
		if inv.Customer == customerID {
			invs = append(invs, inv)
		}
	}
	sort.Slice(invs, func(i, j int) bool { return invs[i].Created < invs[j].Created || invs[i].ID < invs[j].ID })
	out := make([]*stripe.Invoice, len(invs))
	for i, inv := range invs {
		b, err := json.Marshal(inv)
		if err != nil {
			panic(fmt.Sprintf("stripefake: encode invoice: %v", err))
		}
		out[i] = &stripe.Invoice{}
		if err := json.Unmarshal(b, out[i]); err != nil {
			panic(fmt.Sprintf("stripefake: stripe-go cannot decode an invoice: %v", err))
		}
	}
	return out
}
