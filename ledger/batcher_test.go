package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	if rows := f.count(`SELECT count(*) FROM usage_events`); rows != callers*perCaller {
		t.Fatalf("%d usage rows, want %d (each event once)", rows, callers*perCaller)
	}
	for _, id := range ids {
		if got := f.balance(id).Available; got != cr("1000")-cr(fmt.Sprint(countFor(id, ids, callers, perCaller))) {
			t.Fatalf("%s: available %s", id, got)
		}
	}
	f.verify()
}

// countFor is how many distinct events of TestBatcher_ManyCallers fall on org.
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

// TestBatcher_MergesOneOrgsBatches: while the org's lock is held elsewhere,
// its first batches start their transactions and wait, and the batches that
// arrive meanwhile queue; once the lock is free the queued batches share
// transactions of at most MaxMerge events. In one of them a batch reuses an
// event id with other content: only that event is refused, every other
// event of the round is applied. A batch queued twice is applied once and
// replayed once. A batch of two orgs is applied alone. Afterwards the
// batcher keeps nothing for the org, and everything verifies.
func TestBatcher_MergesOneOrgsBatches(t *testing.T) {
	t.Parallel()
	const size, maxMerge, queued = 100, 350, 6
	f := newFixture(t)
	org := f.org("hot", nil)
	other := f.org("other", nil)
	for _, o := range []string{org, other} {
		f.grant(o, "100000", "purchase", "seed", nil)
	}
	var (
		mu      sync.Mutex
		reports []ledger.BatchReport
	)
	var logs bytes.Buffer
	b := ledger.NewBatcher(f.l, f.pool, ledger.BatchConfig{MaxMerge: maxMerge, Observe: func(r ledger.BatchReport) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, r)
	}}, slog.New(slog.NewTextHandler(&logs, nil)))
	batch := func(name string) []ledger.UsageEvent {
		evs := make([]ledger.UsageEvent, size)
		for i := range evs {
			evs[i] = ledger.UsageEvent{OrgID: org, EventID: fmt.Sprintf("%s-%d", name, i), Amount: crp("1")}
		}
		return evs
	}
	if _, errs := b.ApplyAll(f.ctx, batch("first")); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}

	lock := f.lockOrg(org)
	type outcome struct {
		name string
		res  []ledger.UsageResult
		errs []error
	}
	outcomes := make(chan outcome, 2+queued)
	send := func(name string, evs []ledger.UsageEvent) {
		go func() {
			res, errs := b.ApplyAll(f.ctx, evs)
			outcomes <- outcome{name, res, errs}
		}()
	}
	// Two rounds start, one after the other, and wait for the lock.
	send("blocked-1", batch("blocked-1"))
	f.waitForLockWaiters(1)
	send("blocked-2", batch("blocked-2"))
	f.waitForLockWaiters(2)
	// The next batches queue behind them.
	reused := batch("reuse")
	reused[7] = ledger.UsageEvent{OrgID: org, EventID: "first-5", Amount: crp("2")}
	send("reuse", reused)
	twice := batch("twice")
	send("twice-a", twice)
	send("twice-b", twice)
	for i := 0; i < queued-3; i++ {
		send(fmt.Sprintf("q%d", i), batch(fmt.Sprintf("q%d", i)))
	}
	waitFor(t, func() bool { return ledger.QueuedForTest(b, org) == queued })
	if err := lock.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}

	if _, errs := b.ApplyAll(f.ctx, []ledger.UsageEvent{{OrgID: org, EventID: "mixed-1", Amount: crp("1")},
		{OrgID: other, EventID: "mixed-2", Amount: crp("1")}}); errors.Join(errs...) != nil {
		t.Fatalf("batch of two orgs: %v", errors.Join(errs...))
	}
	replays := 0
	for range 2 + queued {
		o := <-outcomes
		for i, err := range o.errs {
			switch {
			case o.name == "reuse" && i == 7:
				if !errors.Is(err, ledger.ErrConflict) {
					t.Fatalf("reused event id: %v, want a conflict", err)
				}
			case err != nil:
				t.Fatalf("%s event %d: %v", o.name, i, err)
			case o.res[i].Replayed:
				replays++
			}
		}
	}
	if replays != size {
		t.Fatalf("%d events replayed, want the %d of the batch sent twice", replays, size)
	}
	largest := 0
	for _, r := range reports {
		if r.Events > maxMerge {
			t.Fatalf("a transaction held %d events, more than MaxMerge %d", r.Events, maxMerge)
		}
		largest = max(largest, r.Events)
	}
	if largest <= size {
		t.Fatalf("the largest transaction held %d events: no batches were merged", largest)
	}
	// The callers are answered before the round's goroutine finds the
	// queue empty and forgets the org.
	waitFor(t, func() bool { return ledger.MergingOrgsForTest(b) == 0 })
	if !strings.Contains(logs.String(), "merged usage batches failed") {
		t.Fatalf("the round with the reused id did not fall back to one batch at a time; log:\n%s", logs.String())
	}
	rows := f.count(`SELECT count(*) FROM usage_events WHERE org_id = $1`, org)
	// first, blocked-1 and -2, reuse less its refused event, twice once, the
	// other queued batches, and mixed-1.
	if want := 3*size + size - 1 + size + (queued-3)*size + 1; rows != want {
		t.Fatalf("%d usage rows of the org, want %d", rows, want)
	}
	f.verify()
}

// TestBatcher_RoundPanics: a panic while one org's batches are applied
// together (here in the Observe hook, after the commit) answers the round's
// callers with an error instead of ending the process, and the org's next
// batches are applied as usual; a retry of the failed batch is a replay.
func TestBatcher_RoundPanics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "1000", "purchase", "seed", nil)
	var panicked atomic.Bool
	b := ledger.NewBatcher(f.l, f.pool, ledger.BatchConfig{Observe: func(ledger.BatchReport) {
		if panicked.CompareAndSwap(false, true) {
			panic("observer failed")
		}
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	evs := []ledger.UsageEvent{{OrgID: org, EventID: "e1", Amount: crp("1")}, {OrgID: org, EventID: "e2", Amount: crp("2")}}
	_, errs := b.ApplyAll(f.ctx, evs)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "panic: observer failed") {
			t.Fatalf("event %d: %v, want the panic as an error", i, err)
		}
	}
	res, errs := b.ApplyAll(f.ctx, evs)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	for i, r := range res {
		if !r.Replayed {
			t.Fatalf("the retry's event %d: %+v, want a replay", i, r)
		}
	}
	next := []ledger.UsageEvent{{OrgID: org, EventID: "e3", Amount: crp("3")}}
	if res, errs := b.ApplyAll(f.ctx, next); errs[0] != nil || res[0].Replayed {
		t.Fatalf("the next batch: %+v %v", res[0], errs[0])
	}
	// The callers are answered before the round's goroutine finds the
	// queue empty and forgets the org.
	waitFor(t, func() bool { return ledger.MergingOrgsForTest(b) == 0 })
	f.wantAvailable(org, "994")
	f.verify()
}

// TestBatcher_StopCancelsRounds: a round of one org's batches stuck on the
// org's lock does not hold up the batcher's stop: Run returns, the caller
// gets the cancellation, and nothing is written.
func TestBatcher_StopCancelsRounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	org := f.org("acme", nil)
	f.grant(org, "1000", "purchase", "seed", nil)
	b := ledger.NewBatcher(f.l, f.pool, ledger.BatchConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := context.WithCancel(f.ctx)
	stopped := make(chan struct{})
	go func() { b.Run(ctx); close(stopped) }()

	lock := f.lockOrg(org)
	answered := make(chan []error, 1)
	go func() {
		_, errs := b.ApplyAll(f.ctx, []ledger.UsageEvent{{OrgID: org, EventID: "e1", Amount: crp("1")}})
		answered <- errs
	}()
	f.waitForLockWaiters(1)
	stop()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return while a round waited for the org's lock")
	}
	if errs := <-answered; !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("the stuck batch: %v, want the cancellation", errs[0])
	}
	if err := lock.Rollback(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.wantAvailable(org, "1000")
	f.verify()
}
