package ledger_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func TestPurchaseCredits_PackagesCustomPriceAndRate(t *testing.T) {
	t.Parallel()
	l := ledger.New(config.DefaultCatalog(), nil)
	noCustom := config.DefaultCatalog()
	noCustom.Purchase.CustomCreditPrice, noCustom.Purchase.CustomCreditPriceMoney = "", nil
	tests := []struct {
		name  string
		l     *ledger.Ledger
		order ledger.PurchaseOrder
		paid  credits.Money
		want  string // credits, or "" when refused
		field string
	}{
		{"package", l, ledger.PurchaseOrder{Package: "starter"}, usd(10_00), "1000", ""},
		{"package pro", l, ledger.PurchaseOrder{Package: "pro"}, usd(45_00), "5000", ""},
		{"package underpaid", l, ledger.PurchaseOrder{Package: "pro"}, usd(44_99), "", "amount"},
		{"package in another currency", l, ledger.PurchaseOrder{Package: "starter"}, credits.Money{Minor: 10_00, Currency: "EUR"}, "", "amount"},
		{"unknown package", l, ledger.PurchaseOrder{Package: "mega"}, usd(10_00), "", "package"},
		{"custom credits", l, ledger.PurchaseOrder{Credits: cr("3")}, usd(150_00), "3", ""},
		{"custom thousandth", l, ledger.PurchaseOrder{Credits: cr("0.001")}, usd(5), "0.001", ""},
		{"custom overpaid", l, ledger.PurchaseOrder{Credits: cr("3")}, usd(150_01), "", "amount"},
		{"custom not sold", ledger.New(noCustom, nil), ledger.PurchaseOrder{Credits: cr("3")}, usd(150_00), "", "credits"},
		{"negative credits", l, ledger.PurchaseOrder{Credits: cr("-3")}, usd(150_00), "", "credits"},
		{"both", l, ledger.PurchaseOrder{Package: "starter", Credits: cr("3")}, usd(10_00), "", "package"},
		{"rate", l, ledger.PurchaseOrder{}, usd(12_34), "12.34", ""},
		{"below the minimum", l, ledger.PurchaseOrder{}, usd(4_99), "", "amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.l.PurchaseCredits(tc.order, tc.paid)
			if tc.want != "" {
				if err != nil || got != cr(tc.want) {
					t.Fatalf("got %s, %v; want %s", got, err, tc.want)
				}
				return
			}
			var v *ledger.ValidationError
			if !errors.As(err, &v) || v.Field != tc.field {
				t.Fatalf("got %s, %v; want refused naming %s", got, err, tc.field)
			}
		})
	}
}

func TestCreditOrder_OncePerPaymentWhicheverPathDecides(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	for range 3 {
		f.buy(org, "pi_pkg", usd(10_00), ledger.PurchaseOrder{Package: "starter"})
	}
	f.wantAvailable(org, "1000")
	// A path that decided other credits for the same payment is a conflict,
	// not a second credit.
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.CreditOrder(f.ctx, tx, org, "pi_pkg", usd(10_00), ledger.PurchaseOrder{})
		return err
	})
	if !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("the same payment at the catalog rate: %v, want ErrConflict", err)
	}
	p, err := f.l.GetPayment(f.ctx, f.pool, "pi_pkg")
	if err != nil || p.Credits != cr("1000") || p.Paid != usd(10_00) {
		t.Fatalf("payment %+v, %v", p, err)
	}
	f.wantAvailable(org, "1000")
	f.verify()
}
