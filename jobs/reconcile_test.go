package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/jobs/payments"
	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// reconcileRig is one org with a saved card at the fake Stripe and
// auto-recharge on (threshold 100, 500 credits a charge), a reconciliation
// handler whose log and metrics the test reads, and no queue: the tests
// call the handlers as workers would.
type reconcileRig struct {
	t        *testing.T
	ctx      context.Context
	pool     *pgxpool.Pool
	ledger   *ledger.Ledger
	fake     *stripefake.Server
	stripe   *payments.Stripe
	api      *client.API
	cus, pm  string
	h        *jobs.ReconcileHandler
	logs     *jobstest.LockedBuffer
	registry *prometheus.Registry
}

const reconcileOrg = "acme"

func newReconcileRig(t *testing.T) *reconcileRig {
	t.Helper()
	r := &reconcileRig{t: t, ctx: context.Background(), pool: ledgertest.NewPool(t), ledger: ledger.New(config.DefaultCatalog(), nil),
		fake: stripefake.New(t), logs: &jobstest.LockedBuffer{}, registry: prometheus.NewRegistry()}
	r.cus, r.pm = r.fake.NewCustomerWithCard(t, "tok_visa")
	r.stripe = payments.NewStripeWithBackend("sk_test_creditd", r.fake.Backend())
	r.api = &client.API{}
	r.api.Init("sk_test_creditd", &stripe.Backends{API: r.fake.Backend()})
	metrics, err := jobs.NewReconcileMetrics(r.registry)
	if err != nil {
		t.Fatal(err)
	}
	r.h = &jobs.ReconcileHandler{Ledger: r.ledger, DB: r.pool, Stripe: r.stripe, Metrics: metrics,
		Log: slog.New(slog.NewJSONHandler(r.logs, nil))}
	r.tx(func(tx pgx.Tx) error {
		if _, err := r.ledger.CreateOrg(r.ctx, tx, ledger.NewOrg{ID: reconcileOrg, Plan: "standard"}); err != nil {
			return err
		}
		if _, err := r.ledger.Grant(r.ctx, tx, ledger.Grant{OrgID: reconcileOrg, Amount: credits.MustParse("200"), Source: ledger.SourcePromo, Key: "welcome"}); err != nil {
			return err
		}
		if _, err := r.ledger.SetPaymentMethod(r.ctx, tx, ledger.PaymentMethod{OrgID: reconcileOrg, CustomerID: r.cus, PaymentMethodID: r.pm}); err != nil {
			return err
		}
		amount := credits.MustParse("500")
		_, err := r.ledger.SetRecharge(r.ctx, tx, ledger.RechargeSettings{OrgID: reconcileOrg, Enabled: true, Threshold: credits.MustParse("100"), Amount: &amount})
		return err
	})
	return r
}

func (r *reconcileRig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	if err := ledger.WithTx(r.ctx, r.pool, fn); err != nil {
		r.t.Fatal(err)
	}
}

// spend records one usage event, which may open a recharge attempt.
func (r *reconcileRig) spend(event, amount string) {
	r.t.Helper()
	a := credits.MustParse(amount)
	r.tx(func(tx pgx.Tx) error {
		_, err := r.ledger.RecordUsage(r.ctx, tx, []ledger.UsageEvent{{OrgID: reconcileOrg, EventID: event, Amount: &a}})
		return err
	})
}

func (r *reconcileRig) pendingAttempt() ledger.RechargeAttempt {
	r.t.Helper()
	as, err := r.ledger.RechargeAttempts(r.ctx, r.pool, reconcileOrg, 1)
	if err != nil || len(as) != 1 || as[0].Status != ledger.RechargePending {
		r.t.Fatalf("attempts %+v, %v; want one pending", as, err)
	}
	return as[0]
}

// chargeLikeTheTask charges the attempt exactly as the recharge task does,
// under its idempotency key, and does nothing with the answer: a worker
// that died before its commit.
func (r *reconcileRig) chargeLikeTheTask(a ledger.RechargeAttempt) string {
	r.t.Helper()
	pi, err := r.stripe.ChargeOffSession(r.ctx, jobs.Charge{IdempotencyKey: a.ID, Customer: a.CustomerID, PaymentMethod: a.PaymentMethodID,
		AmountMinor: a.Amount.Minor, Currency: a.Amount.Currency, Description: fmt.Sprintf("creditd auto-recharge: %s credits", a.Credits),
		Metadata: map[string]string{"org_id": a.OrgID, "recharge_attempt": a.ID, "credits": a.Credits.String()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return pi
}

// purchase is a one-time purchase paid at Stripe, off the ledger's paths.
func (r *reconcileRig) purchase(amount int64, metadata map[string]string, confirm bool) string {
	r.t.Helper()
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd"), Customer: stripe.String(r.cus),
		PaymentMethod: stripe.String(r.pm), Confirm: stripe.Bool(confirm)}
	for k, v := range metadata {
		p.AddMetadata(k, v)
	}
	pi, err := r.api.PaymentIntents.New(p)
	if err != nil {
		r.t.Fatal(err)
	}
	return pi.ID
}

func (r *reconcileRig) reconcile() jobs.ReconcileResult {
	r.t.Helper()
	now := time.Now().UTC()
	res, err := r.h.Reconcile(r.ctx, []string{reconcileOrg}, now.Add(-config.DefaultReconcileWindow), now)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func (r *reconcileRig) available() credits.Credits {
	r.t.Helper()
	b, err := r.ledger.Balance(r.ctx, r.pool, reconcileOrg)
	if err != nil {
		r.t.Fatal(err)
	}
	return b.Available
}

// lots counts the org's lots of a source.
func (r *reconcileRig) lots(source string) int {
	r.t.Helper()
	b, err := r.ledger.Balance(r.ctx, r.pool, reconcileOrg)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, l := range b.Lots {
		if l.Source == source {
			n++
		}
	}
	return n
}

func (r *reconcileRig) verify() {
	r.t.Helper()
	rep, err := r.ledger.Verify(r.ctx, r.pool)
	if err != nil || !rep.OK {
		r.t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// counter reads a reconciliation counter by kind.
func (r *reconcileRig) counter(name, kind string) float64 {
	r.t.Helper()
	mfs, err := r.registry.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	r.t.Fatalf("no %s{kind=%q}", name, kind)
	return 0
}

// logLines returns the handler's log lines with message msg.
func (r *reconcileRig) logLines(msg string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != msg {
			continue
		}
		m := map[string]string{}
		for k, v := range l {
			m[k] = fmt.Sprint(v)
		}
		out = append(out, m)
	}
	return out
}

// TestReconcile_RechargeChargedButNotCommitted: Stripe charged the attempt
// but the worker died before its commit. Reconciliations run twice, then
// three at once together with the recharge task's retry: the credits
// arrive once, the attempt succeeds, the card was charged once.
func TestReconcile_RechargeChargedButNotCommitted(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	r.spend("u1", "150") // 200 → 50: at or below 100, an attempt opens
	a := r.pendingAttempt()
	pi := r.chargeLikeTheTask(a)

	t.Run("credited once by reconciliation", func(t *testing.T) {
		res := r.reconcile()
		if len(res.Credited) != 1 || res.Credited[0].PaymentID != pi || res.Credited[0].Kind != ledger.PaymentRecharge ||
			res.Credited[0].AttemptID != a.ID || res.Credited[0].Credits != credits.MustParse("500") || len(res.Mismatches) != 0 {
			t.Fatalf("result %+v", res)
		}
		if res.Customers != 1 || res.PaymentIntents != 1 {
			t.Fatalf("listed %d customers, %d payment intents; want 1, 1", res.Customers, res.PaymentIntents)
		}
		if again := r.reconcile(); len(again.Credited) != 0 || len(again.Mismatches) != 0 {
			t.Fatalf("second run %+v, want nothing to do", again)
		}
	})
	t.Run("the task's retry and concurrent runs change nothing", func(t *testing.T) {
		h := &jobs.RechargeHandler{Ledger: r.ledger, DB: r.pool, Charger: r.stripe}
		task, err := jobs.NewRechargeTask(ledger.RechargeRef{OrgID: reconcileOrg, AttemptID: a.ID})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		credited := make(chan int, 3)
		errs := make(chan error, 4)
		for range 3 {
			wg.Go(func() {
				now := time.Now().UTC()
				res, err := r.h.Reconcile(r.ctx, []string{reconcileOrg}, now.Add(-time.Hour), now)
				errs <- err
				credited <- len(res.Credited)
			})
		}
		wg.Go(func() { errs <- h.ProcessTask(r.ctx, task) })
		wg.Wait()
		close(errs)
		close(credited)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for n := range credited {
			if n != 0 {
				t.Fatalf("a concurrent run credited %d payments again", n)
			}
		}
	})
	got, err := r.ledger.GetRechargeAttempt(r.ctx, r.pool, reconcileOrg, a.ID)
	if err != nil || got.Status != ledger.RechargeSucceeded || got.PaymentIntentID != pi {
		t.Fatalf("attempt %+v, %v; want succeeded with %s", got, err, pi)
	}
	if c := r.fake.Charges(r.cus); c != 500_00 {
		t.Fatalf("Stripe charged %d cents, want 50000 once", c)
	}
	if n, avail := r.lots(ledger.SourceRecharge), r.available(); n != 1 || avail != credits.MustParse("550") {
		t.Fatalf("%d recharge lots, %s available; want 1 and 550", n, avail)
	}
	if got := r.counter("creditd_payments_reconcile_credited_total", ledger.PaymentRecharge); got != 1 {
		t.Fatalf("credited counter %v, want 1", got)
	}
	lines := r.logLines("payment credited by reconciliation")
	if len(lines) != 1 || lines[0]["org"] != reconcileOrg || lines[0]["payment_id"] != pi || lines[0]["attempt_id"] != a.ID {
		t.Fatalf("log lines %v", lines)
	}
	r.verify()
}

// TestReconcile_PurchasesAndMismatches: purchases whose webhooks never
// came are credited once, by metadata or by customer, and a webhook
// arriving afterwards adds nothing; disagreements that must not be
// repaired automatically are reported, with a log line and a metric each,
// and take no credits back.
func TestReconcile_PurchasesAndMismatches(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	byMetadata := r.purchase(20_00, map[string]string{"org_id": reconcileOrg}, true)
	byCustomer := r.purchase(10_00, nil, true)
	belowMinimum := r.purchase(1_00, map[string]string{"org_id": reconcileOrg}, true)
	unpaid := r.purchase(30_00, map[string]string{"org_id": reconcileOrg}, false)

	res := r.reconcile()
	credited := map[string]string{}
	for _, c := range res.Credited {
		if c.Kind != ledger.PaymentPurchase || c.OrgID != reconcileOrg {
			t.Fatalf("credited %+v", c)
		}
		credited[c.PaymentID] = c.Credits.String()
	}
	if len(credited) != 2 || credited[byMetadata] != "20.000" || credited[byCustomer] != "10.000" {
		t.Fatalf("credited %v, want %s: 20 and %s: 10", credited, byMetadata, byCustomer)
	}
	if len(res.Mismatches) != 1 || res.Mismatches[0].Kind != jobs.MismatchUncredited || res.Mismatches[0].PaymentID != belowMinimum {
		t.Fatalf("mismatches %+v, want the payment below the minimum as uncredited", res.Mismatches)
	}
	if got := r.available(); got != credits.MustParse("230") {
		t.Fatalf("available %s, want 200 + 20 + 10", got)
	}

	t.Run("the late webhook credits nothing more", func(t *testing.T) {
		h := &jobs.StripeEventHandler{Ledger: r.ledger, DB: r.pool}
		for i, pi := range []string{byMetadata, byCustomer} {
			id := fmt.Sprintf("evt_late%d", i)
			if _, err := r.ledger.RecordStripeEvent(r.ctx, r.pool, id, "payment_intent.succeeded",
				stripeEvent(id, pi, map[int]int64{0: 20_00, 1: 10_00}[i], map[string]string{"org_id": reconcileOrg}, r.cus)); err != nil {
				t.Fatal(err)
			}
			task, err := jobs.NewStripeEventTask(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.ProcessTask(r.ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		if got := r.available(); got != credits.MustParse("230") {
			t.Fatalf("available %s after the late webhooks, want still 230", got)
		}
	})

	t.Run("mismatches are reported, not repaired", func(t *testing.T) {
		// Credited in the ledger, but Stripe's payment is unpaid, or unknown.
		for _, pi := range []string{unpaid, "pi_unknowntostripe"} {
			r.tx(func(tx pgx.Tx) error {
				_, err := r.ledger.CreditPurchase(r.ctx, tx, reconcileOrg, pi, credits.Money{Minor: 30_00, Currency: "USD"})
				return err
			})
		}
		// A recharge attempt that never reached Stripe, pending too long.
		r.spend("u1", "200") // 290 → 90
		a := r.pendingAttempt()
		r.h.PendingAfter = time.Nanosecond
		before := r.available()

		res := r.reconcile()
		kinds := map[string]jobs.Mismatch{}
		for _, m := range res.Mismatches {
			kinds[m.Kind] = m
		}
		want := map[string]string{jobs.MismatchUncredited: belowMinimum, jobs.MismatchNotSucceeded: unpaid,
			jobs.MismatchMissing: "pi_unknowntostripe", jobs.MismatchPendingStale: ""}
		if len(res.Mismatches) != len(want) || len(res.Credited) != 0 {
			t.Fatalf("result %+v, want only the mismatches %v", res, want)
		}
		for kind, pi := range want {
			m, ok := kinds[kind]
			if !ok || m.PaymentID != pi || m.OrgID != reconcileOrg || m.Detail == "" {
				t.Fatalf("mismatch %s = %+v, want payment %q", kind, m, pi)
			}
		}
		if kinds[jobs.MismatchPendingStale].AttemptID != a.ID {
			t.Fatalf("pending mismatch %+v, want attempt %s", kinds[jobs.MismatchPendingStale], a.ID)
		}
		if got := r.available(); got != before {
			t.Fatalf("available %s, was %s: reconciliation changed credits", got, before)
		}
		if r.pendingAttempt().ID != a.ID {
			t.Fatal("the pending attempt was touched")
		}
		// The first run reported the payment below the minimum too.
		for kind, n := range map[string]float64{jobs.MismatchUncredited: 2, jobs.MismatchNotSucceeded: 1, jobs.MismatchMissing: 1,
			jobs.MismatchPendingStale: 1, jobs.MismatchAmount: 0, jobs.MismatchOtherOrg: 0} {
			if got := r.counter("creditd_payments_reconcile_mismatches_total", kind); got != n {
				t.Errorf("mismatch counter %s = %v, want %v", kind, got, n)
			}
		}
		lines := r.logLines("payment mismatch")
		if len(lines) != 5 {
			t.Fatalf("%d mismatch log lines, want 5 (two runs):\n%s", len(lines), r.logs)
		}
		for _, l := range lines {
			for _, key := range []string{"kind", "org", "payment_id", "attempt_id", "detail", "level"} {
				if _, ok := l[key]; !ok {
					t.Fatalf("log line %v has no %s", l, key)
				}
			}
			if l["level"] != "WARN" {
				t.Fatalf("log line %v is not a warning", l)
			}
		}
	})
	if c := r.fake.Charges(r.cus); c != 31_00 {
		t.Fatalf("Stripe charged %d cents, want only the purchases' 3100: reconciliation never charges", c)
	}
	r.verify()
}

// TestReconcile_PaymentsOff: without Stripe nothing is checked, and the
// result says why.
func TestReconcile_PaymentsOff(t *testing.T) {
	t.Parallel()
	h := &jobs.ReconcileHandler{Ledger: ledger.New(config.DefaultCatalog(), nil), DB: ledgertest.NewPool(t), Log: slog.New(slog.DiscardHandler)}
	now := time.Now()
	res, err := h.Reconcile(context.Background(), []string{"acme"}, now.Add(-time.Hour), now)
	if err != nil || !strings.Contains(res.Skipped, "STRIPE_SECRET_KEY") {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// TestReconcile_BadPayloadsAreArchived: payloads a worker cannot act on fail
// at once, never retried, for the sweep and for a page.
func TestReconcile_BadPayloadsAreArchived(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	window := `"since":"2026-01-01T00:00:00Z","at":"2026-01-02T00:00:00Z"`
	for _, tc := range []struct {
		name    string
		typ     string
		payload string
		field   string
	}{
		{"unknown field", jobs.TypeReconcile, `{"v":1,` + window + `,"x":1}`, "x"},
		{"no at", jobs.TypeReconcile, `{"v":1,"since":"2026-01-01T00:00:00Z"}`, "at"},
		{"since after at", jobs.TypeReconcile, `{"v":1,"since":"2026-01-03T00:00:00Z","at":"2026-01-02T00:00:00Z"}`, "since"},
		{"window too long", jobs.TypeReconcile, fmt.Sprintf(`{"v":1,"since":%q,"at":%q}`, now.AddDate(0, -2, 0).Format(time.RFC3339), now.Format(time.RFC3339)), "since"},
		{"version", jobs.TypeReconcile, `{"v":2,` + window + `}`, "v"},
		{"page without orgs", jobs.TypeReconcilePage, `{"v":1,` + window + `,"orgs":[]}`, "orgs"},
		{"page too large", jobs.TypeReconcilePage, `{"v":1,` + window + `,"orgs":["a"` + strings.Repeat(`,"a"`, jobs.ReconcilePageSize) + `]}`, "orgs"},
		{"page without window", jobs.TypeReconcilePage, `{"v":1,"orgs":["a"]}`, "at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := jobs.NewMux(jobs.Handlers{ReconcileSweep: &jobs.ReconcileSweepHandler{}, Reconcile: &jobs.ReconcileHandler{}})
			err := mux.ProcessTask(context.Background(), asynq.NewTask(tc.typ, []byte(tc.payload)))
			if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want SkipRetry naming %s", err, tc.field)
			}
		})
	}
}

// TestReconcile_SweepFansOutPages runs the scheduled path on a real worker
// (its own redis-server): the sweep pages through five orgs with cards two
// at a time, the three page tasks check them, and their results, summed as
// `creditd reconcile` does, list every customer once and the one purchase
// the ledger lacked, credited once.
func TestReconcile_SweepFansOutPages(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t) // org acme
	orgs := []string{reconcileOrg}
	for _, org := range []string{"o1", "o2", "o3", "o4"} {
		cus, pm := r.fake.NewCustomerWithCard(t, "tok_visa")
		r.tx(func(tx pgx.Tx) error {
			if _, err := r.ledger.CreateOrg(r.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard"}); err != nil {
				return err
			}
			_, err := r.ledger.SetPaymentMethod(r.ctx, tx, ledger.PaymentMethod{OrgID: org, CustomerID: cus, PaymentMethodID: pm})
			return err
		})
		orgs = append(orgs, org)
	}
	r.tx(func(tx pgx.Tx) error { // an org without a card is not visited
		_, err := r.ledger.CreateOrg(r.ctx, tx, ledger.NewOrg{ID: "nocard", Plan: "standard"})
		return err
	})
	pi := r.purchase(25_00, map[string]string{"org_id": reconcileOrg}, true)

	redisOpt := jobstest.StartServer(t).Opt()
	queue := asynq.NewClient(redisOpt)
	client := jobs.NewClient(redisOpt)
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 4, Queues: jobs.QueuePriorities(), LogLevel: asynq.FatalLevel,
		TaskCheckInterval: 20 * time.Millisecond})
	if err := srv.Start(jobs.NewMux(jobs.Handlers{
		ReconcileSweep: &jobs.ReconcileSweepHandler{Ledger: r.ledger, DB: r.pool, Queue: queue, PageSize: 2},
		Reconcile:      r.h,
	})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); queue.Close(); client.Close() })

	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	wait := func(id string, v any) {
		t.Helper()
		info, err := client.Wait(ctx, jobs.QueuePayments, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(info.Result, v); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	id, err := client.Reconcile(ctx, now.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	var sweep jobs.ReconcileSweepResult
	wait(id, &sweep)
	if sweep.Orgs != len(orgs) || len(sweep.Tasks) != 3 || sweep.Partial {
		t.Fatalf("sweep %+v, want %d orgs in 3 pages", sweep, len(orgs))
	}
	var sum jobs.ReconcileResult
	for _, page := range sweep.Tasks {
		var res jobs.ReconcileResult
		wait(page, &res)
		sum.Add(res)
	}
	if sum.Customers != len(orgs) || len(sum.Credited) != 1 || sum.Credited[0].PaymentID != pi || len(sum.Mismatches) != 0 || len(sum.Failed) != 0 {
		t.Fatalf("pages summed %+v, want %d customers and %s credited", sum, len(orgs), pi)
	}
	// The same instant again: the sweep's task id is taken, nothing runs twice.
	if again, err := client.Reconcile(ctx, now.Add(-time.Hour), now); err != nil || again != id {
		t.Fatalf("second enqueue: %q, %v", again, err)
	}
	if got := r.available(); got != credits.MustParse("225") {
		t.Fatalf("available %s, want 200 + 25", got)
	}
	r.verify()
}

// TestReconcile_PackagePurchase: a purchase of a catalog package whose
// webhook never came is credited with the package's credits, as the webhook
// would credit it, not at the catalog's rate.
func TestReconcile_PackagePurchase(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	pi := r.purchase(10_00, map[string]string{"org_id": reconcileOrg, "package": "starter"}, true)
	res := r.reconcile()
	if len(res.Credited) != 1 || res.Credited[0].PaymentID != pi || res.Credited[0].Credits != credits.MustParse("1000") {
		t.Fatalf("credited %+v, want %s: 1000 credits (package starter)", res.Credited, pi)
	}
	if len(res.Mismatches) != 0 {
		t.Fatalf("mismatches %+v", res.Mismatches)
	}
	if got := r.available(); got != credits.MustParse("1200") {
		t.Fatalf("available %s, want 200 + 1000", got)
	}
	r.verify()
}

// TestReconcile_InvoicePaymentsBuyNoCredits: the PaymentIntent that paid a
// Stripe invoice (auto-pay) is the customer's too, but it bought no credits:
// reconciliation leaves it to the invoice's events.
func TestReconcile_InvoicePaymentsBuyNoCredits(t *testing.T) {
	t.Parallel()
	r := newReconcileRig(t)
	if _, err := r.api.InvoiceItems.New(&stripe.InvoiceItemParams{Customer: stripe.String(r.cus), Amount: stripe.Int64(45_00),
		Currency: stripe.String("usd"), Description: stripe.String("professional plan")}); err != nil {
		t.Fatal(err)
	}
	in, err := r.api.Invoices.New(&stripe.InvoiceParams{Customer: stripe.String(r.cus), DefaultPaymentMethod: stripe.String(r.pm),
		CollectionMethod: stripe.String("charge_automatically"), PendingInvoiceItemsBehavior: stripe.String("include")})
	if err != nil {
		t.Fatal(err)
	}
	paid, err := r.api.Invoices.Pay(in.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if paid.Status != stripe.InvoiceStatusPaid || paid.PaymentIntent == nil {
		t.Fatalf("invoice %s is %s with payment %v, want paid by a PaymentIntent", paid.ID, paid.Status, paid.PaymentIntent)
	}
	before := r.available()
	res := r.reconcile()
	if len(res.Credited) != 0 || len(res.Mismatches) != 0 {
		t.Fatalf("result %+v, want nothing credited or reported for an invoice's payment", res)
	}
	if res.PaymentIntents == 0 {
		t.Fatal("the invoice's PaymentIntent was not listed: the test checks nothing")
	}
	if got := r.available(); got != before {
		t.Fatalf("available %s, was %s", got, before)
	}
	r.verify()
}
