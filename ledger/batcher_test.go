package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/creditd/creditd/ledger"
)

// TestBatcher_ManyCallers: many callers, each handing its events to a
// batcher with several flushers and every event twice, as redelivered tasks
// do: every event is applied exactly once, each repeat replays it, events
// share transactions, and the ledger verifies.
func TestBatcher_ManyCallers(t *testing.T) {
	t.Parallel()
	const flushers, orgs, callers, perCaller = 3, 24, 32, 40
	f := newFixture(t)
	ids := make([]string, orgs)
	for i := range ids {
		ids[i] = f.org(fmt.Sprintf("org-%02d", i), nil)
		f.grant(ids[i], "1000", "purchase", "seed", nil)
	}
	var (
		mu        sync.Mutex
		batches   int
		committed int
	)
	b := ledger.NewBatcher(f.l, f.pool, ledger.BatchConfig{Flushers: flushers, Observe: func(r ledger.BatchReport) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		committed += len(r.Results)
	}}, nil)
	ctx, stop := context.WithCancel(f.ctx)
	stopped := make(chan struct{})
	go func() { b.Run(ctx); close(stopped) }()

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perCaller; i++ {
				ev := ledger.UsageEvent{OrgID: ids[(c+i)%orgs], EventID: fmt.Sprintf("c%d-%d", c, i), Amount: crp("1")}
				first, err := b.Apply(ctx, ev)
				if err == nil {
					var again ledger.UsageResult
					if again, err = b.Apply(ctx, ev); err == nil && (!again.Replayed || again.BalanceAfter != first.BalanceAfter) {
						err = fmt.Errorf("repeat of %s: %+v, first %+v", ev.EventID, again, first)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
	<-stopped
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if batches >= 2*callers*perCaller {
		t.Fatalf("%d batches for %d calls: no two events shared a transaction", batches, 2*callers*perCaller)
	}
	if committed != 2*callers*perCaller {
		t.Fatalf("%d outcomes committed, want %d", committed, 2*callers*perCaller)
	}
	var rows int
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM usage_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != callers*perCaller {
		t.Fatalf("%d usage rows, want %d (each event once)", rows, callers*perCaller)
	}
	for _, id := range ids {
		if got := f.balance(id).Available; got != cr("1000")-cr(fmt.Sprint(countFor(id, ids, callers, perCaller))) {
			t.Fatalf("%s: available %s", id, got)
		}
	}
	f.verify()
}

// countFor is how many distinct events of TestBatcher_Shards fall on org.
func countFor(org string, ids []string, callers, perCaller int) int {
	n := 0
	for c := 0; c < callers; c++ {
		for i := 0; i < perCaller; i++ {
			if ids[(c+i)%len(ids)] == org {
				n++
			}
		}
	}
	return n
}
