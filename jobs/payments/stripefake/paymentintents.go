package stripefake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

const (
	// minAmount is Stripe's minimum charge, 0.50 in the currency's major
	// unit; the fake applies it to every currency.
	minAmount = 50
	// maxAmount is Stripe's maximum charge for two-decimal currencies.
	maxAmount = 99999999
)

func (s *Server) createPaymentIntent(c *call) (any, *apiError) {
	if err := c.allow("amount", "currency", "customer", "payment_method", "confirm", "off_session",
		"description", "metadata[*]", "receipt_email", "statement_descriptor_suffix",
		"payment_method_types[]"); err != nil {
		return nil, err
	}
	if err := c.required("amount", "currency"); err != nil {
		return nil, err
	}
	amount, err := c.int("amount")
	if err != nil {
		return nil, err
	}
	currency := strings.ToLower(c.str("currency"))
	if err := checkAmount(amount, currency); err != nil {
		return nil, err
	}
	confirm, err := c.bool("confirm")
	if err != nil {
		return nil, err
	}
	offSession, err := c.bool("off_session")
	if err != nil {
		return nil, err
	}
	if c.has("off_session") && !confirm {
		return nil, paramError("", "off_session", "You may only specify `off_session` when `confirm` is true.")
	}
	for _, t := range c.list("payment_method_types") {
		if t != "card" {
			return nil, paramError("", "payment_method_types", "The payment method type provided: "+t+" is invalid. This fake supports only card.")
		}
	}

	var cu *customer
	if id := c.str("customer"); id != "" {
		if cu, err = s.customerByID(id, http.StatusBadRequest, "customer"); err != nil {
			return nil, err
		}
	}
	var pm *paymentMethod
	if id := c.str("payment_method"); id != "" {
		if pm, err = s.usable(id, cu); err != nil {
			return nil, err
		}
	}

	pi := s.newPaymentIntent(amount, currency, cu)
	pi.Description = optional(c.str("description"))
	pi.ReceiptEmail = optional(c.str("receipt_email"))
	pi.StatementSuffix = optional(c.str("statement_descriptor_suffix"))
	for k, v := range c.metadata() {
		pi.Metadata[k] = v
	}
	if pm != nil {
		pi.PaymentMethod = &pm.ID
		pi.Status = "requires_confirmation"
	}
	if !confirm {
		return pi, nil
	}
	if pm == nil {
		msg := "You cannot confirm this PaymentIntent because it's missing a payment method. " +
			"You can either update the PaymentIntent with a payment method and then confirm it again, " +
			"or confirm it again directly with a payment method."
		if cu != nil {
			msg = "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with " +
				cu.ID + ", specify a payment method attached to this customer along with the customer ID."
		}
		e := invalidRequest(http.StatusBadRequest, string(stripe.ErrorCodePaymentIntentUnexpectedState), "", msg)
		e.body.PaymentIntent = pi
		return nil, e
	}
	if failure := s.chargeCard(c, pi, pm, offSession); failure != nil {
		body := *failure
		body.PaymentIntent = pi
		return nil, &apiError{status: http.StatusPaymentRequired, body: body}
	}
	return pi, nil
}

func (s *Server) getPaymentIntent(c *call) (any, *apiError) {
	if err := c.allow("client_secret"); err != nil {
		return nil, err
	}
	pi, ok := s.paymentIntents[c.id]
	if !ok {
		return nil, noSuch(http.StatusNotFound, "payment_intent", c.id, "intent")
	}
	return pi, nil
}

// listPaymentIntents lists newest first, as Stripe does, with Stripe's
// cursor pagination.
func (s *Server) listPaymentIntents(c *call) (any, *apiError) {
	if err := c.allow("customer", "created", "created[gt]", "created[gte]", "created[lt]", "created[lte]",
		"limit", "starting_after", "ending_before"); err != nil {
		return nil, err
	}
	limit := int64(10)
	if c.has("limit") {
		n, err := c.int("limit")
		if err != nil {
			return nil, err
		}
		if n < 1 || n > 100 {
			return nil, paramError("", "limit", fmt.Sprintf("Invalid limit: %d. Must be between 1 and 100.", n))
		}
		limit = n
	}
	var bounds []createdBound
	for _, op := range []string{"", "gt", "gte", "lt", "lte"} {
		name := "created"
		if op != "" {
			name += "[" + op + "]"
		}
		if !c.has(name) {
			continue
		}
		at, err := c.int(name)
		if err != nil {
			return nil, err
		}
		bounds = append(bounds, createdBound{op: op, at: at})
	}

	items := []*paymentIntent{}
	for _, pi := range s.paymentIntents {
		if cust := c.str("customer"); cust != "" && (pi.Customer == nil || *pi.Customer != cust) {
			continue
		}
		if inWindow(bounds, pi.Created) {
			items = append(items, pi)
		}
	}
	sort.Slice(items, func(i, j int) bool { return newer(items[i], items[j]) })

	after, before := c.str("starting_after"), c.str("ending_before")
	if after != "" && before != "" {
		return nil, paramError("", "ending_before", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	var start, end int
	switch {
	case after != "":
		anchor, ok := s.paymentIntents[after]
		if !ok {
			return nil, noSuch(http.StatusBadRequest, "payment_intent", after, "starting_after")
		}
		start = sort.Search(len(items), func(i int) bool { return newer(anchor, items[i]) })
		end = min(start+int(limit), len(items))
	case before != "":
		anchor, ok := s.paymentIntents[before]
		if !ok {
			return nil, noSuch(http.StatusBadRequest, "payment_intent", before, "ending_before")
		}
		end = sort.Search(len(items), func(i int) bool { return !newer(items[i], anchor) })
		start = max(end-int(limit), 0)
	default:
		end = min(int(limit), len(items))
	}
	hasMore := end < len(items)
	if before != "" {
		hasMore = start > 0
	}
	return list[*paymentIntent]{Object: "list", Data: items[start:end], HasMore: hasMore, URL: "/v1/payment_intents"}, nil
}

// createdBound is one created filter of a list: created=at or
// created[op]=at.
type createdBound struct {
	op string
	at int64
}

func inWindow(bounds []createdBound, t int64) bool {
	for _, b := range bounds {
		var ok bool
		switch b.op {
		case "gt":
			ok = t > b.at
		case "gte":
			ok = t >= b.at
		case "lt":
			ok = t < b.at
		case "lte":
			ok = t <= b.at
		default:
			ok = t == b.at
		}
		if !ok {
			return false
		}
	}
	return true
}

// newer orders PaymentIntents newest first; the sequence number breaks ties
// between those created within the same second.
func newer(a, b *paymentIntent) bool {
	if a.Created != b.Created {
		return a.Created > b.Created
	}
	return a.seq > b.seq
}

func checkAmount(amount int64, currency string) *apiError {
	switch {
	case amount < 1:
		return paramError("parameter_invalid_integer", "amount", "This value must be greater than or equal to 1.")
	case amount < minAmount && currency == "usd":
		return paramError(string(stripe.ErrorCodeAmountTooSmall), "amount", "Amount must be at least $0.50 usd")
	case amount < minAmount:
		return paramError(string(stripe.ErrorCodeAmountTooSmall), "amount", "Amount must convert to at least 50 cents.")
	case amount > maxAmount:
		return paramError(string(stripe.ErrorCodeAmountTooLarge), "amount", "Amount must be no more than $999,999.99")
	}
	return nil
}

// usable returns a payment method a PaymentIntent for customer cu (nil for
// none) may charge.
func (s *Server) usable(id string, cu *customer) (*paymentMethod, *apiError) {
	pm, err := s.paymentMethodByID(id, http.StatusBadRequest, "payment_method")
	if err != nil {
		return nil, err
	}
	switch {
	case pm.spent:
		return nil, spentError("payment_method")
	case pm.Customer != nil && (cu == nil || *pm.Customer != cu.ID):
		return nil, invalidRequest(http.StatusBadRequest, "", "payment_method",
			"The `payment_method` parameter supplied "+pm.ID+" belongs to the Customer "+*pm.Customer+
				". Please include the Customer in the `customer` parameter on the PaymentIntent.")
	case cu != nil && pm.Customer == nil:
		return nil, notAttached(pm.ID, "payment_method")
	}
	return pm, nil
}

func (s *Server) newPaymentIntent(amount int64, currency string, cu *customer) *paymentIntent {
	id, seq := s.newID("pi_")
	pi := &paymentIntent{
		ID:                 id,
		Object:             "payment_intent",
		Amount:             amount,
		CaptureMethod:      "automatic",
		ClientSecret:       id + "_secret_" + randomID(),
		ConfirmationMethod: "automatic",
		Created:            s.unix(),
		Currency:           currency,
		Metadata:           map[string]string{},
		PaymentMethodTypes: []string{"card"},
		Status:             "requires_payment_method",
		seq:                seq,
	}
	if cu != nil {
		pi.Customer = &cu.ID
	}
	s.paymentIntents[id] = pi
	return pi
}

// chargeCard confirms pi with pm. It returns nil when the charge succeeded,
// or when it needs authentication on-session (pi is then requires_action);
// otherwise the card error (pi is then requires_payment_method with the
// error as last_payment_error, and a failed charge is stored).
func (s *Server) chargeCard(c *call, pi *paymentIntent, pm *paymentMethod, offSession bool) *errorBody {
	d := pm.decline
	switch c.chargeFault() {
	case FaultDecline:
		d = decline{code: string(stripe.ErrorCodeCardDeclined), declineCode: "generic_decline"}
	case FaultAuthRequired:
		d = authRequired
	}
	if pm.Customer == nil {
		pm.spent = true
	}
	pi.PaymentMethod = &pm.ID
	pi.NextAction = nil
	if d.needsAuth() && !offSession {
		pi.Status = "requires_action"
		pi.NextAction = &nextAction{Type: "use_stripe_sdk"}
		return nil
	}

	ch := s.newCharge(pi, pm)
	pi.LatestCharge = &ch.ID
	if d.code == "" {
		pi.Status = "succeeded"
		pi.AmountReceived = pi.Amount
		pi.LastPaymentError = nil
		return nil
	}
	ch.Status = "failed"
	ch.Paid = false
	ch.Captured = false
	ch.AmountCaptured = 0
	ch.BalanceTransaction = nil
	ch.FailureCode = ptr(d.code)
	ch.FailureMessage = ptr(d.message())
	reason := d.declineCode
	if reason == "" {
		reason = d.code
	}
	ch.Outcome = chargeOutcome{
		NetworkStatus: "declined_by_network",
		Reason:        &reason,
		RiskLevel:     "normal",
		RiskScore:     20,
		SellerMessage: "The bank returned the decline code `" + reason + "`.",
		Type:          "issuer_declined",
	}

	snapshot := *pm
	snapshot.Metadata = maps.Clone(pm.Metadata)
	failure := &errorBody{
		Charge:        ch.ID,
		Code:          d.code,
		DeclineCode:   d.declineCode,
		DocURL:        docURL(d.code),
		Message:       d.message(),
		PaymentMethod: &snapshot,
		Type:          string(stripe.ErrorTypeCard),
	}
	pi.LastPaymentError = failure
	pi.PaymentMethod = nil
	pi.Status = "requires_payment_method"
	return failure
}

func (s *Server) newCharge(pi *paymentIntent, pm *paymentMethod) *charge {
	id, _ := s.newID("ch_")
	ch := &charge{
		ID:                            id,
		Object:                        "charge",
		Amount:                        pi.Amount,
		AmountCaptured:                pi.Amount,
		BalanceTransaction:            ptr("txn_" + randomID()),
		BillingDetails:                pm.BillingDetails,
		CalculatedStatementDescriptor: "STRIPEFAKE",
		Captured:                      true,
		Created:                       s.unix(),
		Currency:                      pi.Currency,
		Customer:                      pi.Customer,
		Description:                   pi.Description,
		Invoice:                       pi.Invoice,
		Metadata:                      maps.Clone(pi.Metadata),
		Outcome: chargeOutcome{
			NetworkStatus: "approved_by_network",
			RiskLevel:     "normal",
			RiskScore:     20,
			SellerMessage: "Payment complete.",
			Type:          "authorized",
		},
		Paid:          true,
		PaymentIntent: &pi.ID,
		PaymentMethod: &pm.ID,
		PaymentMethodDetails: paymentMethodDetails{
			Card: chargeCard{
				Brand:       pm.Card.Brand,
				Checks:      pm.Card.Checks,
				Country:     pm.Card.Country,
				ExpMonth:    pm.Card.ExpMonth,
				ExpYear:     pm.Card.ExpYear,
				Fingerprint: pm.Card.Fingerprint,
				Funding:     pm.Card.Funding,
				Last4:       pm.Card.Last4,
				Network:     pm.Card.Brand,
			},
			Type: "card",
		},
		Status: "succeeded",
	}
	s.charges[id] = ch
	return ch
}

// PaymentIntents returns copies of every stored PaymentIntent, invoices'
// included, oldest first, decoded by stripe-go from the JSON the fake
// serves.
func (s *Server) PaymentIntents() []*stripe.PaymentIntent {
	s.mu.Lock()
	defer s.mu.Unlock()
	pis := make([]*paymentIntent, 0, len(s.paymentIntents))
	for _, pi := range s.paymentIntents {
		pis = append(pis, pi)
	}
	sort.Slice(pis, func(i, j int) bool { return pis[i].seq < pis[j].seq })
	out := make([]*stripe.PaymentIntent, len(pis))
	for i, pi := range pis {
		b, err := json.Marshal(pi)
		if err != nil {
			panic(fmt.Sprintf("stripefake: encode payment intent: %v", err))
		}
		out[i] = &stripe.PaymentIntent{}
		if err := json.Unmarshal(b, out[i]); err != nil {
			panic(fmt.Sprintf("stripefake: stripe-go cannot decode a payment intent: %v", err))
		}
	}
	return out
}

// Charges returns the total amount, in minor units, successfully charged to
// a customer: the sum of its succeeded PaymentIntents (invoice payments
// included), each counted once however often its response was replayed.
// Refunds do not reduce it.
func (s *Server) Charges(customerID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for _, pi := range s.paymentIntents {
		if pi.Status == "succeeded" && pi.Customer != nil && *pi.Customer == customerID {
			total += pi.AmountReceived
		}
	}
	return total
}
