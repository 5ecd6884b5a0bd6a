package ledger_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

func pct(s string) *credits.Percent {
	p, err := credits.ParsePercent(s)
	if err != nil {
		panic(err)
	}
	return &p
}

func (f *fixture) addRule(r ledger.NewAlertRule) (ledger.AlertRule, error) {
	var rule ledger.AlertRule
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
		rule, _, err = f.l.AddAlertRule(f.ctx, tx, r)
		return err
	})
	return rule, err
}

func (f *fixture) notifications(org string) []ledger.Notification {
	f.t.Helper()
	ns, err := f.l.Notifications(f.ctx, f.pool, org, 0, ledger.MaxNotificationsPage)
	if err != nil {
		f.t.Fatalf("notifications: %v", err)
	}
	return ns
}

// fired describes the org's notifications oldest first, as "kind:percent" or
// "kind:threshold", for comparison with a list.
func (f *fixture) fired(org string) []string {
	f.t.Helper()
	ns := f.notifications(org)
	out := make([]string, 0, len(ns))
	for i := len(ns) - 1; i >= 0; i-- {
		n := ns[i]
		s := string(n.Kind)
		switch {
		case n.Kind == ledger.AlertUsagePercent:
			s += ":" + n.Scope + ":" + n.Subject + ":" + n.Percent.String()
		case n.Percent != nil:
			s += ":" + n.Percent.String()
		case n.Kind == ledger.AlertBelow:
			s += ":" + n.Threshold.String()
		}
		out = append(out, s)
	}
	return out
}

func wantFired(t *testing.T, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fired %q, want %q", got, want)
	}
}

// standardOrg is an org on the standard plan (1,000 credits a month) with
// the catalog's default rules and its first allocation granted.
func (f *fixture) standardOrg(id string, emails ...string) string {
	f.t.Helper()
	f.newOrg(ledger.NewOrg{ID: id, Plan: "standard", Anchor: &t0, Emails: emails})
	f.advance(t0.Add(time.Hour), id)
	f.wantAvailable(id, "1000")
	return id
}

func TestAlerts_DefaultRulesFireOncePerCrossing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	wantFired(t, f.fired(org)) // a new org's zero balance and its first allocation fire nothing

	f.use(org, "e1", "700")                        // 300 left: above 20% (200)
	wantFired(t, f.fired(org))                     //
	f.use(org, "e2", "100.001")                    // 199.999: below 20%
	wantFired(t, f.fired(org), "below_percent:20") //
	f.use(org, "e3", "100")                        // 99.999: still below 20%, above 5% (50)
	wantFired(t, f.fired(org), "below_percent:20") //
	f.use(org, "e4", "60")                         // 39.999: below 5%
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5")
	f.use(org, "e5", "39.999") // 0: depleted
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
	f.use(org, "e6", "5") // debt: already fired
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")

	// A top-up above every level re-arms them; spending down fires them again.
	f.grant(org, "1005", ledger.SourcePromo, "topup", nil)
	f.wantAvailable(org, "1000")
	f.use(org, "e7", "1000")
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted",
		"below_percent:20", "below_percent:5", "depleted")

	ns := f.notifications(org)
	last := ns[0]
	if last.Kind != ledger.AlertDepleted || last.Balance != 0 || last.Debt != 0 || last.MessageID == "" {
		t.Fatalf("newest notification %+v", last)
	}
	if first := ns[len(ns)-1]; first.Threshold == nil || *first.Threshold != cr("200") || first.Balance != cr("199.999") {
		t.Fatalf("first notification %+v, want threshold 200 and balance 199.999", first)
	}
	f.verify()
}

func TestAlerts_ReplayFiresNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.use(org, "e1", "900")
	f.use(org, "e1", "900") // the same event again: no change, no alert
	wantFired(t, f.fired(org), "below_percent:20")
}

func TestAlerts_OneTransactionCrossingSeveralLevelsFiresInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{
			{OrgID: org, EventID: "a", Amount: crp("600")},
			{OrgID: org, EventID: "b", Amount: crp("450")},
		})
		return err
	})
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
}

func TestAlerts_ConcurrentSpendFiresEachLevelOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	const workers, each = 64, 4 // 64 × 4 × 4 credits = 1,024 > 1,000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("w%d-%d", w, i), Amount: crp("4")}
				if err := ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) error {
					_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{ev})
					return err
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f.wantAvailable(org, "-24")
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
	f.verify()
}

func TestAlerts_BelowAmountFiresAtOnceWhenItAlreadyHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.use(org, "e1", "750") // 250 left
	rule, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow, Amount: crp("300")})
	if err != nil {
		t.Fatal(err)
	}
	wantFired(t, f.fired(org), "below:300.000")
	if len(rule.Fired) != 1 || rule.Fired[0].Armed {
		t.Fatalf("rule %+v: want fired once, not armed", rule)
	}
	again, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow, Amount: crp("300")})
	if err != nil || again.ID != rule.ID {
		t.Fatalf("adding the same rule again: %+v, %v; want rule %d", again, err, rule.ID)
	}
	// At or below: exactly the amount fires.
	f.grant(org, "100", ledger.SourcePromo, "p1", nil) // 350: re-armed
	f.use(org, "e2", "50")                             // 300: at the amount
	wantFired(t, f.fired(org), "below:300.000", "below:300.000")

	if err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		return f.l.RemoveAlertRule(f.ctx, tx, org, rule.ID)
	}); err != nil {
		t.Fatal(err)
	}
	err = ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error { return f.l.RemoveAlertRule(f.ctx, tx, org, rule.ID) })
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
	f.grant(org, "100", ledger.SourcePromo, "p2", nil)
	f.use(org, "e3", "150")
	wantFired(t, f.fired(org), "below:300.000", "below:300.000") // removed: no more
}

func TestAlerts_UsagePercentOfTeamLimitAndCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cap := cr("500")
	org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard", Anchor: &t0, MonthlyCap: &cap})
	f.advance(t0.Add(time.Hour), org)
	f.tx(func(tx pgx.Tx) error {
		return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "ml", crp("100"))
	})
	if _, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertUsagePercent, Team: "ml", Percent: pct("60")}); err != nil {
		t.Fatal(err)
	}
	use := func(id, team, amount string) {
		t.Helper()
		if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: id, Team: team, Amount: crp(amount)}); err != nil {
			t.Fatal(err)
		}
	}
	use("e1", "ml", "49")
	wantFired(t, f.fired(org))
	use("e2", "ml", "1") // 50%: the default 50% rule, for the team
	wantFired(t, f.fired(org), "usage_percent:team:ml:50")
	use("e3", "ml", "30") // 80%: the team's own 60% rule and the default 75%
	wantFired(t, f.fired(org), "usage_percent:team:ml:50", "usage_percent:team:ml:60", "usage_percent:team:ml:75")
	use("e4", "", "170") // the org has used 250 of its 500 cap: 50%
	wantFired(t, f.fired(org), "usage_percent:team:ml:50", "usage_percent:team:ml:60", "usage_percent:team:ml:75",
		"usage_percent:org::50")

	// The next cycle re-arms: the counters start again.
	next := t0.AddDate(0, 1, 0)
	f.clock.Set(next.Add(time.Hour))
	f.advance(next.Add(time.Hour), org)
	use("e5", "ml", "55")
	got := f.fired(org)
	wantFired(t, got[4:], "usage_percent:team:ml:50")
	f.verify()
}

func TestAlerts_CycleTurnRearms(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "free", Anchor: &t0}) // 100 credits a month, they expire
	f.advance(t0.Add(time.Hour), org)
	f.use(org, "e1", "100")
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
	f.use(org, "e2", "130") // 130 in debt: the next allocation does not cover it
	next := t0.AddDate(0, 1, 0)
	f.clock.Set(next.Add(time.Hour))
	f.advance(next.Add(time.Hour), org)
	f.wantAvailable(org, "-30")
	// Still below every level in the new cycle: each fires once more.
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted",
		"below_percent:20", "below_percent:5", "depleted")
	f.clock.Set(next.Add(2 * time.Hour))
	f.advance(next.Add(2*time.Hour), org) // a second sweep in the same cycle: nothing
	if n := len(f.fired(org)); n != 6 {
		t.Fatalf("%d notifications after a second sweep, want 6", n)
	}
}

func TestAlerts_RunwayFromTheSweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	if _, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertRunway, Days: 10}); err != nil {
		t.Fatal(err)
	}
	// 70 credits a day for 7 days: 490 spent, 510 left, 7.3 days of runway.
	for d := range 7 {
		f.clock.Set(t0.Add(time.Hour + time.Duration(d)*24*time.Hour))
		f.use(org, fmt.Sprintf("d%d", d), "70")
	}
	wantFired(t, f.fired(org)) // runway is the sweep's to check
	f.advance(f.clock.Now(), org)
	wantFired(t, f.fired(org), "runway")
	f.advance(f.clock.Now(), org)
	wantFired(t, f.fired(org), "runway")
	n := f.notifications(org)[0]
	if n.Days != 10 || n.Used == nil || *n.Used != cr("490") {
		t.Fatalf("runway notification %+v, want 10 days and 490 used", n)
	}
	// A top-up gives 21 days of runway: re-armed.
	f.grant(org, "1000", ledger.SourcePromo, "p1", nil)
	f.advance(f.clock.Now(), org)
	rules, err := f.l.AlertRules(f.ctx, f.pool, org)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Kind == ledger.AlertRunway && len(r.Fired) != 0 {
			t.Fatalf("runway rule still fired after a top-up: %+v", r)
		}
	}
}

func TestAlerts_BadRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	neg := cr("-5")
	over := credits.Percent(100_01)
	tests := []struct {
		name  string
		rule  ledger.NewAlertRule
		field string
	}{
		{"negative amount", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow, Amount: &neg}, "amount"},
		{"no amount", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow}, "amount"},
		{"percent over 100", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelowPercent, Percent: &over}, "percent"},
		{"no percent", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertUsagePercent}, "percent"},
		{"unknown team", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertUsagePercent, Team: "ghosts", Percent: pct("50")}, "team"},
		{"team on a balance rule", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow, Team: "ml", Amount: crp("5")}, "team"},
		{"runway days", ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertRunway, Days: 0}, "days"},
		{"unknown kind", ledger.NewAlertRule{OrgID: org, Kind: "sideways"}, "kind"},
		{"bad org", ledger.NewAlertRule{OrgID: "", Kind: ledger.AlertDepleted}, "org"},
	}
	before, err := f.l.AlertRules(f.ctx, f.pool, org)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.addRule(tt.rule)
			var v *ledger.ValidationError
			if !errors.As(err, &v) || v.Field != tt.field {
				t.Fatalf("err = %v, want a validation error of field %s", err, tt.field)
			}
		})
	}
	_, err = f.addRule(ledger.NewAlertRule{OrgID: "nobody", Kind: ledger.AlertDepleted})
	if !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown org: %v, want ErrNotFound", err)
	}
	after, err := f.l.AlertRules(f.ctx, f.pool, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d rules after refused adds, want %d", len(after), len(before))
	}
}

func TestAlerts_OutboxPerReceiver(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme", "a@example.com", "b@example.com")
	var hook ledger.Webhook
	f.tx(func(tx pgx.Tx) (err error) {
		hook, err = f.l.AddWebhook(f.ctx, tx, org, "https://hooks.example.com/creditd", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		return err
	})
	f.use(org, "e1", "900")
	ns := f.notifications(org)
	if len(ns) != 1 {
		t.Fatalf("%d notifications, want 1", len(ns))
	}
	got := map[string]string{}
	for _, d := range ns[0].Deliveries {
		got[d.Channel+":"+d.Target] = d.Status
	}
	want := map[string]string{"email:a@example.com": "pending", "email:b@example.com": "pending",
		fmt.Sprintf("webhook:%d", hook.ID): "pending"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries %v, want %v", got, want)
	}

	now := f.clock.Now()
	var refs []ledger.DeliveryRef
	f.tx(func(tx pgx.Tx) (err error) {
		refs, err = f.l.ClaimDeliveries(f.ctx, tx, now, 10*time.Minute, 100)
		return err
	})
	if len(refs) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(refs))
	}
	f.tx(func(tx pgx.Tx) (err error) {
		again, err := f.l.ClaimDeliveries(f.ctx, tx, now.Add(time.Minute), 10*time.Minute, 100)
		if len(again) != 0 {
			t.Errorf("claimed %d again within the stale time, want 0", len(again))
		}
		return err
	})
	var webhookRef ledger.DeliveryRef
	for _, ref := range refs {
		d, err := f.l.Delivery(f.ctx, f.pool, ref)
		if err != nil {
			t.Fatal(err)
		}
		if d.Notification.MessageID != ns[0].MessageID {
			t.Fatalf("delivery %d carries message %s, want %s", ref.ID, d.Notification.MessageID, ns[0].MessageID)
		}
		if d.Channel == ledger.ChannelWebhook {
			webhookRef = ref
			if d.URL != hook.URL || d.Secret != hook.Secret {
				t.Fatalf("webhook delivery without its receiver: %+v", d)
			}
		}
	}
	for _, step := range []struct {
		status string
		ok     bool
	}{{ledger.DeliveryPending, true}, {ledger.DeliveryDelivered, true}, {ledger.DeliveryFailed, false}} {
		ok, err := f.l.RecordAttempt(f.ctx, f.pool, webhookRef, step.status, "")
		if err != nil || ok != step.ok {
			t.Fatalf("RecordAttempt(%s) = %v, %v; want %v", step.status, ok, err, step.ok)
		}
	}
	// A stale claim is handed over again, unless done.
	f.tx(func(tx pgx.Tx) (err error) {
		again, err := f.l.ClaimDeliveries(f.ctx, tx, now.Add(11*time.Minute), 10*time.Minute, 100)
		if len(again) != 2 {
			t.Errorf("claimed %d stale deliveries, want the 2 still pending", len(again))
		}
		return err
	})
	for _, d := range f.notifications(org)[0].Deliveries {
		if d.Channel == ledger.ChannelWebhook && (d.Status != ledger.DeliveryDelivered || d.Attempts != 2 || d.DoneAt == nil) {
			t.Fatalf("webhook delivery %+v, want delivered after 2 attempts", d)
		}
	}
}

func TestAlerts_RaiseAlertOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme", "a@example.com")
	raise := func(key string) string {
		t.Helper()
		var id string
		f.tx(func(tx pgx.Tx) (err error) {
			id, err = f.l.RaiseAlert(f.ctx, tx, org, ledger.AlertRechargeFailed, key, map[string]string{"code": "card_declined"})
			return err
		})
		return id
	}
	a, b := raise("recharge:1"), raise("recharge:1")
	if a != b {
		t.Fatalf("the same key raised %s then %s", a, b)
	}
	raise("recharge:2")
	ns := f.notifications(org)
	if len(ns) != 2 || ns[1].Details["code"] != "card_declined" || len(ns[1].Deliveries) != 1 {
		t.Fatalf("notifications %+v", ns)
	}
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.l.RaiseAlert(f.ctx, tx, org, ledger.AlertBelow, "x", nil)
		return err
	})
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "kind" {
		t.Fatalf("raising a rule kind: %v, want a validation error", err)
	}
}

func TestAlerts_OrgWithoutDefaultsHasNoRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.newOrg(ledger.NewOrg{ID: "quiet", Plan: "standard", Anchor: &t0, NoDefaultAlerts: true})
	f.advance(t0.Add(time.Hour), org)
	f.use(org, "e1", "1100")
	wantFired(t, f.fired(org))
	rules, err := f.l.AlertRules(f.ctx, f.pool, org)
	if err != nil || len(rules) != 0 {
		t.Fatalf("rules %+v, %v; want none", rules, err)
	}
	page, err := f.l.DueOrgs(f.ctx, f.pool, ledger.DueAlerts, f.clock.Now(), ledger.DueCursor{}, 10)
	if err != nil || len(page.Orgs) != 0 {
		t.Fatalf("due alerts %+v, %v; want none", page, err)
	}
}

func TestAlerts_DueOrgsPagesOrgsWithRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, id := range []string{"c", "a", "b"} {
		f.newOrg(ledger.NewOrg{ID: id, Plan: "standard", Anchor: &t0})
	}
	f.newOrg(ledger.NewOrg{ID: "bb", Plan: "standard", Anchor: &t0, NoDefaultAlerts: true})
	var got []string
	cursor := ledger.DueCursor{}
	for range 5 {
		page, err := f.l.DueOrgs(f.ctx, f.pool, ledger.DueAlerts, f.clock.Now(), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Orgs...)
		cursor = page.Next
		if !page.More {
			break
		}
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("paged %v, want a,b,c", got)
	}
}

func (f *fixture) reserve(org, id, amount, team string) {
	f.t.Helper()
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.Reserve(f.ctx, tx, ledger.Reservation{OrgID: org, HoldID: id, Amount: cr(amount), TTL: time.Hour, Team: team})
		return err
	})
}

func (f *fixture) capture(org, id, amount string) {
	f.t.Helper()
	f.tx(func(tx pgx.Tx) error { _, err := f.l.Capture(f.ctx, tx, org, id, cr(amount), ""); return err })
}

func TestAlerts_HoldChurnMakesNoStorm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	if _, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertBelow, Amount: crp("100")}); err != nil {
		t.Fatal(err)
	}
	f.use(org, "e1", "895") // 105
	for i := range 5 {
		f.reserve(org, fmt.Sprint("h", i), "10", "") // 95 (and lower): below 100
		f.capture(org, fmt.Sprint("h", i), "1")      // back above 100 less 1 each time: not credits added
	}
	wantFired(t, f.fired(org), "below_percent:20", "below:100.000") // once, not once per reservation
	// Credits added above the level re-arm it.
	f.grant(org, "50", ledger.SourcePromo, "p1", nil) // 150
	f.use(org, "e2", "60")
	wantFired(t, f.fired(org), "below_percent:20", "below:100.000", "below:100.000")
}

func TestAlerts_CaptureCountsTowardTeamUsageRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.tx(func(tx pgx.Tx) error { return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "ml", crp("100")) })
	f.reserve(org, "h1", "80", "ml")
	f.capture(org, "h1", "60") // 60% of the team's limit: the default 50% rule
	wantFired(t, f.fired(org), "usage_percent:team:ml:50")
}

func TestAlerts_TeamRuleThatAlreadyHoldsFiresWhenAdded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.newOrg(ledger.NewOrg{ID: "acme", Plan: "standard", Anchor: &t0, NoDefaultAlerts: true})
	f.advance(t0.Add(time.Hour), org)
	f.tx(func(tx pgx.Tx) error { return f.l.SetLimit(f.ctx, tx, org, ledger.ScopeTeam, "ml", crp("100")) })
	if _, err := f.useE(ledger.UsageEvent{OrgID: org, EventID: "e1", Team: "ml", Amount: crp("70")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.addRule(ledger.NewAlertRule{OrgID: org, Kind: ledger.AlertUsagePercent, Team: "ml", Percent: pct("60")}); err != nil {
		t.Fatal(err)
	}
	wantFired(t, f.fired(org), "usage_percent:team:ml:60")
}

func TestAlerts_NoRefireBetweenBoundaryAndAllocation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme")
	f.tx(func(tx pgx.Tx) error {
		_, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: org, EventID: "e1", Amount: crp("990")}})
		return err
	})
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5")
	// The calendar has turned, the cycle sweep has not run yet: usage then
	// does not fire the percent rules again (the 10 credits left expired,
	// so it does cross zero).
	next := t0.AddDate(0, 1, 0)
	f.clock.Set(next.Add(time.Minute))
	f.use(org, "e2", "1")
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
	// The sweep performs the boundary: the allocation lifts the balance and
	// re-arms; nothing fires until the next descent.
	f.advance(next.Add(time.Minute), org)
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted")
	f.use(org, "e3", "900")
	wantFired(t, f.fired(org), "below_percent:20", "below_percent:5", "depleted", "below_percent:20")
}

func TestAlerts_ApplyAlertDefaultsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := f.newOrg(ledger.NewOrg{ID: "old", Plan: "standard", Anchor: &t0, NoDefaultAlerts: true})
	trimmed := f.newOrg(ledger.NewOrg{ID: "trimmed", Plan: "standard", Anchor: &t0})
	// "old" stands for an org created before alerts existed.
	if _, err := f.pool.Exec(f.ctx, `UPDATE orgs SET alert_defaults = false WHERE org_id = $1`, old); err != nil {
		t.Fatal(err)
	}
	rules, err := f.l.AlertRules(f.ctx, f.pool, trimmed)
	if err != nil {
		t.Fatal(err)
	}
	f.tx(func(tx pgx.Tx) error { return f.l.RemoveAlertRule(f.ctx, tx, trimmed, rules[0].ID) })

	for _, want := range []int{1, 0} {
		n, err := f.l.ApplyAlertDefaults(f.ctx, f.pool, 1)
		if err != nil || n != want {
			t.Fatalf("ApplyAlertDefaults = %d, %v; want %d", n, err, want)
		}
	}
	for org, want := range map[string]int{old: 6, trimmed: 5} {
		got, err := f.l.AlertRules(f.ctx, f.pool, org)
		if err != nil || len(got) != want {
			t.Fatalf("%s has %d rules (%v), want %d", org, len(got), err, want)
		}
	}
	f.advance(t0.Add(time.Hour), old)
	wantFired(t, f.fired(old)) // quiet: its zero balance before the allocation fired nothing
}

func TestAlerts_SetEmailsChangesReceivers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.standardOrg("acme", "old@acme.test")
	err := ledger.WithTx(f.ctx, f.pool, func(tx pgx.Tx) error { return f.l.SetEmails(f.ctx, tx, org, []string{"not an address"}) })
	var v *ledger.ValidationError
	if !errors.As(err, &v) || v.Field != "email" {
		t.Fatalf("bad address: %v, want a validation error of email", err)
	}
	f.tx(func(tx pgx.Tx) error { return f.l.SetEmails(f.ctx, tx, org, []string{"a@acme.test", "b@acme.test"}) })
	f.use(org, "e1", "900")
	var got []string
	for _, d := range f.notifications(org)[0].Deliveries {
		got = append(got, d.Target)
	}
	if strings.Join(got, ",") != "a@acme.test,b@acme.test" {
		t.Fatalf("deliveries to %v, want the new list", got)
	}
	f.tx(func(tx pgx.Tx) error { return f.l.SetEmails(f.ctx, tx, org, nil) })
	f.use(org, "e2", "60")
	if ds := f.notifications(org)[0].Deliveries; len(ds) != 0 {
		t.Fatalf("deliveries %+v after clearing the list, want none", ds)
	}
}
