package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger/credits"
)

// workerRedisDB is this package's Redis database number.
const workerRedisDB = 12

// testWorker runs `creditd worker` processes over one burst of usage: the
// first is stopped with SIGTERM and must hand back what it had not finished,
// the second is killed with SIGKILL, the third drains the queue. Every event
// must end up applied exactly once.
func testWorker(t *testing.T, c *cli) {
	const events = 3000
	c.ok("org", "create", "w1", "--plan", "standard")
	c.ok("grant", "w1", "1000", "--source", "purchase", "--key", "seed")
	redisOpt := jobstest.Redis(t, workerRedisDB)
	env := append(c.env, "REDIS_URL="+jobstest.URL(redisOpt))

	client := jobs.NewClient(redisOpt)
	defer client.Close()
	ctx := context.Background()
	for i := 0; i < events; i++ {
		if err := client.RecordUsage(ctx, "w1", fmt.Sprintf("e%04d", i), jobs.WithAmount(credits.MustParse("0.1"))); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	applied := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM usage_events WHERE org_id = 'w1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// asynq's recoverer finds the tasks of a killed worker once their lease
	// has expired, checking about once a minute: allow for that.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (applied %d)", what, applied())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := func(flags ...string) (*exec.Cmd, *syncBuffer) {
		logs := new(syncBuffer)
		// Small batches and little concurrency keep the burst going long
		// enough to stop the worker in the middle of it.
		cmd := exec.Command(c.bin, append([]string{"worker", "--concurrency", "8", "--usage-concurrency", "8", "--batch-max", "5", "--shutdown-timeout", "10s"}, flags...)...)
		cmd.Env, cmd.Stderr = env, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A test that fails midway must not leave a worker writing to
		// Redis (the flush of its database is cleaned up after this). One
		// that was waited for already is not signalled.
		t.Cleanup(func() {
			if cmd.Process.Kill() == nil {
				_ = cmd.Wait()
			}
		})
		return cmd, logs
	}
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	queue := func() *asynq.QueueInfo {
		q, err := insp.GetQueueInfo(jobs.QueueUsage)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}

	w, logs := start("--metrics-addr", "127.0.0.1:0")
	waitFor("the first worker to apply some events", func() bool { return applied() >= 300 })
	checkWorkerMetrics(t, logs)
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(); err != nil {
		t.Fatalf("worker exit after SIGTERM: %v\n%s", err, logs)
	}
	if q, n := queue(), applied(); q.Active != 0 || n >= events || q.Pending+n < events {
		t.Fatalf("after SIGTERM: %d applied, queue %+v: want nothing active, nothing lost, work left", n, q)
	}

	w, logs = start()
	before := applied()
	waitFor("the second worker to apply some events", func() bool { return applied() >= before+300 })
	if err := w.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait() // killed: its exit status is the signal
	if n := applied(); n >= events {
		t.Fatalf("the burst ended before the kill (%d applied); the test did not kill a busy worker\n%s", n, logs)
	}

	// Tasks the killed worker held come back when their lease runs out.
	w, logs = start()
	defer func() {
		_ = w.Process.Signal(syscall.SIGTERM)
		_ = w.Wait()
	}()
	waitFor("every event to be applied", func() bool {
		q := queue()
		return applied() == events && q.Pending+q.Active+q.Retry+q.Scheduled == 0
	})
	var distinct, entries int
	var total int64
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT event_id), coalesce(sum(amount), 0) FROM usage_events WHERE org_id = 'w1'`).
		Scan(&distinct, &total); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM entries WHERE org_id = 'w1' AND kind = 'usage'`).Scan(&entries); err != nil {
		t.Fatal(err)
	}
	if distinct != events || entries != events || total != events*100 {
		t.Fatalf("%d distinct events, %d usage entries, %d millicredits; want %d, %d, %d\n%s", distinct, entries, total, events, events, events*100, logs)
	}
	if q := queue(); q.Archived != 0 {
		t.Fatalf("%d tasks archived", q.Archived)
	}
	c.ok("verify")
}

// checkWorkerMetrics scrapes the /metrics of a worker started with
// --metrics-addr (its log names the address) while it applies usage.
func checkWorkerMetrics(t *testing.T, logs *syncBuffer) {
	t.Helper()
	var addr string
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "metrics listening" {
			addr = l.Addr
		}
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the worker did not log a loopback metrics address:\n%s", logs)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	metrics := string(body)
	for _, want := range []string{
		`creditd_tasks_processed_total{task_type="usage:record"} `,
		`creditd_task_duration_seconds_count{task_type="usage:record"} `,
		`creditd_usage_batch_events_count `,
		`creditd_ledger_usage_events_total{reason="",status="applied"} `,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		_, rest, ok := strings.Cut(metrics, "\n"+want) // a sample, not a # HELP line
		if !ok {
			t.Fatalf("/metrics has no %s\n%s", want, metrics)
		}
		value, _, _ := strings.Cut(rest, "\n")
		if n, err := strconv.ParseFloat(value, 64); err != nil || n <= 0 {
			t.Fatalf("/metrics: %s%s, want a positive value", want, value)
		}
	}
}

// syncBuffer is a bytes.Buffer that a running process writes while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
