package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// Lot sources.
const (
	SourceAllocation = "allocation"
	SourcePurchase   = "purchase"
	SourceRecharge   = "recharge"
	SourcePromo      = "promo"
	SourceRestore    = "restore"
	SourceAdjustment = "adjustment"
)

// Grant adds credits to an org in a new lot.
type Grant struct {
	OrgID     string          `json:"org_id"`
	Amount    credits.Credits `json:"amount"`
	Source    string          `json:"source"`
	Key       string          `json:"key"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	PaymentID string          `json:"payment_id,omitempty"`
	TaskID    string          `json:"-"`
}

// GrantResult is what a grant did. Repaid is the part that went to debt.
type GrantResult struct {
	OrgID        string          `json:"org"`
	LotID        int64           `json:"lot_id"`
	Amount       credits.Credits `json:"amount"`
	Repaid       credits.Credits `json:"repaid"`
	BalanceAfter credits.Credits `json:"balance_after"`
	Replayed     bool            `json:"replayed,omitempty"`
}

// Validate checks the grant without touching the database.
func (g Grant) Validate() error {
	if err := validOrgID(g.OrgID); err != nil {
		return err
	}
	if err := validAmount("amount", int64(g.Amount)); err != nil {
		return err
	}
	switch g.Source {
	case SourceAllocation, SourcePromo, SourceAdjustment:
	case SourcePurchase, SourceRecharge:
		if g.ExpiresAt != nil {
			return invalid("expires", "%s credits never expire", g.Source)
		}
	case "":
		return invalid("source", "required")
	default:
		return invalid("source", "must be allocation, purchase, recharge, promo or adjustment, not %q", g.Source)
	}
	if err := validKey("key", g.Key); err != nil {
		return err
	}
	return validLabel("payment_id", g.PaymentID)
}

func grantKey(key string) string { return "grant:" + key }

// Grant adds credits in a new lot; debt is repaid from it first. The key
// makes it happen once: a replay returns the first result, the same key with
// another amount, source or expiry is ErrConflict.
func (l *Ledger) Grant(ctx context.Context, tx pgx.Tx, g Grant) (GrantResult, error) {
	if err := g.Validate(); err != nil {
		return GrantResult{}, err
	}
	key := grantKey(g.Key)
	states, err := l.load(ctx, tx, []string{g.OrgID}, loadNeeds{keys: []string{key}})
	if err != nil {
		return GrantResult{}, err
	}
	s := states[g.OrgID]
	var expires *time.Time
	if g.ExpiresAt != nil {
		t := g.ExpiresAt.UTC().Truncate(time.Microsecond)
		expires = &t
	}
	hash := hashRequest(struct {
		Amount    credits.Credits
		Source    string
		ExpiresAt *time.Time
		PaymentID string
	}{g.Amount, g.Source, expires, g.PaymentID})
	var res GrantResult
	if found, err := s.replay(key, hash, &res); found {
		return replayed(ctx, l, tx, states, res, err)
	}
	if expires != nil && !expires.After(s.at) {
		return GrantResult{}, invalid("expires", "%s is not in the future", expires.Format(time.RFC3339))
	}
	lot, repaid := s.addLot("grant", g.Source, int64(g.Amount), expires, key,
		entryRow{paymentID: opt(g.PaymentID), taskID: opt(g.TaskID)})
	res = GrantResult{OrgID: g.OrgID, Amount: g.Amount, Repaid: credits.Credits(repaid), BalanceAfter: credits.Credits(s.available)}
	if err := assignLotIDs(ctx, tx, states, []string{g.OrgID}); err != nil {
		return GrantResult{}, err
	}
	res.LotID = lot.id
	s.remember(key, "grant", hash, res)
	if err := l.persist(ctx, tx, states); err != nil {
		return GrantResult{}, fmt.Errorf("grant: %w", err)
	}
	return res, nil
}
