package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MaxCustomersPage bounds one page of PaymentCustomers.
const MaxCustomersPage = 1000

const selectPaymentCustomersSQL = `
SELECT org_id, customer_id, payment_method_id, coalesce(brand, ''), coalesce(last4, ''), updated_at
FROM payment_methods WHERE org_id > $1 ORDER BY org_id LIMIT $2`

// PaymentCustomers lists the orgs' saved cards (so their Stripe customers)
// in org order, after the org id after ("" for the first page), at most
// limit: the reconciliation sweep pages through them without holding them
// all.
func (l *Ledger) PaymentCustomers(ctx context.Context, db DBTX, after string, limit int) ([]PaymentMethod, error) {
	if limit < 1 || limit > MaxCustomersPage {
		return nil, invalid("limit", "must be between 1 and %d", MaxCustomersPage)
	}
	rows, err := db.Query(ctx, selectPaymentCustomersSQL, after, limit)
	if err != nil {
		return nil, mapError(fmt.Errorf("payment customers: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PaymentMethod, error) {
		var p PaymentMethod
		err := row.Scan(&p.OrgID, &p.CustomerID, &p.PaymentMethodID, &p.Brand, &p.Last4, &p.UpdatedAt)
		p.UpdatedAt = p.UpdatedAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("payment customers: %w", err))
	}
	return out, nil
}
