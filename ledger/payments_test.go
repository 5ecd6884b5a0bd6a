package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func TestPayments_PurchaseRecordedOnceForOneOrg(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.org("acme", nil), f.org("beta", nil)
	paid := credits.Money{Minor: 12_50, Currency: "USD"}
	purchase := func(org string) (ledger.GrantResult, error) {
		var res ledger.GrantResult
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
			var err error
			res, err = f.l.CreditPurchase(f.ctx, tx, org, "pi_p1", paid)
			return err
		})
		return res, err
	}
	for range 3 {
		if _, err := purchase(a); err != nil {
			t.Fatal(err)
		}
	}
	// The same payment can never be credited to a second org.
	if _, err := purchase(b); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("crediting acme's payment to beta: %v, want ErrConflict", err)
	}
	f.wantAvailable(b, "0")
	f.wantAvailable(a, "12.5")

	p, err := f.l.GetPayment(f.ctx, f.pool, "pi_p1")
	if err != nil {
		t.Fatal(err)
	}
	if p.OrgID != a || p.Kind != ledger.PaymentPurchase || p.Credits != cr("12.5") || p.Paid != paid || p.LotID == 0 {
		t.Fatalf("payment %+v", p)
	}
	in, err := f.l.Payments(f.ctx, f.pool, a, p.PaidAt, p.PaidAt.Add(time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || in[0] != p {
		t.Fatalf("payments in [paid_at, +1µs) = %+v, want [%+v]", in, p)
	}
	out, err := f.l.Payments(f.ctx, f.pool, a, p.PaidAt.Add(time.Microsecond), p.PaidAt.Add(time.Hour))
	if err != nil || len(out) != 0 {
		t.Fatalf("payments after paid_at = %+v, %v; want none", out, err)
	}
	if _, err := f.l.GetPayment(f.ctx, f.pool, "pi_none"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown payment: %v, want ErrNotFound", err)
	}
	f.verify()
}
