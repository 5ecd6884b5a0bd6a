package payments

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger/credits"
)

// listPage is the page size asked of Stripe (its maximum).
const listPage = 100

// ListPaymentIntents lists the customer's PaymentIntents created at or
// after since, newest first, following Stripe's pages, at most max; more
// reports that Stripe had more. It only reads.
func (s *Stripe) ListPaymentIntents(ctx context.Context, customer string, since time.Time, max int) ([]jobs.PaymentIntent, bool, error) {
	p := &stripe.PaymentIntentListParams{
		Customer:     stripe.String(customer),
		CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
	}
	p.Context = ctx
	p.Limit = stripe.Int64(int64(min(listPage, max+1)))
	var out []jobs.PaymentIntent
	it := s.api.PaymentIntents.List(p)
	for it.Next() {
		if len(out) == max {
			return out, true, nil
		}
		out = append(out, fromStripe(it.PaymentIntent()))
	}
	if err := it.Err(); err != nil {
		return nil, false, fmt.Errorf("stripe: list payment intents of %s: %w", customer, err)
	}
	return out, false, nil
}

// GetPaymentIntent reads one PaymentIntent; jobs.ErrNoSuchPayment when
// Stripe has none of that id.
func (s *Stripe) GetPaymentIntent(ctx context.Context, id string) (jobs.PaymentIntent, error) {
	p := &stripe.PaymentIntentParams{}
	p.Context = ctx
	pi, err := s.api.PaymentIntents.Get(id, p)
	var se *stripe.Error
	switch {
	case errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound:
		return jobs.PaymentIntent{}, fmt.Errorf("%s: %w", id, jobs.ErrNoSuchPayment)
	case err != nil:
		return jobs.PaymentIntent{}, fmt.Errorf("stripe: payment intent %s: %w", id, err)
	}
	return fromStripe(pi), nil
}

// fromStripe keeps what reconciliation compares: for a succeeded payment
// the amount received, else the amount asked.
func fromStripe(pi *stripe.PaymentIntent) jobs.PaymentIntent {
	out := jobs.PaymentIntent{
		ID:       pi.ID,
		Status:   string(pi.Status),
		Amount:   credits.Money{Minor: pi.Amount, Currency: strings.ToUpper(string(pi.Currency))},
		Metadata: pi.Metadata,
		Created:  time.Unix(pi.Created, 0).UTC(),
	}
	if pi.Status == stripe.PaymentIntentStatusSucceeded && pi.AmountReceived > 0 {
		out.Amount.Minor = pi.AmountReceived
	}
	if pi.Customer != nil {
		out.Customer = pi.Customer.ID
	}
	if pi.Invoice != nil {
		out.Invoice = pi.Invoice.ID
	}
	return out
}
