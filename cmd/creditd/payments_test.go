package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/jobs/payments/stripefake"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// stripeTestKey is the secret key the payment cases give creditd: the fake
// takes any sk_test_ key.
const stripeTestKey = "sk_test_creditd_cli"

// rechargeShown is `recharge show --json`.
type rechargeShown struct {
	Enabled   bool `json:"enabled"`
	Paused    bool `json:"paused"`
	LastError *struct {
		Code        string `json:"code"`
		DeclineCode string `json:"decline_code"`
		Message     string `json:"message"`
	} `json:"last_error"`
	Attempts []ledger.RechargeAttempt `json:"attempts"`
}

func (c *cli) recharge(org string) rechargeShown {
	c.t.Helper()
	var r rechargeShown
	c.json(0, &r, "recharge", "show", org, "--json")
	return r
}

// waitUntil polls cond every 50 ms until it holds, failing the test after d.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startKillableWorker runs `creditd worker` with env; the test may SIGKILL
// it. Whatever is left running when the test ends is killed.
func startKillableWorker(t *testing.T, bin string, env []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	cmd := exec.Command(bin, "worker", "--concurrency", "4")
	cmd.Env, cmd.Stderr = env, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.Process.Kill() == nil {
			_ = cmd.Wait()
		}
	})
	return cmd, logs
}

// testRechargeWorkerKilled kills a real worker (SIGKILL) while Stripe has
// charged the card and the worker waits for the answer, before any commit.
// After a restart the task runs again once its lease has expired, Stripe
// replays the charge under the attempt's idempotency key, and the credits
// arrive exactly once.
func testRechargeWorkerKilled(t *testing.T, c *cli) {
	fake := stripefake.New(t)
	cus, pm := fake.NewCustomerWithCard(t, "tok_visa")
	redisSrv := jobstest.StartServer(t)
	env := append(c.env, config.EnvRedisURL+"="+jobstest.URL(redisSrv.Opt()),
		config.EnvStripeSecretKey+"="+stripeTestKey, config.EnvStripeAPIBase+"="+fake.URL)
	c.env = env
	c.ok("org", "create", "k1", "--plan", "enterprise")
	c.ok("grant", "k1", "100", "--source", "promo", "--key", "welcome")
	c.ok("payment-method", "set", "k1", "--customer", cus, "--payment-method", pm, "--brand", "visa", "--last4", "4242")
	c.ok("recharge", "set", "k1", "--threshold", "20", "--amount", "100")

	// The charge succeeds at Stripe, which then holds its answer.
	fake.FailNext("/v1/payment_intents", 1, stripefake.FaultHoldResponse)
	w, logs := startKillableWorker(t, c.bin, env)
	c.ok("usage", "k1", "85", "--event", "e1", "--wait") // 100 → 15: at or below 20
	waitUntil(t, "Stripe to charge the card", 30*time.Second, func() bool { return fake.Charges(cus) == 100_00 })
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait() // killed: its exit status is the signal
	r := c.recharge("k1")
	if len(r.Attempts) != 1 || r.Attempts[0].Status != ledger.RechargePending {
		t.Fatalf("after the kill: attempts %+v, want one pending (nothing committed)\n%s", r.Attempts, logs)
	}
	attempt := r.Attempts[0].ID

	// asynq's recoverer takes back a task whose lease expired at least 30 s
	// ago; a worker's recoverer runs when it starts, then every minute. So
	// start the second worker once that is true, not before.
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Opt().Addr})
	defer rdb.Close()
	taskID := jobs.RechargeTaskID(ledger.RechargeRef{OrgID: "k1", AttemptID: attempt})
	expiry, err := rdb.ZScore(context.Background(), "asynq:{"+jobs.QueuePayments+"}:lease", taskID).Result()
	if err != nil {
		t.Fatalf("the killed worker's lease on %s: %v", taskID, err)
	}
	recoverable := time.Unix(int64(expiry), 0).Add(31 * time.Second)
	if d := time.Until(recoverable); d > 0 {
		if d > 90*time.Second {
			t.Fatalf("lease expires in %v: more than asynq's 30 s lease", d)
		}
		time.Sleep(d)
	}
	_, logs = startKillableWorker(t, c.bin, env)
	waitUntil(t, "the restarted worker to credit the charge", 60*time.Second, func() bool {
		r = c.recharge("k1")
		return len(r.Attempts) == 1 && r.Attempts[0].Status == ledger.RechargeSucceeded
	})

	if got := fake.Charges(cus); got != 100_00 {
		t.Fatalf("Stripe charged %d cents, want 10000 once", got)
	}
	var charges, replays int
	for _, req := range fake.Requests() {
		if req.Method == "POST" && req.Path == "/v1/payment_intents" {
			charges++
			if req.Replayed {
				replays++
			}
		}
	}
	if charges != 2 || replays != 1 || len(fake.PaymentIntents()) != 1 {
		t.Fatalf("%d charge requests (%d replayed), %d payment intents; want the held one, then its replay, one payment intent\n%s",
			charges, replays, len(fake.PaymentIntents()), logs)
	}
	var bal struct {
		Available string `json:"available"`
		Lots      []struct {
			Source string `json:"source"`
		} `json:"lots"`
	}
	c.json(0, &bal, "balance", "k1", "--json")
	recharged := 0
	for _, l := range bal.Lots {
		if l.Source == "recharge" {
			recharged++
		}
	}
	if bal.Available != "115.000" || recharged != 1 {
		t.Fatalf("balance %+v, want 115 with one recharge lot", bal)
	}
	c.ok("verify")
}

// fakeProcess is cmd/stripefake running as a process of its own.
type fakeProcess struct {
	url, customer string
	cards         []string
	logs          *syncBuffer
}

// startStripeFake builds and runs cmd/stripefake with a customer holding
// one card per token, and reads what it prints.
func startStripeFake(t *testing.T, tokens ...string) fakeProcess {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stripefake")
	if out, err := exec.Command("go", "build", "-o", bin, "../stripefake").CombinedOutput(); err != nil {
		t.Fatalf("go build stripefake: %v\n%s", err, out)
	}
	args := []string{"--addr", "127.0.0.1:0"}
	for _, tok := range tokens {
		args = append(args, "--card", tok)
	}
	cmd := exec.Command(bin, args...)
	f := fakeProcess{logs: new(syncBuffer)}
	cmd.Stderr = f.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	for f.url == "" || f.customer == "" || len(f.cards) < len(tokens) {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("stripefake exited early:\n%s", f.logs)
			}
			name, value, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			value, _, _ = strings.Cut(value, " ")
			switch {
			case name == "STRIPE_API_BASE":
				f.url = value
			case name == "FAKE_CUSTOMER":
				f.customer = value
			case strings.HasPrefix(name, "FAKE_CARD_"):
				f.cards = append(f.cards, value)
			}
		case <-timeout:
			t.Fatalf("stripefake did not print its settings within 30 s:\n%s", f.logs)
		}
	}
	return f
}

// payments lists the customer's PaymentIntents through the Stripe API, as
// an operator would.
func (f fakeProcess) payments(t *testing.T) (succeeded int, charged int64, all int) {
	t.Helper()
	it := f.api().PaymentIntents.List(&stripe.PaymentIntentListParams{Customer: stripe.String(f.customer)})
	for it.Next() {
		pi := it.PaymentIntent()
		all++
		if pi.Status == stripe.PaymentIntentStatusSucceeded {
			succeeded++
			charged += pi.AmountReceived
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return succeeded, charged, all
}

// testPaymentsWalkthrough is the README's walkthrough on the real binaries:
// `creditd all` pointed at cmd/stripefake. An org spends down, the card is
// charged once and the credits arrive once; a declining card gives one
// alert, a visible last error and no further charges; reconciliation finds
// nothing to repair; verify is clean.
func testPaymentsWalkthrough(t *testing.T, c *cli) {
	fake := startStripeFake(t, "tok_visa", "tok_chargeDeclinedInsufficientFunds")
	good, declining := fake.cards[0], fake.cards[1]
	redisSrv := jobstest.StartServer(t)
	c.env = append(c.env, config.EnvRedisURL+"="+jobstest.URL(redisSrv.Opt()), config.EnvHTTPAddr+"=127.0.0.1:0",
		config.EnvStripeSecretKey+"="+stripeTestKey, config.EnvStripeAPIBase+"="+fake.url)
	base, stop := startServing(t, c.bin, c.env, "all", `"creditd all stopped"`)

	c.ok("org", "create", "walk", "--plan", "enterprise", "--email", "admin@walk.example")
	c.ok("grant", "walk", "100", "--source", "promo", "--key", "welcome")
	c.ok("payment-method", "set", "walk", "--customer", fake.customer, "--payment-method", good, "--brand", "visa", "--last4", "4242")
	if out := c.ok("recharge", "set", "walk", "--threshold", "20", "--amount", "100"); !strings.Contains(out, "at or below 20.000 credits, buy 100.000 credits") {
		t.Fatalf("recharge set printed %q", out)
	}

	// Spending down to 15 charges the card once for 100 credits (100.00).
	c.ok("usage", "walk", "85", "--event", "e1", "--wait")
	waitUntil(t, "the recharge to succeed", 30*time.Second, func() bool {
		r := c.recharge("walk")
		return len(r.Attempts) == 1 && r.Attempts[0].Status == ledger.RechargeSucceeded
	})
	if succeeded, charged, _ := fake.payments(t); succeeded != 1 || charged != 100_00 {
		t.Fatalf("Stripe: %d succeeded payments for %d cents, want one of 10000", succeeded, charged)
	}
	if got := c.balanceWithoutAt("walk"); !strings.Contains(got, `"available":"115.000"`) {
		t.Fatalf("balance %s, want 115", got)
	}

	// The card on file now declines: one failed attempt with Stripe's codes,
	// auto-recharge paused with it as the last error, one alert.
	c.ok("payment-method", "set", "walk", "--customer", fake.customer, "--payment-method", declining, "--brand", "visa", "--last4", "9995")
	c.ok("usage", "walk", "100", "--event", "e2", "--wait") // 115 → 15
	waitUntil(t, "the charge to be declined", 30*time.Second, func() bool {
		r := c.recharge("walk")
		return len(r.Attempts) == 2 && r.Attempts[0].Status == ledger.RechargeFailed
	})
	r := c.recharge("walk")
	if !r.Paused || r.LastError == nil || r.LastError.Code != "card_declined" || r.LastError.DeclineCode != "insufficient_funds" {
		t.Fatalf("recharge show: %+v, want paused with card_declined/insufficient_funds", r)
	}
	if out := c.ok("recharge", "show", "walk"); !strings.Contains(out, "PAUSED") || !strings.Contains(out, "insufficient_funds") {
		t.Fatalf("recharge show does not show the last error:\n%s", out)
	}
	// Spending on charges nothing more.
	c.ok("usage", "walk", "10", "--event", "e3", "--wait")
	time.Sleep(time.Second) // a relay would hand over a new attempt within 100 ms
	if r := c.recharge("walk"); len(r.Attempts) != 2 {
		t.Fatalf("%d attempts after the decline, want no new one", len(r.Attempts))
	}
	if succeeded, charged, all := fake.payments(t); succeeded != 1 || charged != 100_00 || all != 2 {
		t.Fatalf("Stripe: %d payment intents, %d succeeded for %d cents; want the charge and the declined one", all, succeeded, charged)
	}
	var notes struct {
		Notifications []struct {
			Kind string `json:"kind"`
		} `json:"notifications"`
	}
	c.json(0, &notes, "notifications", "walk", "--json")
	failed := 0
	for _, n := range notes.Notifications {
		if n.Kind == string(ledger.AlertRechargeFailed) {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d recharge_failed notifications, want 1: %+v", failed, notes)
	}

	// Reconciliation agrees with Stripe: nothing to credit, nothing wrong.
	var rec jobs.ReconcileResult
	c.json(0, &rec, "reconcile", "--since", "1h", "--json")
	if rec.Customers != 1 || rec.PaymentIntents != 2 || len(rec.Credited) != 0 || len(rec.Mismatches) != 0 {
		t.Fatalf("reconcile = %+v, want two payment intents checked and nothing to do", rec)
	}
	c.ok("verify")

	// Then a purchase whose webhook never came is credited by `creditd
	// reconcile`, once; a payment the ledger credited that Stripe never made
	// is reported (exit 1, a log line, the metric) and keeps its credits.
	pi := fake.purchase(t, good, 20_00, "walk")
	c.json(0, &rec, "reconcile", "--since", "1h", "--json")
	if len(rec.Credited) != 1 || rec.Credited[0].PaymentID != pi || rec.Credited[0].Kind != ledger.PaymentPurchase || len(rec.Mismatches) != 0 {
		t.Fatalf("reconcile = %+v, want the purchase %s credited", rec, pi)
	}
	c.json(0, &rec, "reconcile", "--since", "1h", "--json")
	if len(rec.Credited) != 0 {
		t.Fatalf("second reconcile = %+v, want nothing credited", rec)
	}
	pool := ledgertest.Pool(t, c.url)
	l := ledger.New(config.DefaultCatalog(), nil)
	if err := ledger.WithTx(context.Background(), pool, func(tx pgx.Tx) error {
		_, err := l.CreditPurchase(context.Background(), tx, "walk", "pi_neverpaid", credits.Money{Minor: 10_00, Currency: "USD"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.json(1, &rec, "reconcile", "--since", "1h", "--json")
	if len(rec.Mismatches) != 1 || rec.Mismatches[0].Kind != jobs.MismatchMissing || rec.Mismatches[0].PaymentID != "pi_neverpaid" {
		t.Fatalf("reconcile = %+v, want pi_neverpaid reported missing in Stripe", rec)
	}
	if got := c.balanceWithoutAt("walk"); !strings.Contains(got, `"available":"35.000"`) {
		t.Fatalf("balance %s, want 5 + 20 + 10: nothing taken back", got)
	}
	_, metrics := httpDo(t, "GET", base+"/metrics", "", nil)
	for _, want := range []string{`creditd_payments_reconcile_credited_total{kind="purchase"} 1`,
		`creditd_payments_reconcile_mismatches_total{kind="missing_in_stripe"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics has no %s", want)
		}
	}
	c.ok("verify")
	if logs := stop(); !strings.Contains(logs, `"msg":"payment mismatch","kind":"missing_in_stripe","org":"walk","payment_id":"pi_neverpaid"`) {
		t.Fatalf("no mismatch line in the log:\n%s", logs)
	}
}

// purchase pays amount (minor units) with a card of the fake's customer, for
// org by metadata, through the Stripe API: what a host application's
// checkout does.
func (f fakeProcess) purchase(t *testing.T, card string, amount int64, org string) string {
	t.Helper()
	p := &stripe.PaymentIntentParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd"), Customer: stripe.String(f.customer),
		PaymentMethod: stripe.String(card), Confirm: stripe.Bool(true)}
	p.AddMetadata("org_id", org)
	pi, err := f.api().PaymentIntents.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return pi.ID
}

func (f fakeProcess) api() *client.API {
	api := &client.API{}
	api.Init(stripeTestKey, &stripe.Backends{API: stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(f.url), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})})
	return api
}
