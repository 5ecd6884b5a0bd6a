package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

// cycleRig is a simulated deployment: a settable clock, workers serving the
// sweep queue against one database, and schedulers ticking by that clock.
type cycleRig struct {
	t      *testing.T
	clock  *ledgertest.Clock
	ledger *ledger.Ledger
	pool   *pgxpool.Pool
	client *jobs.Client
	insp   *asynq.Inspector
	queue  *asynq.Client
}

// newCycleRig starts `workers` asynq servers that share one ledger and clock,
// as separate worker processes would.
func newCycleRig(t *testing.T, start time.Time, workers, pageSize int) *cycleRig {
	t.Helper()
	return newBillingRig(t, start, workers, pageSize, nil)
}

// newBillingRig is newCycleRig whose workers also charge invoices through
// invoicer (nil: payments are off).
func newBillingRig(t *testing.T, start time.Time, workers, pageSize int, invoicer jobs.Invoicer) *cycleRig {
	t.Helper()
	redisOpt := testRedis(t)
	r := &cycleRig{t: t, clock: ledgertest.NewClock(start), pool: ledgertest.NewPool(t)}
	r.ledger = ledger.New(config.DefaultCatalog(), r.clock)
	r.client = jobs.NewClient(redisOpt)
	r.insp = asynq.NewInspector(redisOpt)
	queue := asynq.NewClient(redisOpt)
	r.queue = queue
	for i := 0; i < workers; i++ {
		srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 4, Queues: jobs.QueuePriorities(), LogLevel: asynq.FatalLevel,
			RetryDelayFunc: jobs.RetryDelay})
		mux := jobs.NewMux(jobs.Handlers{
			Sweep:      &jobs.SweepHandler{Ledger: r.ledger, DB: r.pool, Queue: queue, PageSize: pageSize},
			Advance:    &jobs.AdvanceHandler{Ledger: r.ledger, DB: r.pool},
			Invoice:    &jobs.InvoiceHandler{Ledger: r.ledger, DB: r.pool, Queue: queue},
			InvoicePay: &jobs.InvoicePayHandler{Ledger: r.ledger, DB: r.pool, Invoicer: invoicer, Clock: r.clock},
		})
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	t.Cleanup(func() { r.client.Close(); r.insp.Close(); queue.Close() })
	return r
}

// sweepSchedule is the default schedule's sweeps of due work: these rigs
// serve no payments (reconciliation has its own tests).
func sweepSchedule() config.Schedule {
	s := config.DefaultSchedule()
	delete(s, config.JobReconcile)
	return s
}

func (r *cycleRig) scheduler() *jobs.Scheduler {
	r.t.Helper()
	s, err := jobs.NewScheduler(r.client, sweepSchedule(), r.clock, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *cycleRig) org(id, plan string, anchor time.Time, zone string) {
	r.t.Helper()
	ctx := context.Background()
	err := ledger.WithTx(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := r.ledger.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: plan, Anchor: &anchor, TimeZone: zone})
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

// tickAll has every scheduler tick every job at the clock's instant, all at
// once, then waits until the workers have done what the ticks enqueued.
func (r *cycleRig) tickAll(scheds ...*jobs.Scheduler) {
	r.t.Helper()
	at := r.clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(scheds)*3)
	for _, s := range scheds {
		for _, job := range sweepSchedule().Jobs() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Tick(context.Background(), job, at); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		r.t.Fatal(err)
	}
	r.drain()
}

func (r *cycleRig) drain() {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		q, err := r.insp.GetQueueInfo(jobs.QueueSweeps)
		if err != nil {
			r.t.Fatal(err)
		}
		if q.Pending+q.Active+q.Scheduled+q.Retry == 0 {
			if q.Archived > 0 {
				archived, _ := r.insp.ListArchivedTasks(jobs.QueueSweeps)
				r.t.Fatalf("%d sweep tasks archived, first: %+v", q.Archived, archived[0])
			}
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("sweeps queue did not drain: %+v", q)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allocations returns the keys of the org's allocation lots' grant entries.
func (r *cycleRig) entries(org string) []ledger.Entry {
	r.t.Helper()
	es, err := r.ledger.History(context.Background(), r.pool, org, 0, ledger.MaxHistoryPage)
	if err != nil {
		r.t.Fatal(err)
	}
	return es
}

func (r *cycleRig) verify() {
	r.t.Helper()
	rep, err := r.ledger.Verify(context.Background(), r.pool)
	if err != nil || !rep.OK {
		r.t.Fatalf("verify: %+v %v", rep.Violations, err)
	}
}

// TestScheduler_TwoSchedulersThreeWorkers runs two schedulers and three
// workers over two simulated months, ticking daily and around the month
// boundary: every org is granted each cycle exactly once, each tick is
// swept once however many schedulers fired it, and the ledger verifies.
func TestScheduler_TwoSchedulersThreeWorkers(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := newCycleRig(t, start, 3, 7) // a small page, so sweeps fan out to several tasks
	plans := []string{"free", "membership", "standard", "professional"}
	const orgs = 40
	for i := 0; i < orgs; i++ {
		r.org(fmt.Sprintf("o%02d", i), plans[i%len(plans)], start, "UTC")
	}
	s1, s2 := r.scheduler(), r.scheduler()

	ticks := 0
	for day := 0; day < 62; day++ {
		r.clock.Set(start.AddDate(0, 0, day).Add(30 * time.Minute))
		r.tickAll(s1, s2)
		ticks++
	}
	// Jan 1, Feb 1 and Mar 1 have come: three cycles each.
	for i := 0; i < orgs; i++ {
		org := fmt.Sprintf("o%02d", i)
		var grants []string
		for _, e := range r.entries(org) {
			if e.Kind == "grant" && strings.HasPrefix(e.Key, "allocation:") {
				grants = append(grants, e.Key)
			}
		}
		want := []string{"allocation:2026-01-01T00:00:00Z", "allocation:2026-02-01T00:00:00Z", "allocation:2026-03-01T00:00:00Z"}
		if strings.Join(grants, ",") != strings.Join(want, ",") {
			t.Fatalf("%s (%s) allocations %v, want %v", org, plans[i%len(plans)], grants, want)
		}
	}
	completed, err := r.insp.ListCompletedTasks(jobs.QueueSweeps, asynq.PageSize(100000))
	if err != nil {
		t.Fatal(err)
	}
	sweeps := 0
	for _, c := range completed {
		if c.Type == jobs.TypeSweep {
			sweeps++
		}
	}
	if want := ticks * len(sweepSchedule()); sweeps != want {
		t.Fatalf("%d sweeps ran for %d ticks of %d jobs by two schedulers, want %d (one per tick and job)", sweeps, ticks, len(sweepSchedule()), want)
	}
	r.verify()
}

// TestScheduler_CatchUp stops the scheduler for three days across a cycle
// boundary: when it starts again its first ticks grant the new cycle once
// and expire the old cycle's credits, dated when they were due.
func TestScheduler_CatchUp(t *testing.T) {
	start := time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)
	r := newCycleRig(t, start, 1, 0)
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.org("free", "free", anchor, "UTC")
	r.org("pro", "professional", anchor, "UTC")
	s := r.scheduler()
	r.tickAll(s)

	ctx := context.Background()
	err := ledger.WithTx(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := r.ledger.RecordUsage(ctx, tx, []ledger.UsageEvent{
			{OrgID: "free", EventID: "u1", Amount: ptr(credits.MustParse("30"))},
			{OrgID: "pro", EventID: "u1", Amount: ptr(credits.MustParse("1000"))},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Down from Jan 30 to Feb 2; the restarted scheduler ticks at once.
	r.clock.Set(time.Date(2026, 2, 2, 12, 0, 0, 0, time.UTC))
	restarted := r.scheduler()
	restarted.Start()
	<-restarted.Ready()
	restarted.Stop()
	r.drain()

	bal := func(org string) credits.Credits {
		b, err := r.ledger.Balance(ctx, r.pool, org)
		if err != nil {
			t.Fatal(err)
		}
		return b.Available
	}
	// Free: January's 70 left expired at Feb 1, February's 100 granted.
	if got := bal("free"); got != credits.MustParse("100") {
		t.Fatalf("free available = %s, want 100", got)
	}
	// Professional rolls over: January's 4,000 left stay, plus February's 5,000.
	if got := bal("pro"); got != credits.MustParse("9000") {
		t.Fatalf("pro available = %s, want 9000", got)
	}
	var expiry *ledger.Entry
	for _, e := range r.entries("free") {
		if e.Kind == "expiry" {
			expiry = &e
		}
	}
	feb1 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	if expiry == nil || expiry.Amount != credits.MustParse("-70") || !expiry.At.Equal(feb1) {
		t.Fatalf("free expiry entry = %+v, want -70 at %s", expiry, feb1)
	}
	// Ticking again changes nothing.
	before := len(r.entries("free")) + len(r.entries("pro"))
	r.tickAll(restarted)
	r.clock.Advance(time.Minute)
	r.tickAll(restarted)
	if after := len(r.entries("free")) + len(r.entries("pro")); after != before {
		t.Fatalf("a second catch-up wrote %d entries", after-before)
	}
	r.verify()
}

func ptr[T any](v T) *T { return &v }

// TestAdvance_LargePage: a page of the default size whose org ids are as
// long as ids may be is more than a single event's payload bound; it must
// still be advanced, not archived as oversized.
func TestAdvance_LargePage(t *testing.T) {
	t.Parallel()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	orgs := make([]string, jobs.DefaultSweepPage)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("%0128d", i)
	}
	ctx := context.Background()
	err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
		for _, id := range orgs {
			if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "free"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(jobs.AdvancePayload{Version: jobs.AdvancePayloadVersion, At: time.Now().UTC(), Orgs: orgs})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) <= jobs.MaxPayloadBytes {
		t.Fatalf("payload of %d bytes does not exceed the single-event bound; the test proves nothing", len(data))
	}
	h := &jobs.AdvanceHandler{Ledger: l, DB: pool}
	if err := h.ProcessTask(ctx, asynq.NewTask(jobs.TypeAdvance, data)); err != nil {
		t.Fatalf("a full page of long org ids: %v", err)
	}
	b, err := l.Balance(ctx, pool, orgs[len(orgs)-1])
	if err != nil || b.Available != credits.MustParse("100") {
		t.Fatalf("last org's balance = %+v, %v; want its free allocation of 100", b, err)
	}
}
