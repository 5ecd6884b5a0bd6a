package jobs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
	"github.com/creditd/creditd/notify"
)

// alertsRedisDB is the Redis database of the alert delivery test.
const alertsRedisDB = 4

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a real HTTP webhook receiver that refuses each message's
// first failFirst attempts with a 500, and answers status otherwise.
type receiver struct {
	failFirst int
	status    int

	mu       sync.Mutex
	attempts map[string][]attempt // by webhook-id
}

type attempt struct {
	status int
	body   string
	err    error // of signature verification
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	verr := notify.Verify(hookSecret, r.Header, body, time.Now(), 5*time.Minute)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	status := rc.status
	if len(rc.attempts[id]) < rc.failFirst {
		status = http.StatusInternalServerError
	}
	rc.attempts[id] = append(rc.attempts[id], attempt{status: status, body: string(body), err: verr})
	w.WriteHeader(status)
}

func (rc *receiver) byID() map[string][]attempt {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string][]attempt, len(rc.attempts))
	for k, v := range rc.attempts {
		out[k] = slices.Clone(v)
	}
	return out
}

type alertRig struct {
	t      *testing.T
	ctx    context.Context
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	client *jobs.Client
	insp   *asynq.Inspector
	smtp   *jobstest.SMTPServer
}

// newAlertRig runs a worker with the usage, delivery and recharge handlers
// (charging through charger), the relay, a real SMTP server and real webhook
// receivers.
func newAlertRig(t *testing.T, redisDB int, charger jobs.Charger) *alertRig {
	t.Helper()
	redisOpt := jobstest.Redis(t, redisDB)
	r := &alertRig{t: t, ctx: context.Background(), pool: ledgertest.NewPool(t), ledger: ledger.New(config.DefaultCatalog(), nil),
		client: jobs.NewClient(redisOpt), insp: asynq.NewInspector(redisOpt), smtp: jobstest.NewSMTPServer(t)}
	email, err := notify.NewEmailSender("smtp://"+r.smtp.Addr+"?starttls=none", "alerts@creditd.test", notify.EmailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batcher := ledger.NewBatcher(r.ledger, r.pool, ledger.BatchConfig{}, nil)
	bctx, stopBatcher := context.WithCancel(context.Background())
	batcherDone := make(chan struct{})
	go func() { batcher.Run(bctx); close(batcherDone) }()
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 64, Queues: jobs.QueuePriorities(), LogLevel: asynq.FatalLevel,
		RetryDelayFunc: jobs.RetryDelay, DelayedTaskCheckInterval: 100 * time.Millisecond, TaskCheckInterval: 20 * time.Millisecond})
	mux := jobs.NewMux(jobs.Handlers{
		Usage: &jobs.UsageHandler{Batcher: batcher},
		Deliver: &jobs.DeliverHandler{Ledger: r.ledger, DB: r.pool, Email: email,
			Webhook: notify.NewWebhookSender(notify.WebhookOptions{AllowPrivate: true}), LinkBase: "https://app.example.com"},
		Recharge: &jobs.RechargeHandler{Ledger: r.ledger, DB: r.pool, Charger: charger},
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	relay := &jobs.Relay{Ledger: r.ledger, DB: r.pool, Client: r.client, Interval: 20 * time.Millisecond}
	rctx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan struct{})
	go func() { relay.Run(rctx); close(relayDone) }()
	t.Cleanup(func() {
		stopRelay()
		<-relayDone
		srv.Shutdown()
		stopBatcher()
		<-batcherDone
		r.client.Close()
		r.insp.Close()
	})
	return r
}

func (r *alertRig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	if err := ledger.WithTx(r.ctx, r.pool, fn); err != nil {
		r.t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *alertRig) notifications(org string) []ledger.Notification {
	r.t.Helper()
	ns, err := r.ledger.Notifications(r.ctx, r.pool, org, 0, ledger.MaxNotificationsPage)
	if err != nil {
		r.t.Fatal(err)
	}
	return ns
}

// settled reports whether every delivery of the org is done.
func (r *alertRig) settled(org string, want int) bool {
	ns := r.notifications(org)
	if len(ns) != want {
		return false
	}
	for _, n := range ns {
		for _, d := range n.Deliveries {
			if d.Status == ledger.DeliveryPending {
				return false
			}
		}
	}
	return true
}

// spend sends n usage tasks of amount credits each from n goroutines and
// waits until the balance shows them all.
func (r *alertRig) spend(org, prefix string, n int, amount string, wantAvailable string) {
	r.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.client.RecordUsage(r.ctx, org, fmt.Sprintf("%s-%d", prefix, i), jobs.WithAmount(credits.MustParse(amount)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			r.t.Fatal(err)
		}
	}
	waitFor(r.t, "the usage to be applied", 30*time.Second, func() bool {
		b, err := r.ledger.Balance(r.ctx, r.pool, org)
		return err == nil && b.Available == credits.MustParse(wantAvailable)
	})
}

func TestAlerts_EndToEndDelivery(t *testing.T) {
	t.Parallel()
	r := newAlertRig(t, alertsRedisDB, nil)
	flaky := &receiver{failFirst: 2, status: http.StatusNoContent, attempts: map[string][]attempt{}}
	gone := &receiver{status: http.StatusGone, attempts: map[string][]attempt{}}
	flakySrv, goneSrv := httptest.NewServer(flaky), httptest.NewServer(gone)
	t.Cleanup(flakySrv.Close)
	t.Cleanup(goneSrv.Close)

	const org = "acme"
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	r.tx(func(tx pgx.Tx) error {
		if _, err := r.ledger.CreateOrg(r.ctx, tx, ledger.NewOrg{ID: org, Plan: "standard", Anchor: &start, Emails: []string{"admin@acme.test"}}); err != nil {
			return err
		}
		_, err := r.ledger.AdvanceCycles(r.ctx, tx, []string{org}, now)
		return err
	})
	for _, u := range []string{flakySrv.URL + "/hooks", goneSrv.URL + "/hooks"} {
		if err := jobs.CheckWebhook(u, hookSecret, notify.WebhookOptions{AllowPrivate: true}); err != nil {
			t.Fatal(err)
		}
		r.tx(func(tx pgx.Tx) error { _, err := r.ledger.AddWebhook(r.ctx, tx, org, u, hookSecret); return err })
	}

	// 64 concurrent usage tasks take the org's 1,000 credits through 20%,
	// 5% and zero.
	r.spend(org, "a", 64, "16", "-24")
	waitFor(t, "3 alerts delivered", 60*time.Second, func() bool { return r.settled(org, 3) })

	ns := r.notifications(org)
	var kinds []string
	for i := len(ns) - 1; i >= 0; i-- {
		k := string(ns[i].Kind)
		if ns[i].Percent != nil {
			k += ":" + ns[i].Percent.String()
		}
		kinds = append(kinds, k)
	}
	if strings.Join(kinds, ",") != "below_percent:20,below_percent:5,depleted" {
		t.Fatalf("alerts %v, want each threshold once, in order", kinds)
	}
	for _, n := range ns {
		got := map[string]string{}
		for _, d := range n.Deliveries {
			got[d.Channel+"@"+d.Target] = fmt.Sprintf("%s/%d", d.Status, d.Attempts)
		}
		if len(got) != 3 {
			t.Fatalf("notification %s has deliveries %v, want email + 2 webhooks", n.MessageID, got)
		}
		for k, v := range got {
			switch {
			case k == "email@admin@acme.test" && v != "delivered/1":
				t.Errorf("%s: email %s, want delivered at the first attempt", n.MessageID, v)
			case strings.HasPrefix(k, "webhook@") && v != "delivered/3" && v != "failed/1":
				t.Errorf("%s: %s %s, want delivered after 3 attempts (flaky) or failed at once (410)", n.MessageID, k, v)
			}
		}
	}

	// Email: one message per alert, to the admin, with the alert's id.
	mails := r.smtp.Mail()
	if len(mails) != 3 {
		t.Fatalf("%d emails, want 3", len(mails))
	}
	for _, n := range ns {
		i := slices.IndexFunc(mails, func(m jobstest.Mail) bool {
			return strings.Contains(m.Msg.Header.Get("Message-Id"), n.MessageID)
		})
		if i < 0 {
			t.Fatalf("no email with Message-ID of %s", n.MessageID)
		}
		m := mails[i]
		want := notify.Render(jobs.AlertMessage(n), "https://app.example.com")
		if m.From != "alerts@creditd.test" || len(m.To) != 1 || m.To[0] != "admin@acme.test" || m.Msg.Header.Get("Subject") != want.Title ||
			!strings.Contains(m.Body, "https://app.example.com/orgs/acme/billing") || !strings.Contains(m.Body, "acme") {
			t.Errorf("email for %s: from %s to %v subject %q body %q; want subject %q", n.MessageID, m.From, m.To,
				m.Msg.Header.Get("Subject"), m.Body, want.Title)
		}
	}

	// The flaky receiver saw each message three times (two 500s, then a
	// success) under one webhook-id, each signed; the 410 receiver once.
	flakyGot, goneGot := flaky.byID(), gone.byID()
	for _, n := range ns {
		a := flakyGot[n.MessageID]
		if len(a) != 3 || a[0].status != 500 || a[1].status != 500 || a[2].status != http.StatusNoContent {
			t.Errorf("flaky receiver got %s %d times (%+v), want 500, 500, 204", n.MessageID, len(a), a)
		}
		for _, at := range a {
			if at.err != nil {
				t.Errorf("signature of %s: %v", n.MessageID, at.err)
			}
			if !strings.Contains(at.body, `"message_id":"`+n.MessageID+`"`) || !strings.Contains(at.body, `"org_id":"acme"`) {
				t.Errorf("webhook body %s", at.body)
			}
		}
		if g := goneGot[n.MessageID]; len(g) != 1 {
			t.Errorf("410 receiver got %s %d times, want once", n.MessageID, len(g))
		}
	}
	if len(flakyGot) != 3 || len(goneGot) != 3 {
		t.Fatalf("receivers saw %d and %d messages, want 3 each", len(flakyGot), len(goneGot))
	}

	// A top-up above the thresholds re-arms them; spending down fires them again.
	r.tx(func(tx pgx.Tx) error {
		_, err := r.ledger.Grant(r.ctx, tx, ledger.Grant{OrgID: org, Amount: credits.MustParse("1024"), Source: ledger.SourcePromo, Key: "topup"})
		return err
	})
	r.spend(org, "b", 64, "16", "-24")
	waitFor(t, "6 alerts delivered", 60*time.Second, func() bool { return r.settled(org, 6) })
	if n := len(r.smtp.Mail()); n != 6 {
		t.Fatalf("%d emails after the second descent, want 6", n)
	}

	// Nothing is sent again: every task is done and no delivery is pending.
	time.Sleep(300 * time.Millisecond)
	if n := len(r.smtp.Mail()); n != 6 {
		t.Fatalf("%d emails a while later, want still 6", n)
	}
	archived, err := r.insp.ListArchivedTasks(jobs.QueueNotify)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 6 {
		t.Fatalf("%d archived deliveries, want the 6 refused by the 410 receiver", len(archived))
	}
	for _, a := range archived {
		if !strings.Contains(a.LastErr, "410") {
			t.Errorf("archived delivery's error %q does not name the 410", a.LastErr)
		}
	}
}

// relayRedisDB is the Redis database of the relay test (no worker runs).
const relayRedisDB = 2

func TestRelay_ReplacesTaskArchivedWhilePending(t *testing.T) {
	t.Parallel()
	redisOpt := jobstest.Redis(t, relayRedisDB)
	ctx := context.Background()
	clock := ledgertest.NewClock(time.Now().UTC())
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), clock)
	client, insp := jobs.NewClient(redisOpt), asynq.NewInspector(redisOpt)
	t.Cleanup(func() { client.Close(); insp.Close() })
	relay := &jobs.Relay{Ledger: l, DB: pool, Client: client, Clock: clock, Stale: 10 * time.Minute}

	if err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: "acme", Plan: "standard", Emails: []string{"a@acme.test"}}); err != nil {
			return err
		}
		amount := credits.MustParse("5")
		_, _, err := l.AddAlertRule(ctx, tx, ledger.NewAlertRule{OrgID: "acme", Kind: ledger.AlertBelow, Amount: &amount})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pass := func(want int) {
		t.Helper()
		n, err := relay.Pass(ctx)
		if err != nil || n != want {
			t.Fatalf("relay pass = %d, %v; want %d", n, err, want)
		}
	}
	state := func() asynq.TaskState {
		t.Helper()
		ns, err := l.Notifications(ctx, pool, "acme", 0, 10)
		if err != nil || len(ns) != 1 || len(ns[0].Deliveries) != 1 {
			t.Fatalf("notifications %+v, %v", ns, err)
		}
		info, err := insp.GetTaskInfo(jobs.QueueNotify, jobs.DeliverTaskID(ledger.DeliveryRef{OrgID: "acme", ID: ns[0].Deliveries[0].ID}))
		if err != nil {
			t.Fatal(err)
		}
		if err := insp.ArchiveTask(jobs.QueueNotify, info.ID); err != nil && info.State != asynq.TaskStateArchived {
			t.Fatal(err)
		}
		return info.State
	}
	pass(1) // the alert the rule fired when added (a zero balance is at or below 5)
	if s := state(); s != asynq.TaskStatePending {
		t.Fatalf("task %v after the first pass, want pending", s)
	}
	// state() archived it, as asynq does when a worker dies in the last
	// attempt; the row is still pending.
	pass(0) // not stale yet
	clock.Advance(11 * time.Minute)
	pass(1)
	if s := state(); s != asynq.TaskStatePending {
		t.Fatalf("task %v after the stale pass, want a fresh pending task", s)
	}
	// Delivered rows are never handed over again.
	ns, _ := l.Notifications(ctx, pool, "acme", 0, 10)
	ref := ledger.DeliveryRef{OrgID: "acme", ID: ns[0].Deliveries[0].ID}
	if ok, err := l.RecordAttempt(ctx, pool, ref, ledger.DeliveryDelivered, ""); !ok || err != nil {
		t.Fatalf("RecordAttempt = %v, %v", ok, err)
	}
	clock.Advance(11 * time.Minute)
	pass(0)
}
