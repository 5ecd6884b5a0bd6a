package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/jobs/jobstest"
	"github.com/creditd/creditd/ledger/credits"
)

// testRedisRestart crashes Redis (SIGKILL) in the middle of a burst and
// starts it again. The worker and the web API must carry on by themselves
// (the API answering 503 meanwhile), and every event the client was told was
// enqueued must be applied exactly once. The producer
// does what an application should: an enqueue that failed was not
// acknowledged, so it tries again.
func testRedisRestart(t *testing.T, c *cli) {
	const events = 1500
	c.ok("org", "create", "rr", "--plan", "standard")
	c.ok("grant", "rr", "1000", "--source", "purchase", "--key", "seed")
	srv := jobstest.StartServer(t)
	worker := c.startWorkerOn(jobstest.URL(srv.Opt()))
	const token = "restart-operator-token"
	base, _ := startWebProcess(t, c.bin, append(c.env, config.EnvAPIToken+"="+token, config.EnvHTTPAddr+"=127.0.0.1:0"))
	operator := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	postUsage := func(event string) int {
		code, _ := httpDo(t, "POST", base+"/v1/orgs/rr/usage", `{"event_id":"`+event+`","amount":"0.1"}`, operator)
		return code
	}
	ready := func() int { code, _ := httpDo(t, "GET", base+"/readyz", "", nil); return code }

	client := jobs.NewClient(srv.Opt())
	defer client.Close()
	ctx := context.Background()
	var acked, failed atomic.Int64
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < events; i++ {
			time.Sleep(2 * time.Millisecond) // a steady stream, so Redis dies mid-burst
			for {
				err := client.RecordUsage(ctx, "rr", fmt.Sprintf("e%04d", i), jobs.WithAmount(credits.MustParse("0.1")))
				if err == nil {
					acked.Add(1)
					break
				}
				failed.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()

	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	applied := func() (n, distinct int, total int64) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id), coalesce(sum(amount), 0) FROM usage_events WHERE org_id = 'rr'`).
			Scan(&n, &distinct, &total)
		if err != nil {
			t.Fatal(err)
		}
		return n, distinct, total
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		// Tasks a worker held when Redis died come back after their lease
		// expires, which asynq's recoverer checks about once a minute.
		deadline := time.Now().Add(3 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				n, _, _ := applied()
				t.Fatalf("%s: timed out (%d enqueued, %d applied, %d failed enqueues)", what, acked.Load(), n, failed.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("a third of the burst applied", func() bool { n, _, _ := applied(); return n >= events/3 })
	srv.Kill()
	// While Redis is down the API says so, and accepts nothing.
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %d, want 503", code)
	}
	if code := postUsage("api-down"); code != http.StatusServiceUnavailable {
		t.Errorf("POST usage with Redis down: %d, want 503", code)
	}
	time.Sleep(2 * time.Second)
	srv.Start()
	// The API recovers by itself: no restart, no manual step.
	waitFor("the API ready again", func() bool { return ready() == http.StatusOK })
	if code := postUsage("api-up"); code != http.StatusAccepted {
		t.Fatalf("POST usage after Redis came back: %d, want 202", code)
	}
	<-produced
	waitFor("every event applied", func() bool { n, _, _ := applied(); return n >= events+1 })

	// The burst and the event posted once Redis was back; not the refused one.
	if n, distinct, total := applied(); n != events+1 || distinct != events+1 || total != (events+1)*100 {
		t.Fatalf("applied %d events (%d distinct) for %d millicredits, want %d for %d", n, distinct, total, events+1, (events+1)*100)
	}
	if failed.Load() == 0 {
		t.Error("no enqueue failed: Redis was not down while the producer ran, so the test proved nothing")
	}
	if err := worker.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the worker did not survive the Redis restart: %v", err)
	}
	c.json(0, &struct{}{}, "verify", "--json")
	if got := c.balanceWithoutAt("rr"); !strings.Contains(got, `"available":"849.900"`) {
		t.Fatalf("balance = %s, want 849.9 available", got)
	}
}
