package stripefake_test

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/creditd/creditd/jobs/payments/stripefake"
)

func TestListPaymentIntents(t *testing.T) {
	t.Parallel()
	s := stripefake.New(t)
	api := newAPI(t, s)
	base := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(base.Unix())
	s.SetClock(func() time.Time { return time.Unix(now.Load(), 0) })

	cus, pm := s.NewCustomerWithCard(t, "tok_visa")
	other, otherPM := s.NewCustomerWithCard(t, "tok_visa")
	// p[3] is created in the same second as p[2]: creation order breaks the tie.
	offsets := []int64{0, 10, 20, 20, 30}
	p := make([]string, len(offsets))
	for i, off := range offsets {
		now.Store(base.Unix() + off)
		pi, err := api.PaymentIntents.New(recharge(cus, pm, 1000+int64(i), ""))
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		p[i] = pi.ID
		if _, err := api.PaymentIntents.New(recharge(other, otherPM, 5000, "")); err != nil {
			t.Fatalf("create other %d: %v", i, err)
		}
	}

	// list pages through a listing and returns the IDs and the last page's
	// has_more.
	list := func(t *testing.T, lp *stripe.PaymentIntentListParams) ([]string, bool) {
		t.Helper()
		lp.Customer = stripe.String(cus)
		it := api.PaymentIntents.List(lp)
		var ids []string
		for it.Next() {
			ids = append(ids, it.PaymentIntent().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("list: %v", err)
		}
		return ids, it.Meta().HasMore
	}
	page := func(limit int64) stripe.ListParams {
		return stripe.ListParams{Limit: stripe.Int64(limit), Single: true}
	}
	tests := []struct {
		name        string
		params      func() *stripe.PaymentIntentListParams
		want        []string
		wantHasMore bool
	}{
		{
			name:        "first page, newest first",
			params:      func() *stripe.PaymentIntentListParams { return &stripe.PaymentIntentListParams{ListParams: page(2)} },
			want:        []string{p[4], p[3]},
			wantHasMore: true,
		},
		{
			name: "every page",
			params: func() *stripe.PaymentIntentListParams {
				return &stripe.PaymentIntentListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(2)}}
			},
			want: []string{p[4], p[3], p[2], p[1], p[0]},
		},
		{
			name: "created since",
			params: func() *stripe.PaymentIntentListParams {
				return &stripe.PaymentIntentListParams{
					ListParams:   page(10),
					CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: base.Unix() + 20},
				}
			},
			want: []string{p[4], p[3], p[2]},
		},
		{
			name: "starting_after",
			params: func() *stripe.PaymentIntentListParams {
				lp := &stripe.PaymentIntentListParams{ListParams: page(2)}
				lp.StartingAfter = stripe.String(p[3])
				return lp
			},
			want:        []string{p[2], p[1]},
			wantHasMore: true,
		},
		{
			// The page arrives newest first, [p3 p2], as Stripe sends it;
			// stripe-go's iterator walks backwards and reverses it.
			name: "ending_before",
			params: func() *stripe.PaymentIntentListParams {
				lp := &stripe.PaymentIntentListParams{ListParams: page(2)}
				lp.EndingBefore = stripe.String(p[1])
				return lp
			},
			want:        []string{p[2], p[3]},
			wantHasMore: true,
		},
		{
			name: "ending_before, every page",
			params: func() *stripe.PaymentIntentListParams {
				lp := &stripe.PaymentIntentListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(2)}}
				lp.EndingBefore = stripe.String(p[0])
				return lp
			},
			want: []string{p[1], p[2], p[3], p[4]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, hasMore := list(t, tt.params())
			if !slices.Equal(got, tt.want) || hasMore != tt.wantHasMore {
				t.Errorf("got %v has_more %v, want %v has_more %v", got, hasMore, tt.want, tt.wantHasMore)
			}
		})
	}

	t.Run("expand data.latest_charge", func(t *testing.T) {
		t.Parallel()
		lp := &stripe.PaymentIntentListParams{ListParams: page(1), Customer: stripe.String(cus)}
		lp.AddExpand("data.latest_charge")
		it := api.PaymentIntents.List(lp)
		if !it.Next() {
			t.Fatalf("empty list: %v", it.Err())
		}
		if ch := it.PaymentIntent().LatestCharge; ch == nil || ch.Amount != 1004 || ch.Status != stripe.ChargeStatusSucceeded {
			t.Errorf("expanded latest_charge = %+v, want the succeeded 1004 charge", ch)
		}
	})

	t.Run("unknown cursor", func(t *testing.T) {
		t.Parallel()
		lp := &stripe.PaymentIntentListParams{ListParams: page(2)}
		lp.StartingAfter = stripe.String("pi_missing")
		it := api.PaymentIntents.List(lp)
		for it.Next() {
			t.Errorf("got %s from a listing after an unknown cursor", it.PaymentIntent().ID)
		}
		if se := asStripeError(t, it.Err()); se.HTTPStatusCode != http.StatusBadRequest || se.Code != stripe.ErrorCodeResourceMissing {
			t.Errorf("error = %d %s, want 400 resource_missing", se.HTTPStatusCode, se.Code)
		}
	})
}
