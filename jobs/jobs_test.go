package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
	"github.com/creditd/creditd/ledger/ledgertest"
)

func TestMain(m *testing.M) { ledgertest.Main(m) }

// testRedisDB is this package's Redis database number.
const testRedisDB = 11

func testRedis(t *testing.T) asynq.RedisClientOpt { return jobstest.Redis(t, testRedisDB) }

func TestUsagePayload_BadInput(t *testing.T) {
	t.Parallel()
	l := ledger.New(config.DefaultCatalog(), nil)
	h := &jobs.UsageHandler{Batcher: ledger.NewBatcher(l, nil, ledger.BatchConfig{}, nil)}
	tests := []struct {
		name, payload, field string
	}{
		{"malformed JSON", `{"v":1,`, "payload"},
		{"unknown field", `{"v":1,"org_id":"a","event_id":"e","amount":"1","color":"red"}`, "color"},
		{"wrong type", `{"v":1,"org_id":"a","event_id":"e","amount":1.5}`, "amount"},
		{"too many decimals", `{"v":1,"org_id":"a","event_id":"e","amount":"1.0001"}`, "amount"},
		{"negative amount", `{"v":1,"org_id":"a","event_id":"e","amount":"-1"}`, "amount"},
		{"missing event id", `{"v":1,"org_id":"a","amount":"1"}`, "event_id"},
		{"missing org", `{"v":1,"event_id":"e","amount":"1"}`, "org"},
		{"nothing to charge", `{"v":1,"org_id":"a","event_id":"e"}`, "amount"},
		{"future version", `{"v":2,"org_id":"a","event_id":"e","amount":"1"}`, "v"},
		{"trailing data", `{"v":1,"org_id":"a","event_id":"e","amount":"1"} {}`, "payload"},
		{"oversized", `{"v":1,"org_id":"a","event_id":"e","amount":"1","metadata":"` + strings.Repeat("x", jobs.MaxPayloadBytes) + `"}`, "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.ProcessTask(context.Background(), asynq.NewTask(jobs.TypeUsage, []byte(tt.payload)))
			var pe *jobs.PayloadError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Fatalf("err = %v, want a payload error naming %q", err, tt.field)
			}
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("err = %v is retried, want it archived (SkipRetry)", err)
			}
		})
	}
}

func TestMux_ExactTypes(t *testing.T) {
	t.Parallel()
	mux := jobs.NewMux(jobs.Handlers{Usage: &jobs.UsageHandler{}})
	err := mux.ProcessTask(context.Background(), asynq.NewTask(jobs.TypeUsage+"_v2", []byte(`{}`)))
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "unknown task type") {
		t.Fatalf("a type that only shares a prefix reached a handler: %v", err)
	}
}

// TestUsage_EndToEnd enqueues 20,000 usage events over 100 orgs from 8
// goroutines through the client, 5% of them twice, plus 1% malformed tasks,
// and runs a real worker: every valid event is applied exactly once, every
// malformed one is archived with its reason, and the ledger verifies.
func TestUsage_EndToEnd(t *testing.T) {
	const (
		orgs       = 100
		events     = 20000
		goroutines = 8
	)
	ctx := context.Background()
	redisOpt := testRedis(t)
	pool := ledgertest.NewPool(t)
	l := ledger.New(config.DefaultCatalog(), nil)
	for i := 0; i < orgs; i++ {
		err := ledger.WithTx(ctx, pool, func(tx pgx.Tx) error {
			id := fmt.Sprintf("org%03d", i)
			if _, err := l.CreateOrg(ctx, tx, ledger.NewOrg{ID: id, Plan: "standard"}); err != nil {
				return err
			}
			_, err := l.Grant(ctx, tx, ledger.Grant{OrgID: id, Amount: credits.FromCredits(100000), Source: ledger.SourcePurchase, Key: "seed"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	batcher := ledger.NewBatcher(l, pool, ledger.BatchConfig{}, nil)
	bctx, stopBatcher := context.WithCancel(ctx)
	batcherDone := make(chan struct{})
	go func() { batcher.Run(bctx); close(batcherDone) }()
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 64, Queues: jobs.QueuePriorities(), LogLevel: asynq.ErrorLevel})
	if err := srv.Start(jobs.NewMux(jobs.Handlers{Usage: &jobs.UsageHandler{Batcher: batcher}})); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); stopBatcher(); <-batcherDone }()

	client := jobs.NewClient(redisOpt)
	defer client.Close()
	raw := asynq.NewClient(redisOpt)
	defer raw.Close()
	malformed := []struct{ payload, field string }{
		{`{"v":1,"org_id":"org001","event_id":"bad","amount":"1.0001"}`, "amount"},
		{`{"v":1,"org_id":"org001","event_id":"bad","amount":"1","colour":"red"}`, "colour"},
		{`{"v":1,"org_id":"org001","amount":"1"}`, "event_id"},
		{`not json`, "payload"},
	}
	var wg sync.WaitGroup
	var badSent sync.Map // task id -> field
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < events; i += goroutines {
				org := fmt.Sprintf("org%03d", i%orgs)
				ev := fmt.Sprintf("ev%05d", i)
				sends := 1
				if i%20 == 0 { // 5% twice
					sends = 2
				}
				for s := 0; s < sends; s++ {
					if err := client.RecordUsage(ctx, org, ev, jobs.WithAmount(credits.MustParse("0.5")), jobs.WithTeam("t1")); err != nil {
						errs <- err
						return
					}
				}
				if i%100 == 1 { // 1% malformed
					m := malformed[(i/100)%len(malformed)]
					id := fmt.Sprintf("malformed-%d", i)
					if _, err := raw.Enqueue(asynq.NewTask(jobs.TypeUsage, []byte(m.payload)), asynq.Queue(jobs.QueueUsage), asynq.TaskID(id), asynq.MaxRetry(25)); err != nil {
						errs <- err
						return
					}
					badSent.Store(id, m.field)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		q, err := insp.GetQueueInfo(jobs.QueueUsage)
		if err != nil {
			t.Fatal(err)
		}
		if q.Pending+q.Active+q.Scheduled+q.Retry == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue did not drain: %+v", q)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var applied, unique int
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id), coalesce(sum(amount), 0) FROM usage_events WHERE status = 'applied'`).
		Scan(&applied, &unique, &total); err != nil {
		t.Fatal(err)
	}
	if applied != events || unique != events || total != int64(events)*500 {
		t.Fatalf("applied %d events (%d distinct) for %d millicredits, want %d events for %d", applied, unique, total, events, events*500)
	}
	archived, err := insp.ListArchivedTasks(jobs.QueueUsage, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	wantBad := 0
	badSent.Range(func(_, _ any) bool { wantBad++; return true })
	if len(archived) != wantBad {
		t.Fatalf("%d tasks archived, want the %d malformed ones", len(archived), wantBad)
	}
	for _, a := range archived {
		field, ok := badSent.Load(a.ID)
		if !ok {
			t.Fatalf("a valid task was archived: %s %s", a.ID, a.LastErr)
		}
		if !strings.Contains(a.LastErr, field.(string)) || a.Retried != 0 {
			t.Fatalf("archived %s: %q after %d retries, want a reason naming %q and no retry", a.ID, a.LastErr, a.Retried, field)
		}
	}
	rep, err := l.Verify(ctx, pool)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep.Violations, err)
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, time.Second, 1250 * time.Millisecond},
		{3, 8 * time.Second, 10 * time.Second},
		{20, 10 * time.Minute, 12*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			for i := 0; i < 100; i++ {
				if d := jobs.RetryDelay(tt.n, nil, nil); d < tt.min || d > tt.max {
					t.Fatalf("RetryDelay(%d) = %s, want within [%s, %s]", tt.n, d, tt.min, tt.max)
				}
			}
		})
	}
}
