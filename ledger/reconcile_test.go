package ledger_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/creditd/creditd/ledger"
)

// TestPaymentCustomers_PagesInOrgOrder: the reconciliation sweep reads every
// saved card once, page by page after the last org seen; a bad page size is
// refused naming the field.
func TestPaymentCustomers_PagesInOrgOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, org := range []string{"c", "a", "e", "b", "d"} {
		f.org(org, nil)
		if org != "d" { // an org without a card is not listed
			f.saveCard(org, "pm_"+org)
		}
	}
	var got []string
	after := ""
	for {
		page, err := f.l.PaymentCustomers(f.ctx, f.pool, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			if p.CustomerID != "cus_"+p.OrgID || p.PaymentMethodID != "pm_"+p.OrgID {
				t.Fatalf("card %+v", p)
			}
			got = append(got, p.OrgID)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].OrgID
	}
	if want := "a b c e"; strings.Join(got, " ") != want {
		t.Fatalf("orgs %q, want %q", strings.Join(got, " "), want)
	}
	for _, limit := range []int{0, ledger.MaxCustomersPage + 1} {
		_, err := f.l.PaymentCustomers(f.ctx, f.pool, "", limit)
		var v *ledger.ValidationError
		if !errors.As(err, &v) || v.Field != "limit" {
			t.Fatalf("limit %d: err %v, want a validation error naming limit", limit, err)
		}
	}
}
