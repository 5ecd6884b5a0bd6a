package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// jan1 is the anchor of the cycle tests' orgs: the 1st at midnight UTC.
var jan1 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// month returns the start of month m of 2026 (0 = January), in UTC.
func month(m int) time.Time { return jan1.AddDate(0, m, 0) }

func (f *fixture) newOrg(req ledger.NewOrg) string {
	f.t.Helper()
	if req.Anchor == nil {
		req.Anchor = &jan1
	}
	f.tx(func(tx pgx.Tx) error { _, err := f.l.CreateOrg(f.ctx, tx, req); return err })
	return req.ID
}

// advance runs AdvanceCycles for the orgs at now in a committed transaction.
func (f *fixture) advance(now time.Time, orgs ...string) []ledger.CycleReport {
	f.t.Helper()
	var reps []ledger.CycleReport
	f.tx(func(tx pgx.Tx) (err error) {
		reps, err = f.l.AdvanceCycles(f.ctx, tx, orgs, now)
		return err
	})
	for _, r := range reps {
		if r.Error != "" {
			f.t.Fatalf("org %s: %s", r.OrgID, r.Error)
		}
	}
	return reps
}

func (f *fixture) changePlan(c ledger.PlanChange) ledger.PlanChangeResult {
	f.t.Helper()
	var res ledger.PlanChangeResult
	f.tx(func(tx pgx.Tx) (err error) {
		res, err = f.l.ChangePlan(f.ctx, tx, c)
		return err
	})
	return res
}

// summary prints an entry as "kind amount", amounts in whole credits where
// they are whole, and " carried N" on rollover entries.
func summary(e ledger.Entry) string {
	s := e.Kind + " " + short(e.Amount)
	if e.Carried != nil {
		s += " carried " + short(*e.Carried)
	}
	return s
}

func short(c credits.Credits) string {
	s := c.String()
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// historySince returns the org's entries after entry id after, summarized,
// and the last id.
func (f *fixture) historySince(org string, after int64) ([]string, int64) {
	f.t.Helper()
	h, err := f.l.History(f.ctx, f.pool, org, after, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	out := []string{}
	for _, e := range h {
		out = append(out, summary(e))
		after = e.ID
	}
	return out, after
}

func (f *fixture) entryCount() int {
	f.t.Helper()
	return f.count(`SELECT count(*) FROM entries`)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCycles_SimulatedYear runs 2026 month by month with a settable clock:
// an org on every catalog plan (enterprise with per-org terms and a rollover
// cap), scripted usage each month, and after each month the balance and the
// month's entries (kinds, amounts, carried amounts) as computed by hand.
func TestCycles_SimulatedYear(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(jan1)
	type step struct {
		use      []string // amounts, one usage event each, in order
		runs     int64    // a runs event after them
		purchase string   // credits bought (never expire) before the usage
		toPlan   string   // a plan change after the usage
		want     []string // the month's entries
		balance  string
	}
	same := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	steps := func(s ...step) []step { return s }
	thousand, three, one := cr("1000"), cr("300"), 1
	runs := int64(500)
	tests := []struct {
		org    ledger.NewOrg
		months []step
	}{
		// free: 100 a month, expiring at the cycle end; 1,000 runs included.
		{ledger.NewOrg{ID: "free", Plan: "free"}, append(steps(
			step{use: []string{"30"}, want: []string{"grant 100", "usage -30"}, balance: "70"},
			step{use: []string{"30"}, want: []string{"expiry -70", "grant 100", "usage -30"}, balance: "70"},
			step{use: []string{"100"}, want: []string{"expiry -70", "grant 100", "usage -100"}, balance: "0"},
			// 1,500 runs: 500 past the 1,000 included cost 5 credits.
			step{runs: 1500, want: []string{"grant 100", "usage -5"}, balance: "95"},
			step{want: []string{"expiry -95", "grant 100"}, balance: "100"},
		), same(7, step{want: []string{"expiry -100", "grant 100"}, balance: "100"})...)},

		// membership: 20 a month; the org overspends under the debt policy,
		// and the next allocations repay the debt first.
		{ledger.NewOrg{ID: "member", Plan: "membership"}, append(steps(
			step{use: []string{"25"}, want: []string{"grant 20", "usage -20", "usage -5"}, balance: "-5"},
			step{want: []string{"grant 20", "debt_repayment 0"}, balance: "15"},
			step{use: []string{"50"}, want: []string{"expiry -15", "grant 20", "usage -20", "usage -30"}, balance: "-30"},
			step{want: []string{"grant 20", "debt_repayment 0"}, balance: "-10"},
			step{want: []string{"grant 20", "debt_repayment 0"}, balance: "10"},
			step{want: []string{"expiry -10", "grant 20"}, balance: "20"},
		), same(6, step{want: []string{"expiry -20", "grant 20"}, balance: "20"})...)},

		// standard: 1,000 a month; purchased credits never expire and are
		// spent after plan credits; in June it changes to professional, which
		// takes effect at the next cycle (July).
		{ledger.NewOrg{ID: "std", Plan: "standard"}, []step{
			{use: []string{"1000"}, want: []string{"grant 1000", "usage -1000"}, balance: "0"},
			{use: []string{"400"}, want: []string{"grant 1000", "usage -400"}, balance: "600"},
			{use: []string{"400"}, want: []string{"expiry -600", "grant 1000", "usage -400"}, balance: "600"},
			{purchase: "500", use: []string{"1200"},
				want: []string{"expiry -600", "grant 1000", "grant 500", "usage -1000", "usage -200"}, balance: "300"},
			{want: []string{"grant 1000"}, balance: "1300"},
			{toPlan: "professional", want: []string{"expiry -1000", "grant 1000"}, balance: "1300"},
			// July: June's standard credits expire; professional from now on.
			{want: []string{"expiry -1000", "grant 5000"}, balance: "5300"},
			{want: []string{"rollover 0 carried 5000", "grant 5000"}, balance: "10300"},
			{use: []string{"15300"}, want: []string{"rollover 0 carried 10000", "grant 5000",
				"usage -5000", "usage -5000", "usage -5000", "usage -300"}, balance: "0"},
			{want: []string{"grant 5000"}, balance: "5000"},
			{want: []string{"rollover 0 carried 5000", "grant 5000"}, balance: "10000"},
			{want: []string{"rollover 0 carried 10000", "grant 5000"}, balance: "15000"},
		}},

		// professional: 5,000 a month rolled over 3 cycles: January's credits
		// expire at the end of April (cycle 0+3), June's at the end of
		// September, July's at the end of October.
		{ledger.NewOrg{ID: "pro", Plan: "professional"}, []step{
			{use: []string{"1000"}, want: []string{"grant 5000", "usage -1000"}, balance: "4000"},
			{use: []string{"2000"}, want: []string{"rollover 0 carried 4000", "grant 5000", "usage -2000"}, balance: "7000"},
			{want: []string{"rollover 0 carried 7000", "grant 5000"}, balance: "12000"},
			{use: []string{"1000"}, want: []string{"rollover 0 carried 12000", "grant 5000", "usage -1000"}, balance: "16000"},
			{use: []string{"20000"}, want: []string{"expiry -1000", "rollover 0 carried 15000", "grant 5000",
				"usage -5000", "usage -5000", "usage -5000", "usage -5000"}, balance: "0"},
			{want: []string{"grant 5000"}, balance: "5000"},
			{use: []string{"6000"}, want: []string{"rollover 0 carried 5000", "grant 5000", "usage -5000", "usage -1000"},
				balance: "4000"},
			{want: []string{"rollover 0 carried 4000", "grant 5000"}, balance: "9000"},
			{want: []string{"rollover 0 carried 9000", "grant 5000"}, balance: "14000"},
			{want: []string{"rollover 0 carried 14000", "grant 5000"}, balance: "19000"},
			{want: []string{"expiry -4000", "rollover 0 carried 15000", "grant 5000"}, balance: "20000"},
			{want: []string{"expiry -5000", "rollover 0 carried 15000", "grant 5000"}, balance: "20000"},
		}},

		// enterprise with per-org terms: 1,000 a month, rolled over 1 cycle,
		// at most 300 carried; 500 runs included.
		{ledger.NewOrg{ID: "ent", Plan: "enterprise", Overrides: ledger.Overrides{
			MonthlyCredits: &thousand, RolloverMonths: &one, RolloverCap: &three, IncludedRuns: &runs}},
			append([]step{
				// 600 runs: 100 past the 500 included cost 1 credit.
				{use: []string{"200"}, runs: 600, want: []string{"grant 1000", "usage -200", "usage -1"}, balance: "799"},
				// 799 open, cap 300: 499 expire at the boundary.
				{use: []string{"1500"}, want: []string{"expiry -499", "rollover 0 carried 300", "grant 1000",
					"usage -300", "usage -1000", "usage -200"}, balance: "-200"},
				{want: []string{"grant 1000", "debt_repayment 0"}, balance: "800"},
				{use: []string{"100"}, want: []string{"expiry -500", "rollover 0 carried 300", "grant 1000", "usage -100"},
					balance: "1200"},
				// The 200 left of March's credits expire at the end of April;
				// 700 of April's exceed the cap.
				{want: []string{"expiry -200", "expiry -700", "rollover 0 carried 300", "grant 1000"}, balance: "1300"},
			}, same(7, step{want: []string{"expiry -300", "expiry -700", "rollover 0 carried 300", "grant 1000"},
				balance: "1300"})...)},
	}
	var orgs []string
	last := map[string]int64{}
	for _, tt := range tests {
		if len(tt.months) != 12 {
			t.Fatalf("%s: %d months scripted", tt.org.ID, len(tt.months))
		}
		orgs = append(orgs, f.newOrg(tt.org))
	}
	for m := range 12 {
		f.clock.Set(month(m).Add(time.Hour))
		reps := f.advance(f.clock.Now(), orgs...)
		for _, r := range reps {
			if len(r.Cycles) != 1 || !r.Cycles[0].Start.Equal(month(m)) || !r.NextCycleAt.Equal(month(m+1)) {
				t.Fatalf("month %d, %s: %+v", m, r.OrgID, r)
			}
		}
		f.clock.Set(month(m).Add(2 * time.Hour))
		for _, tt := range tests {
			org, s := tt.org.ID, tt.months[m]
			if s.purchase != "" {
				f.grant(org, s.purchase, ledger.SourcePurchase, fmt.Sprintf("buy-%d", m), nil)
			}
			for i, a := range s.use {
				f.use(org, fmt.Sprintf("m%d-%d", m, i), a)
			}
			if s.runs > 0 {
				if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("m%d-runs", m), Runs: s.runs}); err != nil {
					t.Fatal(err)
				}
			}
			if s.toPlan != "" {
				res := f.changePlan(ledger.PlanChange{OrgID: org, Plan: s.toPlan})
				if !res.EffectiveAt.Equal(month(m+1)) || res.Org.Plan != tt.org.Plan || res.Org.Pending == nil {
					t.Fatalf("month %d: plan change %+v", m, res)
				}
			}
			got, id := f.historySince(org, last[org])
			last[org] = id
			if !equalStrings(got, s.want) {
				t.Fatalf("month %d (%s), %s entries:\n got %q\nwant %q", m, month(m).Format("Jan"), org, got, s.want)
			}
			if b := f.balance(org).Available; b != cr(s.balance) {
				t.Fatalf("month %d (%s), %s: balance %s, want %s", m, month(m).Format("Jan"), org, b, s.balance)
			}
		}
	}
	f.verify()

	// Where the expiries were dated: January's professional credits at the
	// end of April, the enterprise cap excess at the boundary.
	h := f.history("pro")
	for _, e := range h {
		if e.Kind == "expiry" && e.Amount == cr("-1000") && !e.At.Equal(month(4)) {
			t.Fatalf("January's professional credits expired at %s, want %s", e.At, month(4))
		}
	}
	if g := h[0]; g.Key != "allocation:2026-01-01T00:00:00Z" || g.Kind != "grant" {
		t.Fatalf("first professional entry: %+v", g)
	}
	for _, e := range f.history("ent") {
		if e.Kind == "rollover" && (e.Key != "rollover:"+e.At.Format(time.RFC3339) || e.At.Day() != 1 || e.At.Hour() != 0) {
			t.Fatalf("rollover entry not at its boundary: %+v", e)
		}
	}

	// A second run at the same instant does nothing.
	before := f.entryCount()
	for _, r := range f.advance(f.clock.Now(), orgs...) {
		if len(r.Cycles) != 0 || r.Expired != 0 {
			t.Fatalf("second run: %+v", r)
		}
	}
	if n := f.entryCount(); n != before {
		t.Fatalf("second run wrote %d entries", n-before)
	}
}

// TestCycles_CatchUp: after three months without a sweep, one run grants
// every missed cycle once, in order, each with its own expiry (credits of a
// cycle that already ended are granted and expired at once, both in history).
func TestCycles_CatchUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(jan1)
	std := f.newOrg(ledger.NewOrg{ID: "std", Plan: "standard"})
	pro := f.newOrg(ledger.NewOrg{ID: "pro", Plan: "professional"})
	// A promo granted on 10 January, expiring on 15 February.
	f.clock.Set(month(0).AddDate(0, 0, 9))
	promoEnd := month(1).AddDate(0, 0, 14)
	f.grant(pro, "7", ledger.SourcePromo, "promo", &promoEnd)
	// No sweep until 4 April.
	now := month(3).AddDate(0, 0, 3)
	f.clock.Set(now)
	reps := f.advance(now, std, pro)
	for _, r := range reps {
		if len(r.Cycles) != 4 || !r.NextCycleAt.Equal(month(4)) {
			t.Fatalf("%s: %+v", r.OrgID, r)
		}
		for k, c := range r.Cycles {
			if !c.Start.Equal(month(k)) || !c.End.Equal(month(k+1)) {
				t.Fatalf("%s cycle %d: %+v", r.OrgID, k, c)
			}
		}
	}
	got, _ := f.historySince(std, 0)
	want := []string{"grant 1000", "expiry -1000", "grant 1000", "expiry -1000", "grant 1000", "expiry -1000", "grant 1000"}
	if !equalStrings(got, want) {
		t.Fatalf("standard history %q, want %q", got, want)
	}
	wantAt := []time.Time{month(0), month(1), month(1), month(2), month(2), month(3), month(3)}
	for i, e := range f.history(std) {
		if !e.At.Equal(wantAt[i]) {
			t.Fatalf("entry %d (%s) at %s, want %s", i, summary(e), e.At, wantAt[i])
		}
	}
	f.wantAvailable(std, "1000")
	got, _ = f.historySince(pro, 0)
	want = []string{"grant 7", "grant 5000", "rollover 0 carried 5000", "grant 5000", "expiry -7",
		"rollover 0 carried 10000", "grant 5000", "rollover 0 carried 15000", "grant 5000"}
	if !equalStrings(got, want) {
		t.Fatalf("professional history %q, want %q", got, want)
	}
	f.wantAvailable(pro, "20000")
	// Running it again, or a month later, grants nothing twice.
	if r := f.advance(now, std, pro); len(r[0].Cycles)+len(r[1].Cycles) != 0 {
		t.Fatalf("second run: %+v", r)
	}
	f.verify()
}

// TestCycles_Concurrent: many goroutines advancing the same orgs at once,
// month after month, grant each cycle exactly once.
func TestCycles_Concurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(jan1)
	var orgs []string
	for i := range 12 {
		plan := []string{"free", "standard", "professional"}[i%3]
		orgs = append(orgs, f.newOrg(ledger.NewOrg{ID: fmt.Sprintf("org-%02d", i), Plan: plan}))
	}
	const workers = 16
	for m := range 3 {
		now := month(m).Add(time.Minute)
		f.clock.Set(now)
		var wg sync.WaitGroup
		var mu sync.Mutex
		performed := 0
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each worker takes the orgs in its own order; the ledger locks
				// them in id order.
				mine := append(append([]string{}, orgs[w%len(orgs):]...), orgs[:w%len(orgs)]...)
				err := ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) error {
					reps, err := f.l.AdvanceCycles(f.ctx, tx, mine, now)
					if err != nil {
						return err
					}
					n := 0
					for _, r := range reps {
						n += len(r.Cycles)
					}
					mu.Lock()
					performed += n
					mu.Unlock()
					return nil
				})
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if performed != len(orgs) {
			t.Fatalf("month %d: %d boundaries performed for %d orgs", m, performed, len(orgs))
		}
	}
	var lots, orgsDone int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*), count(DISTINCT org_id) FROM lots WHERE source = 'allocation'`).
		Scan(&lots, &orgsDone); err != nil {
		t.Fatal(err)
	}
	if lots != 3*len(orgs) || orgsDone != len(orgs) {
		t.Fatalf("%d allocation lots over %d orgs, want %d over %d", lots, orgsDone, 3*len(orgs), len(orgs))
	}
	f.verify()
}

// TestPreviewCycles_ChangesNothing: the dry run reports what a real run then
// does, and leaves every table as it was.
func TestPreviewCycles_ChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(month(1).Add(time.Hour))
	orgs := []string{
		f.newOrg(ledger.NewOrg{ID: "a", Plan: "standard"}),
		f.newOrg(ledger.NewOrg{ID: "b", Plan: "professional"}),
	}
	f.advance(f.clock.Now(), orgs...)
	f.use("a", "e1", "10")
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: "b", HoldID: "h1", Amount: cr("5"), TTL: time.Hour})
		return err
	})
	counts := func() string {
		var s string
		err := f.pool.QueryRow(f.ctx, `SELECT concat_ws(' ',
			(SELECT count(*) FROM entries), (SELECT count(*) FROM lots), (SELECT sum(remaining) FROM lots),
			(SELECT count(*) FROM holds WHERE status = 'active'), (SELECT string_agg(available || '/' || held, ',' ORDER BY org_id) FROM balances),
			(SELECT string_agg(next_cycle_at::text || '/' || cycles_done, ',' ORDER BY org_id) FROM balances),
			(SELECT string_agg(plan || coalesce(pending::text, ''), ',' ORDER BY org_id) FROM orgs))`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := counts()
	// Three months ahead of the clock: previews may look into the future.
	at := month(4).Add(time.Hour)
	preview, err := f.l.PreviewCycles(f.ctx, f.pool, orgs, at)
	if err != nil {
		t.Fatal(err)
	}
	if after := counts(); after != before {
		t.Fatalf("preview changed the database:\n%s\n%s", before, after)
	}
	if len(preview) != 2 || len(preview[0].Cycles) != 3 || preview[1].HoldsReleased != 1 ||
		preview[1].Cycles[2].Carried != cr("15000") || preview[0].Expired != cr("2990") {
		t.Fatalf("preview: %+v", preview)
	}
	// The real run at that instant does what the preview said.
	f.clock.Set(at)
	real := f.advance(at, orgs...)
	if a, b := mustJSON(t, real), mustJSON(t, preview); a != b {
		t.Fatalf("real run\n%s\npreview\n%s", a, b)
	}
	// A future instant is refused for a real run.
	err = ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.AdvanceCycles(f.ctx, tx, orgs, at.Add(ledger.MaxClockSkew+time.Second))
		return err
	})
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "at" {
		t.Fatalf("future run: %v", err)
	}
	f.verify()
}

// TestChangePlan: changes take effect at the next cycle; overrides and a
// second change before then replace the first; an anchor change starts a
// transition cycle and never grants a cycle twice or skips one.
func TestChangePlan(t *testing.T) {
	t.Parallel()
	t.Run("plan and overrides from the next cycle", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(0).Add(time.Hour))
		org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
		f.advance(f.clock.Now(), org)
		f.clock.Set(month(0).Add(10 * 24 * time.Hour))
		monthly, months, capacity := cr("2500"), 2, cr("1000")
		res := f.changePlan(ledger.PlanChange{OrgID: org, Plan: "enterprise",
			Overrides: &ledger.Overrides{MonthlyCredits: &monthly, RolloverMonths: &months, RolloverCap: &capacity}})
		if !res.EffectiveAt.Equal(month(1)) || res.Org.Plan != "standard" || res.Org.Pending.Plan != "enterprise" {
			t.Fatalf("change: %+v", res)
		}
		// A second change keeps what the first scheduled and adds to it.
		res = f.changePlan(ledger.PlanChange{OrgID: org, Overrides: &ledger.Overrides{MonthlyCredits: &monthly,
			RolloverMonths: &months, RolloverCap: &capacity, IncludedRuns: ptr(int64(7))}})
		if p := res.Org.Pending; p.Plan != "enterprise" || *p.Overrides.IncludedRuns != 7 {
			t.Fatalf("second change: %+v", p)
		}
		// The current cycle still runs on standard (10,000 included runs).
		if r, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "runs-1", Runs: 10000}); r.Cost != 0 {
			t.Fatalf("runs in the current cycle cost %s", r.Cost)
		}
		f.clock.Set(month(1).Add(time.Hour))
		rep := f.advance(f.clock.Now(), org)[0]
		c := rep.Cycles[0]
		// Granted at the start of cycle 1, rolled over 2 cycles: expires at the
		// end of cycle 3, 1 May.
		if c.Plan != "enterprise" || c.Granted != monthly || !c.ExpiresAt.Equal(month(4)) {
			t.Fatalf("first enterprise cycle: %+v", c)
		}
		o, err := f.l.GetOrg(f.ctx, f.pool, org)
		if err != nil {
			t.Fatal(err)
		}
		if o.Plan != "enterprise" || o.Pending != nil || *o.Overrides.IncludedRuns != 7 || o.CyclesDone != 2 {
			t.Fatalf("org after the boundary: %+v", o)
		}
		if r, _ := f.useE(ledger.UsageEvent{OrgID: org, EventID: "runs-2", Runs: 107}); r.Cost != cr("1") {
			t.Fatalf("107 runs with 7 included cost %s, want 1", r.Cost)
		}
		// Changing back to the current terms cancels the pending change.
		res = f.changePlan(ledger.PlanChange{OrgID: org, Plan: "standard"})
		if res.Org.Pending == nil {
			t.Fatal("a change to standard should be pending")
		}
		res = f.changePlan(ledger.PlanChange{OrgID: org, Plan: "enterprise", Overrides: &o.Overrides})
		if res.Org.Pending != nil {
			t.Fatalf("changing back left %+v pending", res.Org.Pending)
		}
		f.verify()
	})

	t.Run("a change made after a missed boundary applies after it", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(0).Add(time.Hour))
		org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
		f.advance(f.clock.Now(), org)
		// The February sweep never ran; the change on 5 February is for March.
		f.clock.Set(month(1).Add(4 * 24 * time.Hour))
		res := f.changePlan(ledger.PlanChange{OrgID: org, Plan: "free"})
		if len(res.Cycles.Cycles) != 1 || res.Cycles.Cycles[0].Plan != "standard" || !res.EffectiveAt.Equal(month(2)) {
			t.Fatalf("change: %+v", res)
		}
		f.clock.Set(month(2).Add(time.Hour))
		if c := f.advance(f.clock.Now(), org)[0].Cycles; c[0].Plan != "free" || c[0].Granted != cr("100") {
			t.Fatalf("March: %+v", c)
		}
	})

	t.Run("anchor change: transition cycle, nothing doubled or skipped", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(0).Add(time.Hour))
		org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
		f.advance(f.clock.Now(), org)
		// On 10 January: from the 1st to the 15th at noon in Berlin.
		f.clock.Set(month(0).Add(9 * 24 * time.Hour))
		berlin15 := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
		res := f.changePlan(ledger.PlanChange{OrgID: org, Anchor: &berlin15, TimeZone: "Europe/Berlin"})
		if !res.EffectiveAt.Equal(month(1)) || !res.Org.Anchor.Equal(jan1) || res.Org.Pending.TimeZone != "Europe/Berlin" {
			t.Fatalf("change: %+v", res)
		}
		f.clock.Set(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
		reps := f.advance(f.clock.Now(), org)
		var starts []string
		for _, c := range reps[0].Cycles {
			starts = append(starts, c.Start.UTC().Format(time.RFC3339)+"/"+short(c.Granted))
		}
		// 13:00 CET = 12:00Z in winter, 13:00 CEST = 11:00Z in summer. The
		// cycle from 1 February is the transition to the new anchor.
		want := []string{"2026-02-01T00:00:00Z/1000", "2026-02-15T12:00:00Z/1000", "2026-03-15T12:00:00Z/1000",
			"2026-04-15T11:00:00Z/1000", "2026-05-15T11:00:00Z/1000", "2026-06-15T11:00:00Z/1000"}
		if !equalStrings(starts, want) {
			t.Fatalf("boundaries %q, want %q", starts, want)
		}
		if e := reps[0].Cycles[0].ExpiresAt; !e.Equal(time.Date(2026, 2, 15, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("transition cycle's credits expire at %s", e)
		}
		o, _ := f.l.GetOrg(f.ctx, f.pool, org)
		if o.AnchorFrom == nil || !o.AnchorFrom.Equal(month(1)) || o.TimeZone != "Europe/Berlin" || o.CyclesDone != 7 {
			t.Fatalf("org: %+v", o)
		}
		f.verify()
	})

	t.Run("bad changes write nothing", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
		capacity, neg := cr("10"), -1
		for _, c := range []struct {
			change ledger.PlanChange
			field  string
		}{
			{ledger.PlanChange{OrgID: org, Plan: "gold"}, "plan"},
			{ledger.PlanChange{OrgID: org, TimeZone: "Mars/Base"}, "tz"},
			{ledger.PlanChange{OrgID: org, Overrides: &ledger.Overrides{RolloverCap: &capacity}}, "rollover_cap"},
			{ledger.PlanChange{OrgID: org, Overrides: &ledger.Overrides{RolloverMonths: &neg}}, "rollover_months"},
			{ledger.PlanChange{OrgID: "no such org!"}, "org"},
		} {
			err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error { _, err := f.l.ChangePlan(f.ctx, tx, c.change); return err })
			var v *ledger.ValidationError
			if !errors.As(err, &v) || v.Field != c.field {
				t.Fatalf("%+v: %v, want a validation error on %s", c.change, err, c.field)
			}
		}
		if o, _ := f.l.GetOrg(f.ctx, f.pool, org); o.Pending != nil || o.CyclesDone != 0 {
			t.Fatalf("org changed: %+v", o)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCycles_Edges: plans without credits still advance; an org whose plan
// the catalog lost stays put without holding up the others; the rollover cap
// takes the soonest-expiring credits first; a cycle is never allocated twice,
// whatever the engine's state says.
func TestCycles_Edges(t *testing.T) {
	t.Parallel()
	t.Run("zero credits advance", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(2).Add(time.Hour))
		org := f.newOrg(ledger.NewOrg{ID: "ent", Plan: "enterprise"})
		rep := f.advance(f.clock.Now(), org)[0]
		if len(rep.Cycles) != 3 || rep.Cycles[2].Granted != 0 || !rep.NextCycleAt.Equal(month(3)) {
			t.Fatalf("%+v", rep)
		}
		if h := f.history(org); len(h) != 0 {
			t.Fatalf("history: %+v", h)
		}
	})

	t.Run("plan missing from the catalog", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(0).Add(time.Hour))
		gold := config.DefaultCatalog()
		gold.Plans["gold"] = config.Plan{Name: "gold", MonthlyCredits: cr("1"), Overage: config.DefaultOverage()}
		withGold := ledger.New(gold, f.clock)
		f.tx(func(tx pgx.Tx) error {
			_, err := withGold.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: "a-gold", Plan: "gold", Anchor: &jan1})
			return err
		})
		std := f.newOrg(ledger.NewOrg{ID: "b-std", Plan: "standard"})
		var reps []ledger.CycleReport
		f.tx(func(tx pgx.Tx) (err error) {
			reps, err = f.l.AdvanceCycles(f.ctx, tx, []string{"a-gold", std}, f.clock.Now())
			return err
		})
		if reps[0].Error == "" || len(reps[0].Cycles) != 0 || !reps[0].NextCycleAt.Equal(jan1) || len(reps[1].Cycles) != 1 {
			t.Fatalf("%+v", reps)
		}
	})

	t.Run("rollover cap: soonest-expiring first, then oldest", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(0).Add(time.Hour))
		monthly, months, capacity := cr("100"), 3, cr("100")
		org := f.newOrg(ledger.NewOrg{ID: "ent", Plan: "enterprise", Overrides: ledger.Overrides{
			MonthlyCredits: &monthly, RolloverMonths: &months, RolloverCap: &capacity}})
		f.advance(f.clock.Now(), org) // January's 100, expiring on 1 May
		// A manual allocation grant an hour later, expiring with January's.
		may := month(4)
		bonus := f.grant(org, "40", ledger.SourceAllocation, "bonus", &may)
		f.clock.Set(month(1).Add(time.Hour))
		f.advance(f.clock.Now(), org) // carried 140, 40 over: January's are older
		f.clock.Set(month(2).Add(time.Hour))
		f.advance(f.clock.Now(), org) // carried 200, 100 over: the May lots before February's
		h := f.history(org)
		jan := *h[0].LotID
		var got []string
		for _, e := range h {
			s := summary(e)
			if e.Kind == "expiry" {
				s += map[int64]string{jan: " (January)", bonus.LotID: " (bonus)"}[*e.LotID]
			}
			got = append(got, s)
		}
		want := []string{"grant 100", "grant 40",
			"expiry -40 (January)", "rollover 0 carried 100", "grant 100",
			"expiry -60 (January)", "expiry -40 (bonus)", "rollover 0 carried 100", "grant 100"}
		if !equalStrings(got, want) {
			t.Fatalf("history %q, want %q", got, want)
		}
		f.wantAvailable(org, "200")
		f.verify()
	})

	t.Run("allocated once per org and cycle, ever", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.clock.Set(month(1).Add(time.Hour))
		org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
		f.advance(f.clock.Now(), org)
		// Wind the engine back by hand: the unique allocation key refuses.
		if _, err := f.pool.Exec(f.ctx, `UPDATE balances SET next_cycle_at = $1`, month(1)); err != nil {
			t.Fatal(err)
		}
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
			_, err := f.l.AdvanceCycles(f.ctx, tx, []string{org}, f.clock.Now())
			return err
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.ConstraintName != "lots_allocation_once" {
			t.Fatalf("second allocation of February: %v", err)
		}
	})
}

// TestDueOrgs pages the orgs with due work of each kind.
func TestDueOrgs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(month(0).Add(time.Hour))
	var orgs []string
	for i := range 7 {
		orgs = append(orgs, f.newOrg(ledger.NewOrg{ID: fmt.Sprintf("org-%d", i), Plan: "standard"}))
	}
	later := month(0).AddDate(0, 0, 20)
	f.newOrg(ledger.NewOrg{ID: "z-later", Plan: "standard", Anchor: &later})
	page := func(kind ledger.DueKind, now time.Time, limit int) [][]string {
		t.Helper()
		var pages [][]string
		var cur ledger.DueCursor
		for {
			p, err := f.l.DueOrgs(f.ctx, f.pool, kind, now, cur, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Orgs) > 0 {
				pages = append(pages, p.Orgs)
			}
			if !p.More {
				return pages
			}
			cur = p.Next
		}
	}
	got := page(ledger.DueCycles, f.clock.Now(), 3)
	if fmt.Sprint(got) != "[[org-0 org-1 org-2] [org-3 org-4 org-5] [org-6]]" {
		t.Fatalf("due cycles: %v", got)
	}
	f.advance(f.clock.Now(), orgs...)
	if got := page(ledger.DueCycles, f.clock.Now(), 3); len(got) != 0 {
		t.Fatalf("due after the run: %v", got)
	}
	// On 25 January: z-later's cycle 0 is due; on 1 February everyone's.
	if got := page(ledger.DueCycles, month(0).AddDate(0, 0, 24), 100); fmt.Sprint(got) != "[[z-later]]" {
		t.Fatalf("due on the 25th: %v", got)
	}
	// Lots: the allocations expire on 1 February; a promo on the 10th.
	f.clock.Set(month(0).AddDate(0, 0, 5))
	promoEnd := month(0).AddDate(0, 0, 10)
	f.grant("org-3", "5", ledger.SourcePromo, "p", &promoEnd)
	if got := page(ledger.DueLots, month(0).AddDate(0, 0, 10), 100); fmt.Sprint(got) != "[[org-3]]" {
		t.Fatalf("due lots on the 10th: %v", got)
	}
	// org-3 first, for its promo: pages follow the soonest expiry.
	if got := page(ledger.DueLots, month(1), 4); fmt.Sprint(got) != "[[org-3 org-0 org-1 org-2] [org-4 org-5 org-6]]" {
		t.Fatalf("due lots on 1 February: %v", got)
	}
	// Holds: two of org-5, one of org-1; due once their time is up.
	for _, h := range []struct {
		org, id string
		ttl     time.Duration
	}{{"org-5", "h1", time.Hour}, {"org-5", "h2", 2 * time.Hour}, {"org-1", "h3", 3 * time.Hour}, {"org-2", "h4", 48 * time.Hour}} {
		f.tx(func(tx pgx.Tx) error {
			_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: h.org, HoldID: h.id, Amount: cr("1"), TTL: h.ttl})
			return err
		})
	}
	due := f.clock.Now().Add(5 * time.Hour)
	if got := page(ledger.DueHolds, due, 100); fmt.Sprint(got) != "[[org-5 org-1]]" {
		t.Fatalf("due holds: %v", got)
	}
	f.clock.Set(due)
	rep := f.advance(due, "org-1", "org-5")
	if rep[0].HoldsReleased != 1 || rep[1].HoldsReleased != 2 {
		t.Fatalf("%+v", rep)
	}
	if got := page(ledger.DueHolds, due, 100); len(got) != 0 {
		t.Fatalf("due holds after the run: %v", got)
	}
	// The expiry sweep: the promo expired on the 10th.
	if got := page(ledger.DueLots, due.AddDate(0, 0, 5), 100); fmt.Sprint(got) != "[[org-3]]" {
		t.Fatalf("due lots: %v", got)
	}
	f.clock.Set(due.AddDate(0, 0, 5))
	if rep := f.advance(f.clock.Now(), "org-3")[0]; rep.Expired != cr("5") || len(rep.Cycles) != 0 {
		t.Fatalf("%+v", rep)
	}
	if got := page(ledger.DueLots, f.clock.Now(), 100); len(got) != 0 {
		t.Fatalf("due lots after the run: %v", got)
	}
	for _, bad := range []struct {
		kind  ledger.DueKind
		limit int
		field string
	}{{"statements", 10, "kind"}, {ledger.DueCycles, 0, "limit"}, {ledger.DueCycles, ledger.MaxDuePage + 1, "limit"}} {
		_, err := f.l.DueOrgs(f.ctx, f.pool, bad.kind, due, ledger.DueCursor{}, bad.limit)
		var v *ledger.ValidationError
		if !errors.As(err, &v) || v.Field != bad.field {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	f.verify()
}

// TestDueOrgs_IndexScans: on a large table each page is a range of an index,
// never a scan of the table (checked with EXPLAIN on 100,000 orgs).
func TestDueOrgs_IndexScans(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `
INSERT INTO orgs (org_id, plan, anchor, time_zone, created_at)
SELECT 'org-' || i, 'standard', '2026-01-01Z', 'UTC', '2026-01-01Z' FROM generate_series(1, 100000) i;
INSERT INTO balances (org_id, available, held, debt, last_at, next_cycle_at, next_expiry_at)
SELECT org_id, 0, 0, 0, created_at, d, CASE WHEN random() < 0.5 THEN d END
FROM (SELECT *, '2026-01-01Z'::timestamptz + (abs(hashtext(org_id)) % 28) * interval '1 day' AS d FROM orgs) x;
INSERT INTO holds (org_id, hold_id, amount, status, created_at, expires_at, closed_at)
SELECT org_id, 'h', 1, s, last_at, next_cycle_at, CASE WHEN s = 'active' THEN NULL ELSE last_at END
FROM (SELECT *, CASE WHEN random() < 0.9 THEN 'released' ELSE 'active' END AS s FROM balances) x;
ANALYZE orgs; ANALYZE balances; ANALYZE holds;`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kind  ledger.DueKind
		index string
	}{{ledger.DueCycles, "balances_next_cycle"}, {ledger.DueLots, "balances_next_expiry"}, {ledger.DueHolds, "holds_active"}} {
		for i, now := range []time.Time{month(1), month(0).AddDate(0, 0, 1)} { // all due, few due
			rows, err := f.pool.Query(ctx, "EXPLAIN "+ledger.DueSQLForTest(tt.kind), pgx.QueryExecModeExec,
				now, month(0), "org-5", 1000)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			// With everything due a page reads its rows in index order. With
			// few due the planner may fetch those few and sort them.
			if !strings.Contains(plan, tt.index) || strings.Contains(plan, "Seq Scan") ||
				(i == 0 && strings.Contains(plan, "Sort")) {
				t.Fatalf("%s at %s: %s", tt.kind, now, plan)
			}
		}
	}
}

// TestCycles_WaiterSeesNewTerms: a call that waited for the org's lock while
// another call applied a pending plan change works on the new terms. (A
// locking read returns the org's terms as they were when it started
// waiting; the engine reads them again once it holds the lock.)
func TestCycles_WaiterSeesNewTerms(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(month(0).Add(time.Hour))
	org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "professional"})
	f.advance(f.clock.Now(), org) // January: 5,000 rolled over 3 cycles, no cap
	f.clock.Set(month(0).AddDate(0, 0, 9))
	monthly, months, capacity := cr("1000"), 1, cr("300")
	f.changePlan(ledger.PlanChange{OrgID: org, Plan: "enterprise",
		Overrides: &ledger.Overrides{MonthlyCredits: &monthly, RolloverMonths: &months, RolloverCap: &capacity}})
	f.clock.Set(month(2).Add(time.Hour))

	// The first call performs 1 February (where the change takes effect)
	// and keeps its transaction open; the second, for 1 March, waits.
	tx1, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(f.ctx) //nolint:errcheck // after Commit a no-op
	if _, err := f.l.AdvanceCycles(f.ctx, tx1, []string{org}, month(1).Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	done := make(chan []ledger.CycleReport, 1)
	go func() {
		var reps []ledger.CycleReport
		err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
			reps, err = f.l.AdvanceCycles(f.ctx, tx, []string{org}, f.clock.Now())
			return err
		})
		if err != nil {
			t.Error(err)
		}
		done <- reps
	}()
	f.waitForLockWaiters(1)
	if err := tx1.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
	reps := <-done
	// 1 March ends the first enterprise cycle: its cap applies. January's
	// 5,000 (until 1 May) and February's 1,000 (until 1 April) are open;
	// 5,700 exceed the cap of 300, taken from the sooner-expiring first.
	if c := reps[0].Cycles; len(c) != 1 || c[0].CapExpired != cr("5700") || c[0].Carried != cr("300") || c[0].Plan != "enterprise" {
		t.Fatalf("1 March: %+v", reps)
	}
	got, _ := f.historySince(org, 0)
	want := []string{"grant 5000", "rollover 0 carried 5000", "grant 1000",
		"expiry -1000", "expiry -4700", "rollover 0 carried 300", "grant 1000"}
	if !equalStrings(got, want) {
		t.Fatalf("history %q, want %q", got, want)
	}
	if o, _ := f.l.GetOrg(f.ctx, f.pool, org); o.Pending != nil || o.Plan != "enterprise" || o.AnchorFrom != nil {
		t.Fatalf("org: %+v", o)
	}
	f.verify()
}

// TestVerify_CycleInvariants: verify catches a wrong next expiry (which the
// expiry sweep pages by) and a cycle allocated twice.
func TestVerify_CycleInvariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, check string
		corrupt     []string
	}{
		{"next expiry", "next_expiry_matches_lots", []string{`UPDATE balances SET next_expiry_at = next_expiry_at + interval '1 day'`}},
		{"next expiry missing", "next_expiry_matches_lots", []string{`UPDATE balances SET next_expiry_at = NULL`}},
		{"cycle allocated twice", "allocation_once_per_cycle", []string{`DROP INDEX lots_allocation_once`,
			`INSERT INTO lots (org_id, source, amount, remaining, granted_at, expires_at, key)
			 SELECT org_id, source, amount, 0, granted_at, expires_at, key FROM lots WHERE source = 'allocation'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.clock.Set(month(0).Add(time.Hour))
			org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard"})
			f.advance(f.clock.Now(), org)
			f.verify()
			for _, sql := range tt.corrupt {
				if _, err := f.pool.Exec(f.ctx, sql); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := f.l.Verify(f.ctx, f.pool)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || len(rep.Violations) != 1 || rep.Violations[0].Check != tt.check || rep.Violations[0].OrgID != org {
				t.Fatalf("violations %+v, want one %s", rep.Violations, tt.check)
			}
		})
	}
}

// TestCycles_LargePage: a page whose entries persist writes with COPY (500
// or more) keeps them in posting order, like the INSERT for small ones.
func TestCycles_LargePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(jan1)
	var orgs []string
	for i := range 300 {
		orgs = append(orgs, fmt.Sprintf("org-%03d", i))
	}
	f.tx(func(tx pgx.Tx) error {
		for _, id := range orgs {
			if _, err := f.l.CreateOrg(f.ctx, tx, ledger.NewOrg{ID: id, Plan: "standard", Anchor: &jan1}); err != nil {
				return err
			}
		}
		return nil
	})
	f.clock.Set(month(1).Add(time.Hour))
	reps := f.advance(f.clock.Now(), orgs...) // 3 entries each: 900
	if len(reps) != 300 || len(reps[299].Cycles) != 2 {
		t.Fatalf("%d reports, last %+v", len(reps), reps[len(reps)-1])
	}
	for _, org := range []string{"org-000", "org-299"} {
		got, _ := f.historySince(org, 0)
		if want := []string{"grant 1000", "expiry -1000", "grant 1000"}; !equalStrings(got, want) {
			t.Fatalf("%s: %q, want %q", org, got, want)
		}
	}
	if n := f.entryCount(); n != 900 {
		t.Fatalf("%d entries, want 900", n)
	}
	f.verify()
}
