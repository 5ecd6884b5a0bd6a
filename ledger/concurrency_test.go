package ledger_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// spend records n usage events of amount on org, each sent twice, and
// returns how many were applied.
func spend(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, org, prefix string, n int, amount credits.Credits) (applied int, err error) {
	for i := 0; i < n; i++ {
		ev := ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("%s-%d", prefix, i), Amount: &amount}
		var first ledger.UsageResult
		for attempt := 0; attempt < 2; attempt++ { // every event is delivered twice
			var res []ledger.UsageResult
			err := ledger.WithRetry(ctx, pool, func(tx pgx.Tx) (err error) {
				res, err = l.RecordUsage(ctx, tx, []ledger.UsageEvent{ev})
				return err
			})
			if err != nil {
				return applied, err
			}
			if attempt == 0 {
				first = res[0]
			} else if res[0].Status != first.Status || !res[0].Replayed {
				return applied, fmt.Errorf("replay of %s gave %+v, first %+v", ev.EventID, res[0], first)
			}
		}
		if first.Status == ledger.UsageApplied {
			applied++
		}
	}
	return applied, nil
}

// TestSpendProcess is the body of the separate processes started by
// TestConcurrentSpending; it does nothing when run directly.
func TestSpendProcess(t *testing.T) {
	url := os.Getenv("CREDITD_TEST_SPEND_URL")
	if url == "" {
		t.Skip("helper process for TestConcurrentSpending")
	}
	n, _ := strconv.Atoi(os.Getenv("CREDITD_TEST_SPEND_N"))
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	l := ledger.New(config.DefaultCatalog(), nil)
	applied, err := spend(ctx, pool, l, os.Getenv("CREDITD_TEST_SPEND_ORG"), os.Getenv("CREDITD_TEST_SPEND_PREFIX"), n, credits.MustParse("1.5"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("applied=%d\n", applied)
}

func TestConcurrentSpending(t *testing.T) {
	t.Parallel()
	const (
		goroutines    = 64
		perGoroutine  = 10
		processes     = 4
		perProcess    = 40
		totalEvents   = goroutines*perGoroutine + processes*perProcess
		eventCost     = "1.5"
		rejectBalance = "600"
	)
	for _, policy := range []ledger.Policy{ledger.PolicyDebt, ledger.PolicyReject} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.l = ledger.New(config.DefaultCatalog(), nil) // real time: other processes use it too
			org := f.org("hot", &orgOpts{policy: policy})
			f.grant(org, rejectBalance, ledger.SourcePurchase, "p", nil)

			var wg sync.WaitGroup
			var mu sync.Mutex
			applied := 0
			errs := make(chan error, goroutines+processes)
			for g := 0; g < goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := spend(f.ctx, f.pool, f.l, org, fmt.Sprintf("g%d", g), perGoroutine, cr(eventCost))
					mu.Lock()
					applied += n
					mu.Unlock()
					if err != nil {
						errs <- err
					}
				}()
			}
			for p := 0; p < processes; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(os.Args[0], "-test.run=^TestSpendProcess$", "-test.count=1")
					cmd.Env = append(os.Environ(), "CREDITD_TEST_SPEND_URL="+f.poolURL(), "CREDITD_TEST_SPEND_ORG="+org,
						fmt.Sprintf("CREDITD_TEST_SPEND_PREFIX=p%d", p), fmt.Sprintf("CREDITD_TEST_SPEND_N=%d", perProcess))
					out, err := cmd.CombinedOutput()
					if err != nil {
						errs <- fmt.Errorf("process %d: %v\n%s", p, err, out)
						return
					}
					var n int
					for _, line := range splitLines(string(out)) {
						if _, err := fmt.Sscanf(line, "applied=%d", &n); err == nil {
							break
						}
					}
					mu.Lock()
					applied += n
					mu.Unlock()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			var events, usageEntries, appliedRows int
			var minBalance int64
			err := f.pool.QueryRow(f.ctx, `
SELECT (SELECT count(*) FROM usage_events WHERE org_id = $1),
       (SELECT count(DISTINCT event_id) FROM entries WHERE org_id = $1 AND kind = 'usage'),
       (SELECT count(*) FROM usage_events WHERE org_id = $1 AND status = 'applied'),
       (SELECT min(balance_after) FROM entries WHERE org_id = $1)`, org).Scan(&events, &usageEntries, &appliedRows, &minBalance)
			if err != nil {
				t.Fatal(err)
			}
			if events != totalEvents {
				t.Fatalf("%d usage events recorded, want %d (each exactly once)", events, totalEvents)
			}
			if appliedRows != applied || usageEntries != applied {
				t.Fatalf("callers saw %d applied, %d events applied, %d events with entries", applied, appliedRows, usageEntries)
			}
			start := cr(rejectBalance)
			spent, _ := cr(eventCost).MulInt(int64(applied))
			want := start - spent
			f.wantAvailable(org, want.String())
			switch policy {
			case ledger.PolicyDebt:
				if applied != totalEvents {
					t.Fatalf("debt policy applied %d of %d", applied, totalEvents)
				}
			case ledger.PolicyReject:
				if applied != 400 || minBalance < 0 {
					t.Fatalf("reject policy applied %d (want 400 = 600/1.5), lowest balance %d", applied, minBalance)
				}
			}
			f.verify()
		})
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestConcurrentOrgsDoNotWait: a transaction holding one org's lock does not
// block writes to another org.
func TestConcurrentOrgsDoNotWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.org("a", nil), f.org("b", nil)
	f.grant(a, "10", ledger.SourcePurchase, "p", nil)
	f.grant(b, "10", ledger.SourcePurchase, "p", nil)
	tx, err := f.pool.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := f.l.RecordUsage(f.ctx, tx, []ledger.UsageEvent{{OrgID: a, EventID: "held", Amount: crp("1")}}); err != nil {
		t.Fatal(err)
	}
	// Org a stays locked by tx; org b must still be writable.
	ctx, cancel := context.WithTimeout(f.ctx, 10e9)
	defer cancel()
	err = ledger.WithTx(ctx, f.pool, func(tx2 pgx.Tx) error {
		_, err := f.l.RecordUsage(ctx, tx2, []ledger.UsageEvent{{OrgID: b, EventID: "free", Amount: crp("1")}})
		return err
	})
	if err != nil {
		t.Fatalf("org b waited for org a: %v", err)
	}
}

// TestUsage_DuplicateCommittedWhileWaiting: load looks for applied events
// before it takes the org's lock. A second delivery of an event that looks,
// finds nothing, and then waits on the lock while the first delivery commits
// must fail on the usage row's key and be retried into a replay: one usage
// row, one debit, the first result returned. Both write paths are covered
// (the INSERT of a small batch and the COPY of a large one).
func TestUsage_DuplicateCommittedWhileWaiting(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, ledger.CopyRowsMin} {
		t.Run(fmt.Sprintf("batch of %d", size), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			org := f.org("acme", nil)
			f.grant(org, "10000", "purchase", "seed", nil)
			dup := ledger.UsageEvent{OrgID: org, EventID: "dup", Amount: crp("7")}
			second := []ledger.UsageEvent{dup}
			for i := 1; i < size; i++ {
				second = append(second, ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("other-%d", i), Amount: crp("1")})
			}

			tx1, err := f.pool.Begin(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback(f.ctx) //nolint:errcheck // after Commit a no-op
			first, err := f.l.RecordUsage(f.ctx, tx1, []ledger.UsageEvent{dup})
			if err != nil {
				t.Fatal(err)
			}

			type outcome struct {
				res      []ledger.UsageResult
				attempts int
				err      error
			}
			done := make(chan outcome, 1)
			go func() {
				var o outcome
				o.err = ledger.WithRetry(f.ctx, f.pool, func(tx pgx.Tx) (err error) {
					o.attempts++
					o.res, err = f.l.RecordUsage(f.ctx, tx, second)
					return err
				})
				done <- o
			}()
			// The second delivery has looked (it is past its first statement)
			// once it waits on the org's lock.
			f.waitForLockWaiters(1)
			if err := tx1.Commit(f.ctx); err != nil {
				t.Fatal(err)
			}
			o := <-done
			if o.err != nil {
				t.Fatalf("second delivery: %v", o.err)
			}
			if o.attempts != 2 {
				t.Fatalf("second delivery took %d attempts; want 2 (a key violation, then a replay)", o.attempts)
			}
			got := o.res[0]
			if !got.Replayed || got.BalanceAfter != first[0].BalanceAfter || got.Cost != first[0].Cost {
				t.Fatalf("second delivery %+v, first %+v", got, first[0])
			}
			for _, r := range o.res[1:] {
				if r.Status != ledger.UsageApplied || r.Replayed {
					t.Fatalf("other event: %+v", r)
				}
			}
			if rows := f.count(`SELECT count(*) FROM usage_events WHERE org_id = $1 AND event_id = 'dup'`, org); rows != 1 {
				t.Fatalf("%d usage rows for the event", rows)
			}
			f.wantAvailable(org, fmt.Sprintf("%d", 10000-7-(size-1)))
			f.verify()
		})
	}
}
