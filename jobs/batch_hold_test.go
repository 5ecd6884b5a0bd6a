package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// worker is a real asynq server serving every task type against pool.
type worker struct {
	ledger *ledger.Ledger
	pool   *pgxpool.Pool
	client *jobs.Client
	insp   *asynq.Inspector
}

// startWorker runs a worker and a client on redisOpt until the test ends.
func startWorker(t *testing.T, redisOpt asynq.RedisClientOpt) *worker {
	t.Helper()
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	batcher := ledger.NewBatcher(l, pool, ledger.BatchConfig{}, nil)
	ctx, stop := context.WithCancel(context.Background())
	batcherDone := make(chan struct{})
	go func() { batcher.Run(ctx); close(batcherDone) }()
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 16, Queues: jobs.QueuePriorities(), LogLevel: asynq.FatalLevel,
		RetryDelayFunc: jobs.RetryDelay})
	mux := jobs.NewMux(jobs.Handlers{
		Usage:      &jobs.UsageHandler{Batcher: batcher},
		UsageBatch: &jobs.UsageBatchHandler{Batcher: batcher},
		Hold:       &jobs.HoldHandler{Ledger: l, DB: pool},
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	w := &worker{ledger: l, pool: pool, client: jobs.NewClient(redisOpt), insp: asynq.NewInspector(redisOpt)}
	t.Cleanup(func() {
		srv.Shutdown()
		stop()
		<-batcherDone
		w.client.Close()
		w.insp.Close()
	})
	return w
}

func (w *worker) org(t *testing.T, id string, grant string) {
	t.Helper()
	ctx := context.Background()
	err := ledger.WithTx(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := w.ledger.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "standard", Policy: ledger.PolicyReject}); err != nil {
			return err
		}
		_, err := w.ledger.Grant(ctx, tx, ledger.Grant{OrgID: id, Amount: credits.MustParse(grant), Source: ledger.SourcePurchase, Key: "seed"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (w *worker) available(t *testing.T, org string) credits.Credits {
	t.Helper()
	b, err := w.ledger.Balance(context.Background(), w.pool, org)
	if err != nil {
		t.Fatal(err)
	}
	return b.Available
}

// drain waits until the usage queue has nothing pending, active or retrying.
func (w *worker) drain(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		q, err := w.insp.GetQueueInfo(jobs.QueueUsage)
		if err != nil {
			t.Fatal(err)
		}
		if q.Pending+q.Active+q.Scheduled+q.Retry+q.Aggregating == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage queue did not drain: %+v", q)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *worker) verify(t *testing.T) {
	t.Helper()
	rep, err := w.ledger.Verify(context.Background(), w.pool)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep.Violations, err)
	}
}

func amount(s string) *string { return &s }

// TestUsageBatch runs batches through a real worker: events of several orgs
// in one task, a batch replayed, a batch with an event the ledger refuses
// (archived naming it, the others applied) and batches refused before
// anything is enqueued.
func TestUsageBatch(t *testing.T) {
	ctx := context.Background()
	redisOpt := testRedis(t)
	w := startWorker(t, redisOpt)
	w.org(t, "ba", "100")
	w.org(t, "bb", "100")

	var events []jobs.UsagePayload
	for i := 0; i < 500; i++ {
		org := []string{"ba", "bb"}[i%2]
		events = append(events, jobs.UsagePayload{OrgID: org, EventID: fmt.Sprintf("e%03d", i), Amount: amount("0.1")})
	}
	if err := w.client.RecordUsageBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	// The same batch again, once the first has completed: a replay.
	if err := w.client.RecordUsageBatch(ctx, events); err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	for _, org := range []string{"ba", "bb"} {
		if got := w.available(t, org); got != credits.MustParse("75") {
			t.Fatalf("%s available = %s, want 75 (250 events of 0.1 once)", org, got)
		}
	}

	mixed := []jobs.UsagePayload{
		{OrgID: "ba", EventID: "m1", Amount: amount("1")},
		{OrgID: "nosuchorg", EventID: "m2", Amount: amount("1")},
		{OrgID: "bb", EventID: "m3", Amount: amount("2")},
	}
	if err := w.client.RecordUsageBatch(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	if a, b := w.available(t, "ba"), w.available(t, "bb"); a != credits.MustParse("74") || b != credits.MustParse("73") {
		t.Fatalf("after the mixed batch: ba %s, bb %s; want 74 and 73", a, b)
	}
	archived, err := w.insp.ListArchivedTasks(jobs.QueueUsage)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) != 1 || !strings.Contains(archived[0].LastErr, "events[1]") || !strings.Contains(archived[0].LastErr, "not found") {
		t.Fatalf("archived = %+v, want the mixed batch naming events[1] (unknown org)", archived)
	}

	refused := []struct {
		name   string
		events []jobs.UsagePayload
		field  string
	}{
		{"empty", nil, "events"},
		{"bad amount", []jobs.UsagePayload{{OrgID: "ba", EventID: "x1", Amount: amount("1")}, {OrgID: "ba", EventID: "x2", Amount: amount("0.0001")}}, "events[1].amount"},
		{"missing event id", []jobs.UsagePayload{{OrgID: "ba", Amount: amount("1")}}, "events[0].event_id"},
		{"repeated event", []jobs.UsagePayload{{OrgID: "ba", EventID: "x1", Amount: amount("1")}, {OrgID: "ba", EventID: "x1", Amount: amount("1")}}, "events[1].event_id"},
		{"too many", make([]jobs.UsagePayload, jobs.MaxBatchEvents+1), "events"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			err := w.client.RecordUsageBatch(ctx, tt.events)
			var pe *jobs.PayloadError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Fatalf("err = %v, want a payload error naming %s", err, tt.field)
			}
		})
	}
	q, err := w.insp.GetQueueInfo(jobs.QueueUsage)
	if err != nil {
		t.Fatal(err)
	}
	if q.Pending+q.Archived != 1 {
		t.Fatalf("queue after refused batches: %+v, want only the archived mixed batch", q)
	}
	w.verify(t)
}

// TestHolds reserves, captures and releases through the queue with the
// client waiting for each answer.
func TestHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	redisOpt := testRedis(t)
	w := startWorker(t, redisOpt)
	w.org(t, "ha", "50")

	h, err := w.client.Reserve(ctx, "ha", "h1", credits.MustParse("30"), time.Minute, jobs.WithTeam("red"))
	if err != nil || h.Status != ledger.HoldActive || h.BalanceAfter != credits.MustParse("20") {
		t.Fatalf("reserve = %+v, %v; want active with 20 available", h, err)
	}
	again, err := w.client.Reserve(ctx, "ha", "h1", credits.MustParse("30"), time.Minute, jobs.WithTeam("red"))
	if err != nil || again.HoldID != "h1" || again.BalanceAfter != h.BalanceAfter {
		t.Fatalf("reserve again = %+v, %v; want the first answer", again, err)
	}
	if _, err := w.client.Reserve(ctx, "ha", "h2", credits.MustParse("25"), time.Minute); !errors.Is(err, ledger.ErrInsufficientCredits) {
		t.Fatalf("reserve past the balance: err = %v, want insufficient credits", err)
	}
	c, err := w.client.Capture(ctx, "ha", "h1", credits.MustParse("12.5"))
	if err != nil || c.Status != ledger.HoldCaptured || c.BalanceAfter != credits.MustParse("37.5") {
		t.Fatalf("capture = %+v, %v; want captured with 37.5 available", c, err)
	}
	if _, err := w.client.Reserve(ctx, "ha", "h3", credits.MustParse("10"), time.Minute); err != nil {
		t.Fatal(err)
	}
	r, err := w.client.Release(ctx, "ha", "h3")
	if err != nil || r.Status != ledger.HoldReleased || r.BalanceAfter != credits.MustParse("37.5") {
		t.Fatalf("release = %+v, %v; want released with 37.5 available", r, err)
	}
	var archived *jobs.ArchivedError
	if _, err := w.client.Release(ctx, "ha", "nosuchhold"); !errors.As(err, &archived) || !strings.Contains(archived.LastErr, "not found") {
		t.Fatalf("release of an unknown hold: err = %v, want an archived task saying not found", err)
	}
	if _, err := w.client.Reserve(ctx, "ha", "h4", credits.MustParse("1"), 0); err == nil || !strings.Contains(err.Error(), "ttl_seconds") {
		t.Fatalf("reserve without a ttl: err = %v, want one naming ttl_seconds", err)
	}
	if got := w.available(t, "ha"); got != credits.MustParse("37.5") {
		t.Fatalf("available = %s, want 37.5", got)
	}
	w.verify(t)
}

// TestClient_DuplicateIDs enqueues with no worker running, so every task
// stays in Redis: the same request again is a harmless duplicate, another
// payload under the same id is a conflict, and an archived task of that id
// is replaced by the new request.
func TestClient_DuplicateIDs(t *testing.T) {
	ctx := context.Background()
	redisOpt := testRedis(t)
	client := jobs.NewClient(redisOpt)
	defer client.Close()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	one, two := jobs.WithAmount(credits.MustParse("1")), jobs.WithAmount(credits.MustParse("2"))

	if err := client.RecordUsage(ctx, "o1", "e1", one); err != nil {
		t.Fatal(err)
	}
	if err := client.RecordUsage(ctx, "o1", "e1", one); err != nil {
		t.Fatalf("the same event again: %v, want a harmless duplicate", err)
	}
	if err := client.RecordUsage(ctx, "o1", "e1", two); !errors.Is(err, ledger.ErrConflict) {
		t.Fatalf("the same event id with another amount: %v, want a conflict", err)
	}
	id := jobs.UsageTaskID("o1", "e1")
	if err := insp.ArchiveTask(jobs.QueueUsage, id); err != nil {
		t.Fatal(err)
	}
	if err := client.RecordUsage(ctx, "o1", "e1", two); err != nil {
		t.Fatalf("after the first was archived: %v, want the new request enqueued", err)
	}
	info, err := insp.GetTaskInfo(jobs.QueueUsage, id)
	if err != nil || info.State != asynq.TaskStatePending || !strings.Contains(string(info.Payload), `"amount":"2.000"`) {
		t.Fatalf("task = %+v, %v; want the new request pending", info, err)
	}
}
