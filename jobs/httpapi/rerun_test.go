package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// startWorker runs a real asynq server with the usage handlers until the
// test ends.
func (e *env) startWorker() {
	e.t.Helper()
	batcher := ledger.NewBatcher(e.l, e.pool, ledger.BatchConfig{}, nil)
	bctx, stop := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { batcher.Run(bctx); close(done) }()
	srv := asynq.NewServer(e.redis, asynq.Config{Concurrency: 8, Queues: jobs.QueuePriorities(), LogLevel: asynq.ErrorLevel})
	err := srv.Start(jobs.NewMux(jobs.Handlers{Usage: &jobs.UsageHandler{Batcher: batcher}, UsageBatch: &jobs.UsageBatchHandler{Batcher: batcher}}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { srv.Shutdown(); stop(); <-done })
}

// ledgerState is what must not change when a task runs again.
func (e *env) ledgerState(org string) string {
	e.t.Helper()
	bal, err := e.l.Balance(e.ctx, e.pool, org)
	if err != nil {
		e.t.Fatal(err)
	}
	var events, entries int
	if err := e.pool.QueryRow(e.ctx, `SELECT (SELECT count(*) FROM usage_events WHERE org_id = $1),
		(SELECT count(*) FROM entries WHERE org_id = $1)`, org).Scan(&events, &entries); err != nil {
		e.t.Fatal(err)
	}
	bal.At = time.Time{}
	b, _ := json.Marshal(struct {
		Events, Entries int
		Balance         ledger.Balance
	}{events, entries, bal})
	return string(b)
}

func (e *env) waitFor(what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMonitor_RerunArchivedTask re-runs, through asynqmon's own API, an
// archived usage task whose event was applied already: the task runs again
// and completes, and the ledger does not change (the event's key makes the
// run a replay). The same for a batch. Not parallel: its worker serves the
// whole usage queue of the package's Redis database.
func TestMonitor_RerunArchivedTask(t *testing.T) {
	e := newEnv(t, testRedis(t), nil)
	org := e.org("a", "100")

	// The API enqueues; read the task as it is in Redis before any worker
	// takes it, to archive an identical copy later.
	if r := e.do("POST", "/v1/orgs/"+org+"/usage", `{"event_id":"e1","amount":"2","metadata":{"k":"v"}}`, operator); r.status != 202 {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	batchBody := `{"events":[{"event_id":"b1","amount":"1"},{"event_id":"b2","feature":"microservice","units":2}]}`
	if r := e.do("POST", "/v1/orgs/"+org+"/usage", batchBody, operator); r.status != 202 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var single, batch *asynq.TaskInfo
	for _, ti := range e.tasksOf(org) {
		switch ti.Type {
		case jobs.TypeUsage:
			single = ti
		case jobs.TypeUsageBatch:
			batch = ti
		}
	}
	if single == nil || batch == nil {
		t.Fatalf("tasks: %v", e.tasksOf(org))
	}

	e.startWorker()
	e.waitFor("the events applied", func() bool {
		for _, id := range []string{"e1", "b1", "b2"} {
			if _, err := e.l.UsageEventStatus(e.ctx, e.pool, org, id); err != nil {
				return false
			}
		}
		return true
	})
	e.waitFor("the tasks done", func() bool { return len(e.tasksOf(org)) == 0 })
	bal, err := e.l.Balance(e.ctx, e.pool, org)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Available != credits.MustParse("93") { // 100 - 2 - 1 - 2×2 (microservice)
		t.Fatalf("balance %s after the first runs", bal.Available)
	}
	before := e.ledgerState(org)

	raw := asynq.NewClient(e.redis)
	defer raw.Close()
	for _, tc := range []struct {
		name string
		task *asynq.TaskInfo
	}{
		{"single event", single},
		{"batch", batch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An identical task, held back and archived as if it had failed;
			// kept after completion so its state can be read.
			_, err := raw.Enqueue(asynq.NewTask(tc.task.Type, tc.task.Payload), asynq.Queue(jobs.QueueUsage),
				asynq.TaskID(tc.task.ID), asynq.ProcessIn(time.Hour), asynq.Retention(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.insp.ArchiveTask(jobs.QueueUsage, tc.task.ID); err != nil {
				t.Fatal(err)
			}
			// asynqmon lists it, through the payload formatter.
			r := e.do("GET", "/monitor/api/queues/usage/archived_tasks?page_size=100", "", basic("ops", operatorToken))
			if r.status != 200 || !strings.Contains(string(r.body), tc.task.ID) || strings.Contains(string(r.body), `\"k\":\"v\"`) {
				t.Fatalf("archived tasks in the UI: %d %.1000s", r.status, r.body)
			}
			// Run it again with asynqmon's action.
			r = e.do("POST", "/monitor/api/queues/usage/archived_tasks/"+tc.task.ID+":run", "", basic("ops", operatorToken))
			if r.status != http.StatusNoContent {
				t.Fatalf("run: %d %s", r.status, r.body)
			}
			e.waitFor("the re-run to complete", func() bool {
				info, err := e.insp.GetTaskInfo(jobs.QueueUsage, tc.task.ID)
				if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
					t.Fatal(err)
				}
				if info != nil && info.State == asynq.TaskStateArchived && info.LastErr != "" {
					t.Fatalf("the re-run failed: %s", info.LastErr)
				}
				return info != nil && info.State == asynq.TaskStateCompleted
			})
			if after := e.ledgerState(org); after != before {
				t.Fatalf("re-running the task changed the ledger:\n%s\n->\n%s", before, after)
			}
			e.verify()
		})
	}
}
