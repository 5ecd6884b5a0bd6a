package ledger

import (
	"context"
	"math"
	"math/bits"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// PurchaseOrder is what a one-time purchase bought, as the host application
// named it on the payment (metadata "package" or "credits"): a catalog
// package, custom credits at the catalog's per-credit price, or neither
// (credits at the catalog's rate for whatever was paid).
type PurchaseOrder struct {
	Package string          `json:"package,omitempty"`
	Credits credits.Credits `json:"credits,omitempty"`
}

// PurchaseCredits decides the credits a payment of paid buys for order,
// and checks that paid is the price: a package's price exactly; for custom
// credits, credits × the per-credit price, rounded up to a whole minor unit;
// otherwise the catalog's rate, at least its minimum. It reads nothing but
// the catalog.
func (l *Ledger) PurchaseCredits(order PurchaseOrder, paid credits.Money) (credits.Credits, error) {
	p := l.catalog.Purchase
	switch {
	case order.Package != "" && order.Credits != 0:
		return 0, invalid("package", "give a package or credits, not both")
	case order.Package != "":
		pk, ok := l.catalog.Packages[order.Package]
		if !ok {
			return 0, invalid("package", "the catalog has no package %q", order.Package)
		}
		if paid != pk.PriceMoney {
			return 0, invalid("amount", "paid %s, but package %s costs %s", paid, order.Package, pk.PriceMoney)
		}
		return pk.Credits, nil
	case order.Credits != 0:
		if p.CustomCreditPriceMoney == nil {
			return 0, invalid("credits", "the catalog sells no credits at a custom per-credit price")
		}
		if err := validAmount("credits", int64(order.Credits)); err != nil {
			return 0, err
		}
		price := *p.CustomCreditPriceMoney
		want, ok := priceCredits(order.Credits, price.Minor)
		if !ok || paid.Currency != price.Currency || paid.Minor != want {
			return 0, invalid("amount", "paid %s, but %s credits at %s each cost %s", paid, order.Credits, price,
				credits.Money{Minor: want, Currency: price.Currency})
		}
		return order.Credits, nil
	}
	c, err := p.CreditsFor(paid)
	if err != nil {
		return 0, invalid("amount", "%v", err)
	}
	if c <= 0 {
		return 0, invalid("amount", "%s buys no credits", paid)
	}
	return c, nil
}

// priceCredits is c credits at unitMinor per credit, in minor units rounded
// up; ok is false when that does not fit in int64.
func priceCredits(c credits.Credits, unitMinor int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(c), uint64(unitMinor))
	const milli = 1000 // millicredits per credit
	if hi >= milli {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, milli)
	if r != 0 {
		q++
	}
	return int64(q), q <= math.MaxInt64
}

// CreditOrder credits a one-time purchase of order (see PurchaseCredits) as
// never-expiring credits in a lot keyed by the payment, and records what was
// paid: the payment is credited once, ever, whichever path (webhook event,
// reconciliation) sees it first. Two paths that decide other credits for one
// payment are ErrConflict, never a second credit.
func (l *Ledger) CreditOrder(ctx context.Context, tx pgx.Tx, orgID, paymentID string, paid credits.Money, order PurchaseOrder) (GrantResult, error) {
	if paymentID == "" {
		return GrantResult{}, invalid("payment_id", "required")
	}
	c, err := l.PurchaseCredits(order, paid)
	if err != nil {
		return GrantResult{}, err
	}
	res, err := l.Grant(ctx, tx, Grant{OrgID: orgID, Amount: c, Source: SourcePurchase, Key: "payment:" + paymentID, PaymentID: paymentID})
	if err != nil {
		return GrantResult{}, err
	}
	return res, l.recordPayment(ctx, tx, PaymentPurchase, paymentID, res, paid)
}
