package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

func TestRecordUsage_ConsumptionOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	late := t0.Add(60 * 24 * time.Hour)
	soon := t0.Add(30 * 24 * time.Hour)
	purchase := f.grant(org, "50", ledger.SourcePurchase, "p1", nil)
	promoLate := f.grant(org, "10", ledger.SourcePromo, "promo-late", &late)
	alloc := f.grant(org, "20", ledger.SourceAllocation, "alloc", &soon)

	f.use(org, "e1", "25") // 20 from the allocation (soonest), 5 from the late promo
	lots := map[int64]string{}
	for _, l := range f.balance(org).Lots {
		lots[l.ID] = l.Remaining.String()
	}
	want := map[int64]string{purchase.LotID: "50.000", promoLate.LotID: "5.000"}
	if len(lots) != len(want) {
		t.Fatalf("lots = %v, want %v", lots, want)
	}
	for id, w := range want {
		if lots[id] != w {
			t.Fatalf("lot %d remaining %s, want %s (alloc lot %d)", id, lots[id], w, alloc.LotID)
		}
	}
	f.use(org, "e2", "7.5") // 5 from the promo, then the never-expiring purchase
	f.wantAvailable(org, "47.500")
	f.verify()
}

func TestRecordUsage_Policies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		policy      ledger.Policy
		wantStatus  ledger.UsageStatus
		wantReason  string
		wantBalance string
		wantDebt    string
	}{
		{"debt records in full and goes negative", ledger.PolicyDebt, ledger.UsageApplied, "", "-5.000", "5.000"},
		{"reject debits nothing", ledger.PolicyReject, ledger.UsageRejected, ledger.ReasonInsufficientCredits, "10.000", "0.000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			org := f.org("acme", &orgOpts{policy: tt.policy})
			f.grant(org, "10", ledger.SourcePromo, "g1", nil)
			res := f.use(org, "e1", "15")
			if res.Status != tt.wantStatus || res.Reason != tt.wantReason {
				t.Fatalf("result = %+v", res)
			}
			b := f.balance(org)
			if b.Available != cr(tt.wantBalance) || b.Debt != cr(tt.wantDebt) {
				t.Fatalf("balance = %+v", b)
			}
			if b.Paused != (tt.policy == ledger.PolicyDebt) {
				t.Fatalf("paused = %v", b.Paused)
			}
			rec, err := f.l.UsageEventStatus(f.ctx, f.pool, org, "e1")
			if err != nil || rec.Status != tt.wantStatus {
				t.Fatalf("stored event = %+v, %v", rec, err)
			}
			f.verify()
		})
	}
}

func TestGrant_RepaysDebtFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.use(org, "e1", "3")
	res := f.grant(org, "10", ledger.SourcePurchase, "p1", nil)
	if res.Repaid != cr("3") || res.BalanceAfter != cr("7") {
		t.Fatalf("grant = %+v", res)
	}
	b := f.balance(org)
	if b.Debt != 0 || b.Available != cr("7") || len(b.Lots) != 1 || b.Lots[0].Remaining != cr("7") {
		t.Fatalf("balance = %+v", b)
	}
	kinds := []string{}
	for _, e := range f.history(org) {
		kinds = append(kinds, e.Kind)
	}
	if want := "usage grant debt_repayment"; joined(kinds) != want {
		t.Fatalf("history kinds = %q, want %q", joined(kinds), want)
	}
	f.verify()
}

func joined(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	end := t0.AddDate(0, 1, 0)
	f.grant(org, "100", ledger.SourceAllocation, "alloc:0", &end)
	f.grant(org, "5", ledger.SourcePurchase, "p1", nil)
	f.use(org, "e1", "30")

	f.clock.Set(end.Add(-time.Second))
	f.wantAvailable(org, "75.000")
	f.clock.Set(end)
	// Read before any sweep: expired credits no longer count.
	f.wantAvailable(org, "5.000")
	var exp ledger.Expired
	f.tx(func(tx pgx.Tx) (err error) { exp, err = f.l.ExpireDue(f.ctx, tx, org); return err })
	if exp.Credits != cr("70") || exp.Lots != 1 {
		t.Fatalf("expired = %+v", exp)
	}
	f.tx(func(tx pgx.Tx) (err error) { exp, err = f.l.ExpireDue(f.ctx, tx, org); return err })
	if exp.Credits != 0 || exp.Lots != 0 {
		t.Fatalf("second sweep expired again: %+v", exp)
	}
	h := f.history(org)
	last := h[len(h)-1]
	if last.Kind != "expiry" || last.Amount != cr("-70") || !last.At.Equal(end) {
		t.Fatalf("last entry = %+v", last)
	}
	f.wantAvailable(org, "5.000")
	f.verify()
}

func TestExpiry_LazyOnUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", &orgOpts{policy: ledger.PolicyReject})
	end := t0.AddDate(0, 1, 0)
	f.grant(org, "100", ledger.SourceAllocation, "alloc:0", &end)
	f.clock.Set(end.Add(time.Minute))
	// No sweep ran, yet usage cannot spend the expired credits.
	if res := f.use(org, "e1", "1"); res.Status != ledger.UsageRejected {
		t.Fatalf("usage spent expired credits: %+v", res)
	}
	f.verify()
}

func TestBalanceAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	end := t0.AddDate(0, 1, 0)
	times := []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(3 * time.Hour)}
	f.clock.Set(times[0])
	f.grant(org, "100", ledger.SourceAllocation, "a", &end)
	f.clock.Set(times[1])
	f.use(org, "e1", "40")
	f.clock.Set(times[2])
	f.grant(org, "10", ledger.SourcePurchase, "p", nil)
	f.clock.Set(end.Add(time.Hour))

	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"before anything", t0, "0.000"},
		{"after the grant", times[0], "100.000"},
		{"between grant and usage", times[1].Add(-time.Microsecond), "100.000"},
		{"after the usage", times[1], "60.000"},
		{"after the purchase", times[2], "70.000"},
		{"after expiry, before any sweep", end, "10.000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := f.l.BalanceAt(f.ctx, f.pool, org, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if b.Available != cr(tt.want) {
				t.Fatalf("available at %s = %s, want %s", tt.at, b.Available, tt.want)
			}
		})
	}
}

func TestHolds(t *testing.T) {
	t.Parallel()
	reserve := func(f *fixture, org, id, amount string, ttl time.Duration) (ledger.HoldResult, error) {
		var res ledger.HoldResult
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
			res, err = f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: id, Amount: cr(amount), TTL: ttl})
			return err
		})
		return res, err
	}
	capture := func(f *fixture, org, id, amount string) (ledger.HoldResult, error) {
		var res ledger.HoldResult
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
			res, err = f.l.Capture(f.ctx, tx, org, id, cr(amount), "")
			return err
		})
		return res, err
	}
	release := func(f *fixture, org, id string) (ledger.HoldResult, error) {
		var res ledger.HoldResult
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
			res, err = f.l.Release(f.ctx, tx, org, id)
			return err
		})
		return res, err
	}
	setup := func(t *testing.T, policy ledger.Policy) (*fixture, string) {
		f := newFixture(t)
		org := f.org("acme", &orgOpts{policy: policy})
		f.grant(org, "100", ledger.SourcePurchase, "p", nil)
		return f, org
	}

	t.Run("reserve past the balance fails", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyDebt)
		if _, err := reserve(f, org, "h1", "100.001", time.Minute); !errors.Is(err, ledger.ErrInsufficientCredits) {
			t.Fatalf("err = %v", err)
		}
		f.wantAvailable(org, "100.000")
		f.verify()
	})
	t.Run("holds count against the balance", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyReject)
		if _, err := reserve(f, org, "h1", "60", time.Minute); err != nil {
			t.Fatal(err)
		}
		f.wantAvailable(org, "40.000")
		if _, err := reserve(f, org, "h2", "41", time.Minute); !errors.Is(err, ledger.ErrInsufficientCredits) {
			t.Fatalf("second hold err = %v", err)
		}
		if res := f.use(org, "e1", "41"); res.Status != ledger.UsageRejected {
			t.Fatalf("usage spent held credits: %+v", res)
		}
		if b := f.balance(org); b.Held != cr("60") {
			t.Fatalf("held = %s", b.Held)
		}
		f.verify()
	})
	t.Run("capture less than held", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyReject)
		reserve(f, org, "h1", "30", time.Minute)
		res, err := capture(f, org, "h1", "12.5")
		if err != nil || res.Status != ledger.HoldCaptured || *res.Captured != cr("12.5") {
			t.Fatalf("capture = %+v, %v", res, err)
		}
		f.wantAvailable(org, "87.500")
		again, err := capture(f, org, "h1", "12.5")
		if err != nil || !again.Replayed || again.BalanceAfter != res.BalanceAfter {
			t.Fatalf("replayed capture = %+v, %v", again, err)
		}
		if _, err := capture(f, org, "h1", "13"); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("capture with another amount: err = %v", err)
		}
		if _, err := release(f, org, "h1"); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("release after capture: err = %v", err)
		}
		f.wantAvailable(org, "87.500")
		f.verify()
	})
	t.Run("capture more than held", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyReject)
		reserve(f, org, "h1", "30", time.Minute)
		if _, err := capture(f, org, "h1", "100.001"); !errors.Is(err, ledger.ErrInsufficientCredits) {
			t.Fatalf("capture past balance under reject: err = %v", err)
		}
		if _, err := capture(f, org, "h1", "45"); err != nil {
			t.Fatal(err)
		}
		f.wantAvailable(org, "55.000")
		f.verify()
	})
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyDebt)
		reserve(f, org, "h1", "30", time.Minute)
		res, err := release(f, org, "h1")
		if err != nil || res.Status != ledger.HoldReleased {
			t.Fatalf("release = %+v, %v", res, err)
		}
		if res, err = release(f, org, "h1"); err != nil || res.Status != ledger.HoldReleased {
			t.Fatalf("second release = %+v, %v", res, err)
		}
		f.wantAvailable(org, "100.000")
		if _, err := capture(f, org, "h1", "1"); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("capture after release: err = %v", err)
		}
		f.verify()
	})
	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyDebt)
		reserve(f, org, "h1", "30", time.Minute)
		f.clock.Advance(time.Minute)
		f.wantAvailable(org, "100.000") // read: expired holds no longer count
		var exp ledger.Expired
		f.tx(func(tx pgx.Tx) (err error) { exp, err = f.l.ExpireDue(f.ctx, tx, org); return err })
		if exp.Holds != 1 {
			t.Fatalf("expired = %+v", exp)
		}
		if _, err := capture(f, org, "h1", "1"); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("capture after expiry: err = %v", err)
		}
		f.wantAvailable(org, "100.000")
		f.verify()
	})
	t.Run("same hold id twice", func(t *testing.T) {
		t.Parallel()
		f, org := setup(t, ledger.PolicyDebt)
		first, _ := reserve(f, org, "h1", "30", time.Minute)
		again, err := reserve(f, org, "h1", "30", time.Minute)
		if err != nil || !again.Replayed || again.ExpiresAt != first.ExpiresAt {
			t.Fatalf("replayed reserve = %+v, %v", again, err)
		}
		if _, err := reserve(f, org, "h1", "31", time.Minute); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("other amount: err = %v", err)
		}
		f.wantAvailable(org, "70.000")
		f.verify()
	})
}

func TestRestore(t *testing.T) {
	t.Parallel()
	restore := func(f *fixture, org, event string) (ledger.RestoreResult, error) {
		var res ledger.RestoreResult
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
			res, err = f.l.Restore(f.ctx, tx, org, event)
			return err
		})
		return res, err
	}
	t.Run("inside 7 days keeps the original expiry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		org := f.org("acme", nil)
		end := t0.AddDate(0, 1, 0)
		f.grant(org, "10", ledger.SourceAllocation, "a", &end)
		f.grant(org, "10", ledger.SourcePurchase, "p", nil)
		f.use(org, "e1", "15")
		f.clock.Advance(7*24*time.Hour - time.Minute)
		res, err := restore(f, org, "e1")
		if err != nil || res.Restored != cr("15") {
			t.Fatalf("restore = %+v, %v", res, err)
		}
		b := f.balance(org)
		if b.Available != cr("20") {
			t.Fatalf("available = %s", b.Available)
		}
		var restoredExpiring, restoredForever bool
		for _, l := range b.Lots {
			if l.Source == ledger.SourceRestore && l.ExpiresAt != nil && l.ExpiresAt.Equal(end) && l.Remaining == cr("10") {
				restoredExpiring = true
			}
			if l.Source == ledger.SourceRestore && l.ExpiresAt == nil && l.Remaining == cr("5") {
				restoredForever = true
			}
		}
		if !restoredExpiring || !restoredForever {
			t.Fatalf("restored lots = %+v", b.Lots)
		}
		again, err := restore(f, org, "e1")
		if err != nil || !again.Replayed {
			t.Fatalf("second restore = %+v, %v", again, err)
		}
		f.wantAvailable(org, "20.000")
		f.verify()
	})
	t.Run("outside 7 days is refused", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		org := f.org("acme", nil)
		f.grant(org, "10", ledger.SourcePurchase, "p", nil)
		f.use(org, "e1", "4")
		f.clock.Advance(7*24*time.Hour + time.Second)
		if _, err := restore(f, org, "e1"); !errors.Is(err, ledger.ErrRestoreWindow) {
			t.Fatalf("err = %v", err)
		}
		f.wantAvailable(org, "6.000")
		f.verify()
	})
	t.Run("debt is forgiven", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		org := f.org("acme", nil)
		f.grant(org, "2", ledger.SourcePurchase, "p", nil)
		f.use(org, "e1", "5")
		if _, err := restore(f, org, "e1"); err != nil {
			t.Fatal(err)
		}
		b := f.balance(org)
		if b.Available != cr("2") || b.Debt != 0 {
			t.Fatalf("balance = %+v", b)
		}
		f.verify()
	})
	t.Run("unknown event", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		org := f.org("acme", nil)
		if _, err := restore(f, org, "nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLimitsAndCaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", &orgOpts{cap: crp("100")})
	f.grant(org, "1000", ledger.SourcePurchase, "p", nil)
	f.tx(func(tx pgx.Tx) error { return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "red", crp("10")) })
	f.tx(func(tx pgx.Tx) error { return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeUser, "ann", crp("4")) })

	steps := []struct {
		event, team, user, amount string
		wantReason                string
	}{
		{"e1", "red", "", "6", ""},
		{"e2", "red", "", "4", ""},
		{"e3", "red", "", "0.001", ledger.ReasonTeamLimit},
		{"e4", "blue", "ann", "4", ""},
		{"e5", "blue", "ann", "1", ledger.ReasonUserLimit},
		{"e6", "blue", "", "80", ""},
		{"e7", "blue", "", "6.001", ledger.ReasonMonthlyCap},
		{"e8", "blue", "", "6", ""},
	}
	for _, s := range steps {
		res, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: s.event, Team: s.team, User: s.user, Amount: crp(s.amount)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason != s.wantReason {
			t.Fatalf("%s: reason %q, want %q", s.event, res.Reason, s.wantReason)
		}
	}
	f.wantAvailable(org, "900.000")
	// The next cycle starts from zero.
	f.clock.Set(t0.AddDate(0, 1, 0))
	if res := f.use(org, "e9", "50"); res.Status != ledger.UsageApplied {
		t.Fatalf("next cycle: %+v", res)
	}
	f.verify()
}

func TestRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", &orgOpts{plan: "free"}) // 1,000 included runs, 1 credit per 100 after
	f.grant(org, "100", ledger.SourcePurchase, "p", nil)
	steps := []struct {
		runs        int64
		wantCost    string
		wantOverage int64
	}{
		{999, "0.000", 0},
		{2, "0.010", 1},
		{150, "1.500", 150},
		{49, "0.490", 49},
	}
	for i, s := range steps {
		res, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: string(rune('a' + i)), Runs: s.runs, Feature: "custom_query"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Cost != cr(s.wantCost) || res.OverageRuns != s.wantOverage {
			t.Fatalf("step %d: %+v", i, res)
		}
	}
	f.wantAvailable(org, "98.000")
	f.verify()
}

func TestFeaturePricing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "1000", ledger.SourcePurchase, "p", nil)
	res, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e1", Feature: "microservice", Units: 3})
	if err != nil || res.Cost != cr("6") {
		t.Fatalf("3 microservices = %+v, %v", res, err)
	}
	res, err = f.useE(ledger.UsageEvent{OrgID: org, EventID: "e2", Feature: "market_trend_report"})
	if err != nil || res.Cost != cr("50") {
		t.Fatalf("one report = %+v, %v", res, err)
	}
	f.verify()
}
