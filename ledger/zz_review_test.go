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

func (f *fixture) zzRestore(org, ev string) (ledger.RestoreResult, error) {
	var res ledger.RestoreResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.Restore(f.ctx, tx, org, ev)
		return err
	})
	return res, err
}

func (f *fixture) zzReserve(org, id, amount string, ttl time.Duration, team string) (ledger.HoldResult, error) {
	var res ledger.HoldResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: id, Amount: cr(amount), TTL: ttl, Team: team})
		return err
	})
	return res, err
}

func (f *fixture) zzCapture(org, id, amount string) (ledger.HoldResult, error) {
	var res ledger.HoldResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		res, err = f.l.Capture(f.ctx, tx, org, id, cr(amount), "")
		return err
	})
	return res, err
}

func (f *fixture) zzVerify() ledger.VerifyReport {
	rep, err := f.l.Verify(f.ctx, f.pool)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// A1: restoring an event whose lot has expired repays other debt with the expired credits.
func TestZZ_RestoreExpiredLotRepaysDebt(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	end := t0.Add(2 * time.Hour) // clock is t0+1h
	f.grant(org, "10", ledger.SourceAllocation, "a", &end)
	f.use(org, "e1", "10") // spends the expiring lot
	f.clock.Advance(2 * time.Hour)
	f.use(org, "e2", "20") // lot expired long ago; goes to debt 20
	b := f.balance(org)
	t.Logf("before restore: available=%s debt=%s", b.Available, b.Debt)
	res, err := f.zzRestore(org, "e1")
	if err != nil {
		t.Fatal(err)
	}
	b = f.balance(org)
	t.Logf("restore=%+v; after: available=%s debt=%s", res, b.Available, b.Debt)
	for _, e := range f.history(org) {
		t.Logf("  %s amount=%s lot_change=%s debt_change=%s at=%s", e.Kind, e.Amount, e.LotChange, e.DebtChange, e.At.Format(time.RFC3339))
	}
	if b.Debt != cr("20") {
		t.Errorf("BUG: credits whose expiry had passed repaid debt: debt %s, want 20", b.Debt)
	}
}

// A2: event's debt was repaid by a purchase; restoring the event gives nothing back.
func TestZZ_RestoreAfterDebtRepaid(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.use(org, "e1", "10") // debt 10
	f.grant(org, "10", ledger.SourcePurchase, "pay1", nil)
	f.wantAvailable(org, "0.000")
	res, err := f.zzRestore(org, "e1")
	if err != nil {
		t.Fatal(err)
	}
	b := f.balance(org)
	t.Logf("restore=%+v available=%s", res, b.Available)
	if b.Available != cr("10") {
		t.Errorf("BUG: restore of an event whose debt was paid restored %s, available %s (want 10)", res.Restored, b.Available)
	}
}

// B: an expired hold is not released by RecordUsage, so reject-policy usage is refused.
func TestZZ_ExpiredHoldBlocksRejectUsage(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", &orgOpts{policy: ledger.PolicyReject})
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	if _, err := f.zzReserve(org, "h1", "10", time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	t.Logf("Balance() says available=%s", f.balance(org).Available)
	res := f.use(org, "e1", "5")
	t.Logf("usage: %+v", res)
	if res.Status != ledger.UsageApplied {
		t.Errorf("BUG: usage rejected (%s) although the only hold expired", res.Reason)
	}
}

// C: a usage event id "capture:h1" makes hold h1 uncapturable.
func TestZZ_CaptureKeyCollision(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourcePurchase, "p", nil)
	if _, err := f.zzReserve(org, "h1", "10", time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	f.use(org, "capture:h1", "1")
	_, err := f.zzCapture(org, "h1", "5")
	t.Logf("capture err: %v", err)
	if err != nil {
		t.Errorf("BUG: capture refused because a usage event id collides: %v", err)
	}
}

// D: int64 overflow of the stored balance through grants.
func TestZZ_GrantOverflow(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	var errs []error
	for _, k := range []string{"a", "b"} {
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
			r, err := f.l.Grant(f.ctx, tx, ledger.Grant{OrgID: org, Amount: credits.Credits(9_000_000_000_000_000_000), Source: ledger.SourcePurchase, Key: k})
			t.Logf("grant %s: %+v", k, r)
			return err
		})
		errs = append(errs, err)
	}
	t.Logf("errs=%v", errs)
	var avail int64
	f.pool.QueryRow(f.ctx, `SELECT available FROM balances WHERE org_id=$1`, org).Scan(&avail)
	t.Logf("stored available=%d", avail)
	rep := f.zzVerify()
	t.Logf("verify ok=%v %+v", rep.OK, rep.Violations)
	if !rep.OK {
		t.Errorf("BUG: accepted input corrupted the ledger")
	}
}

// D2: monthly cap bypass by overflow.
func TestZZ_CapOverflow(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", &orgOpts{cap: crp("100")})
	big := credits.Credits(9_000_000_000_000_000_000)
	r1, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e1", Amount: crp("50")})
	t.Logf("e1 %+v %v", r1, err)
	r2, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e2", Amount: &big})
	t.Logf("e2 %+v %v", r2, err)
	r3, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e3", Amount: &big})
	t.Logf("e3 %+v %v", r3, err)
	rep := f.zzVerify()
	t.Logf("verify ok=%v %+v", rep.OK, rep.Violations)
}

// E: metadata that encoding/json accepts but jsonb refuses fails with an unclear error.
func TestZZ_MetadataNUL(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	for i, m := range []string{`{"a":"\u0000"}`, `{"a":"\ud800"}`} {
		ev := ledger.UsageEvent{OrgID: org, EventID: "e" + string(rune('0'+i)), Amount: crp("1"), Metadata: json.RawMessage(m)}
		if err := ev.Validate(); err != nil {
			t.Logf("validate refused %s: %v", m, err)
			continue
		}
		_, err := f.useE(ev)
		var ve *ledger.ValidationError
		t.Logf("metadata %s: err=%v validation=%v", m, err, errors.As(err, &ve))
		if err != nil && !errors.As(err, &ve) {
			t.Errorf("BUG: passes Validate, fails in the database")
		}
	}
}

// F: clock skew across a cycle boundary: counters of the cycle of s.at are not loaded.
func TestZZ_SkewCounters(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourcePurchase, "p", nil)
	f.tx(func(tx pgx.Tx) error {
		return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "t", crp("10"))
	})
	apr := t0.AddDate(0, 1, 0)
	f.clock.Set(apr.Add(10 * time.Second)) // worker A, clock right
	r1, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e1", Amount: crp("8"), Team: "t"})
	f.clock.Set(apr.Add(-10 * time.Second)) // worker B, 20 s behind
	r2, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e2", Amount: crp("8"), Team: "t"})
	t.Logf("e1 %+v\ne2 %+v", r1, r2)
	var c int64
	f.pool.QueryRow(f.ctx, `SELECT credits FROM cycle_usage WHERE org_id=$1 AND scope='team' AND subject='t'`, org).Scan(&c)
	t.Logf("team t counter in cycle = %d (limit 10000)", c)
	if r2.Status == ledger.UsageApplied {
		t.Errorf("BUG: team limit bypassed under clock skew")
	}
}

// G: holds bypass team limits.
func TestZZ_HoldBypassesTeamLimit(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "100", ledger.SourcePurchase, "p", nil)
	f.tx(func(tx pgx.Tx) error {
		return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "t", crp("10"))
	})
	_, err := f.zzReserve(org, "h1", "50", time.Hour, "t")
	t.Logf("reserve 50 for team t (limit 10): err=%v", err)
	hr, err := f.zzCapture(org, "h1", "50")
	t.Logf("capture: %+v %v", hr, err)
	r := f.useE
	res, _ := r(ledger.UsageEvent{OrgID: org, EventID: "e1", Amount: crp("1"), Team: "t"})
	t.Logf("later usage of t: %+v", res)
}

// H: reject-policy org ends in debt: hold's backing lot expires, then capture within the hold.
func TestZZ_RejectOrgDebtViaExpiredBacking(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", &orgOpts{policy: ledger.PolicyReject})
	end := t0.Add(90 * time.Minute)
	f.grant(org, "10", ledger.SourceAllocation, "a", &end)
	if _, err := f.zzReserve(org, "h1", "10", 2*time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour) // lot expired, hold still active
	hr, err := f.zzCapture(org, "h1", "10")
	t.Logf("capture %+v %v", hr, err)
	b := f.balance(org)
	t.Logf("reject-policy org: available=%s debt=%s", b.Available, b.Debt)
}

// I: capture of an expired-but-unswept hold.
func TestZZ_CaptureExpiredUnswept(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	f.zzReserve(org, "h1", "5", time.Minute, "")
	f.clock.Advance(2 * time.Minute)
	_, err := f.zzCapture(org, "h1", "5")
	t.Logf("capture of expired unswept hold: %v; usage recorded? balance %s", err, f.balance(org).Available)
}

// J: same event twice in one batch, and a TTL below a microsecond.
func TestZZ_BatchDupAndTinyTTL(t *testing.T) {
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	var res []ledger.UsageResult
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		ev := ledger.UsageEvent{OrgID: org, EventID: "d", Amount: crp("1")}
		res, err = f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{ev, ev})
		return err
	})
	t.Logf("dup in batch: %+v %v", res, err)
	f.wantAvailable(org, "9.000")
	hr, err := f.zzReserve(org, "tiny", "1", time.Nanosecond, "")
	t.Logf("ttl=1ns: %+v %v", hr, err)
	f.verify()
}
