package ledger_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func (f *fixture) restore(org, event string) (ledger.RestoreResult, error) {
	var res ledger.RestoreResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.Restore(f.ctx, tx, org, event)
		return err
	})
	return res, err
}

func TestRestore_DebtAlreadyRepaid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.use(org, "e1", "10")                              // all of it debt
	f.grant(org, "10", ledger.SourcePurchase, "p", nil) // repays the debt
	res, err := f.restore(org, "e1")
	if err != nil || res.Restored != cr("10") {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	f.wantAvailable(org, "10.000")
	f.verify()
}

func TestRestore_ExpiredCreditsDoNotComeBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	end := t0.Add(24 * time.Hour)
	f.grant(org, "10", ledger.SourceAllocation, "a", &end)
	f.use(org, "e1", "10")
	f.clock.Set(end.Add(time.Hour))
	f.use(org, "e2", "20") // debt 20
	res, err := f.restore(org, "e1")
	if err != nil || res.Restored != 0 {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	if b := f.balance(org); b.Debt != cr("20") || b.Available != cr("-20") {
		t.Fatalf("expired credits repaid debt: %+v", b)
	}
	f.verify()
}

func TestUsage_ReleasesElapsedHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", &orgOpts{policy: ledger.PolicyReject})
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: "h", Amount: cr("10"), TTL: time.Minute})
		return err
	})
	f.clock.Advance(2 * time.Minute)
	if res := f.use(org, "e1", "5"); res.Status != ledger.UsageApplied {
		t.Fatalf("usage blocked by an elapsed hold: %+v", res)
	}
	f.wantAvailable(org, "5.000")
	f.verify()
}

func TestCapturePrefixIsReserved(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	var v *ledger.ValidationError
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "capture:h1", Amount: crp("1")}); !errors.As(err, &v) || v.Field != "event_id" {
		t.Fatalf("err = %v, want event_id refused", err)
	}
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: "h1", Amount: cr("2"), TTL: time.Minute})
		return err
	})
	f.tx(func(tx pgx.Tx) error { _, err := f.l.Capture(f.ctx, tx, org, "h1", cr("2"), ""); return err })
	if _, err := f.restore(org, "capture:h1"); !errors.As(err, &v) || v.Field != "event_id" {
		t.Fatalf("restore of a capture: err = %v", err)
	}
	f.wantAvailable(org, "8.000")
	f.verify()
}

func TestAmounts_Bounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	huge := credits.Credits(ledger.MaxAmount + 1)
	var v *ledger.ValidationError
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: huge, Source: "promo", Key: "k"})
		return err
	})
	if !errors.As(err, &v) || v.Field != "amount" {
		t.Fatalf("grant over the maximum: err = %v", err)
	}
	f.verify()
}

func TestUsage_Metadata(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	var v *ledger.ValidationError
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "nul", Amount: crp("1"), Metadata: json.RawMessage(`{"a":"\u0000"}`)}); !errors.As(err, &v) || v.Field != "metadata" {
		t.Fatalf("NUL metadata: err = %v", err)
	}
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "surrogate", Amount: crp("1"), Metadata: json.RawMessage(`{"a":"\ud800"}`)}); err != nil {
		t.Fatalf("an unpaired surrogate is stored as U+FFFD, not refused by the database: %v", err)
	}
	f.wantAvailable(org, "9.000")
	f.verify()
}

// TestLimits_ClockSkew: a worker whose clock is behind still sees the
// counters of the cycle another worker's clock has moved the org into.
func TestLimits_ClockSkew(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourcePurchase, "p", nil)
	f.tx(func(tx pgx.Tx) error { return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "t", crp("10")) })
	next := t0.AddDate(0, 1, 0)
	f.clock.Set(next.Add(10 * time.Second))
	if res, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "a", Team: "t", Amount: crp("8")}); res.Status != ledger.UsageApplied {
		t.Fatalf("first: %+v", res)
	}
	f.clock.Set(next.Add(-10 * time.Second)) // the other worker, 20 s behind
	if res, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "b", Team: "t", Amount: crp("8")}); res.Reason != ledger.ReasonTeamLimit {
		t.Fatalf("a skewed clock bypassed the team limit: %+v", res)
	}
	f.verify()
}
