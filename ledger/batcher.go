package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Batcher is group commit for usage: concurrent callers (the worker's usage
// task handlers) hand their events to it, it applies up to MaxBatch of them
// (of any orgs) in one ledger transaction, and each caller returns once its
// event is committed. A burst becomes a few transactions instead of one per
// event, with no aggregation delay when the queue is quiet: a batch is
// flushed as soon as it is full or MaxWait after its first event, and at once
// when events were already waiting (see flushLoop). It lives in the ledger
// because it is a way of writing the ledger, used by the worker and measured
// by the ledger's own benchmarks.
type Batcher struct {
	ledger *Ledger
	db     TxBeginner
	cfg    BatchConfig
	log    *slog.Logger
	in     chan *pendingUsage

	mu     sync.Mutex
	orgs   map[string]*orgBatches // one org's usage:batch tasks waiting for a transaction (ApplyAll)
	rounds sync.WaitGroup         // the goroutines applying them
	// roundsCtx is theirs: not a caller's, since a round holds other
	// callers' batches too, and cancelled when Run returns, so that a round
	// stuck on a lock cannot hold up a shutdown.
	roundsCtx  context.Context
	stopRounds context.CancelFunc
}

// BatchConfig bounds the batching.
type BatchConfig struct {
	MaxBatch int           // events per transaction; default 200
	MaxWait  time.Duration // how long a batch waits to fill; default 2ms
	// Flushers is how many transactions may be in flight at once; default
	// 1. One flusher commits what gathered while its previous transaction
	// ran, so batches grow with the load; more flushers split the same
	// events into smaller batches, each paying a transaction's fixed cost.
	// Measured with `creditd load` (20,000 single-event tasks over 1,000
	// orgs, 64 in flight, 2 cores): 1 flusher averaged 19 events per
	// transaction and 0.28 ms of Postgres CPU per event, 2 flushers 9 and
	// 0.45 ms, 4 flushers 6 and 0.61 ms. On one org the extra flushers
	// only queue for its lock.
	Flushers int

	// MaxMerge bounds the events of one transaction that applies several
	// batches of one org together (ApplyAll); default 8000. A batch larger
	// than it is applied alone.
	MaxMerge int

	// Observe, when set, is told about every batch once each of its events
	// has an outcome (jobs.Metrics.ObserveBatch). It runs on the goroutine
	// that applied the batch (a flusher, a usage:batch handler, or the one
	// applying an org's merged batches) before the callers are answered, so
	// it must be quick.
	Observe func(BatchReport)
}

// BatchReport describes one batch of usage events applied in one ledger
// transaction (or in several, when the ledger refused one of them): the
// events of a flush, of a usage:batch task, or of one org's usage:batch
// tasks applied together.
type BatchReport struct {
	Events   int           // events in the batch
	Duration time.Duration // until every event had its outcome, database retries included
	Results  []UsageResult // of the events committed (applied, rejected or replayed); the others failed
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 200
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 2 * time.Millisecond
	}
	if c.Flushers <= 0 {
		c.Flushers = 1
	}
	if c.MaxMerge <= 0 {
		c.MaxMerge = 8000
	}
	return c
}

type pendingUsage struct {
	ev   UsageEvent
	done chan usageOutcome
}

type usageOutcome struct {
	res UsageResult
	err error
}

// ErrBatcherStopped: the batcher is no longer running.
var ErrBatcherStopped = errors.New("usage batcher stopped")

// NewBatcher returns a batcher; start it with Run.
func NewBatcher(l *Ledger, db TxBeginner, cfg BatchConfig, log *slog.Logger) *Batcher {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	roundsCtx, stopRounds := context.WithCancel(context.Background())
	return &Batcher{ledger: l, db: db, cfg: cfg, log: log, in: make(chan *pendingUsage, cfg.MaxBatch*cfg.Flushers),
		orgs: map[string]*orgBatches{}, roundsCtx: roundsCtx, stopRounds: stopRounds}
}

// Run flushes batches until ctx is done, then cancels the transactions of
// merged usage:batch tasks still running and waits for them (their handlers
// have returned by then; their tasks will be retried). Stop it only after
// the asynq servers have shut down: the handlers still running wait for it.
func (b *Batcher) Run(ctx context.Context) {
	done := make(chan struct{})
	for i := 0; i < b.cfg.Flushers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			b.flushLoop(ctx)
		}()
	}
	for i := 0; i < b.cfg.Flushers; i++ {
		<-done
	}
	b.stopRounds()
	b.rounds.Wait()
}

// Apply hands an event to the batcher and waits until it is committed or ctx
// ends. When ctx ends first the event may still be applied; the task's retry
// is then a replay.
func (b *Batcher) Apply(ctx context.Context, ev UsageEvent) (UsageResult, error) {
	p := &pendingUsage{ev: ev, done: make(chan usageOutcome, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return UsageResult{}, ctx.Err()
	}
	select {
	case out := <-p.done:
		return out.res, out.err
	case <-ctx.Done():
		return UsageResult{}, ctx.Err()
	}
}

// flushLoop is one flusher. A batch started from idle waits up to MaxWait for
// a burst to join it. An event already queued when the flusher comes back
// from a commit means the batcher is behind: the flusher then takes what is
// queued and commits at once, and the next batch gathers while this one
// commits (group commit). Waiting there would only add MaxWait to every
// commit: with asynq's concurrency bounding the events in flight, the batch
// could not fill anyway.
func (b *Batcher) flushLoop(ctx context.Context) {
	batch := make([]*pendingUsage, 0, b.cfg.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if ctx.Err() != nil {
			b.drain()
			return
		}
		var first *pendingUsage
		fromIdle := false
		select {
		case first = <-b.in:
		default:
			fromIdle = true
			select {
			case <-ctx.Done():
				b.drain()
				return
			case first = <-b.in:
			}
		}
		batch = append(batch[:0], first)
	queued:
		for len(batch) < b.cfg.MaxBatch {
			select {
			case p := <-b.in:
				batch = append(batch, p)
			default:
				break queued
			}
		}
		if fromIdle && len(batch) < b.cfg.MaxBatch {
			timer.Reset(b.cfg.MaxWait)
		fill:
			for len(batch) < b.cfg.MaxBatch {
				select {
				case p := <-b.in:
					batch = append(batch, p)
				case <-timer.C:
					break fill
				}
			}
			timer.Stop()
		}
		// The batch is applied even if ctx ends meanwhile: its handlers wait.
		b.flush(context.WithoutCancel(ctx), batch)
	}
}

// drain answers whatever is still queued once the batcher stops.
func (b *Batcher) drain() {
	for {
		select {
		case p := <-b.in:
			p.done <- usageOutcome{err: ErrBatcherStopped}
		default:
			return
		}
	}
}

func (b *Batcher) flush(ctx context.Context, batch []*pendingUsage) {
	events := make([]UsageEvent, len(batch))
	for i, p := range batch {
		events[i] = p.ev
	}
	for i, out := range b.apply(ctx, events) {
		batch[i].done <- out
	}
}

// ApplyAll applies a usage:batch task's events, which are a batch already,
// with no wait for other events to join them. The results and errors are
// per event, in order.
//
// A batch of one org's events may share its transaction with other batches
// of that org: a busy org's transactions take turns on its lock, and each
// pays a fixed cost (locking and reading the org, updating its balance,
// committing) that bigger transactions share. So at most two transactions
// per org run at once (one applying while the next looks up its events),
// and batches that arrive meanwhile are applied together in the next, up to
// MaxMerge events. Measured one transaction after another on one org (2
// cores): 1,000 events per transaction 47,500-49,400 events/s, 4,000 per
// transaction 59,600-61,300; through the worker (`creditd load --mode
// batch --events 1000000 --orgs 1`) 55,500-55,900 with MaxMerge 4,000 and
// 57,700-63,500 with 8,000, against 35,000-42,400 unmerged. Batches of
// several orgs are applied alone.
func (b *Batcher) ApplyAll(ctx context.Context, events []UsageEvent) ([]UsageResult, []error) {
	var outs []usageOutcome
	if org, ok := singleOrg(events); ok {
		outs = b.merged(ctx, org, events)
	} else {
		outs = b.apply(ctx, events)
	}
	results := make([]UsageResult, len(outs))
	errs := make([]error, len(outs))
	for i, out := range outs {
		results[i], errs[i] = out.res, out.err
	}
	return results, errs
}

// singleOrg returns the org of events when they are all of one.
func singleOrg(events []UsageEvent) (string, bool) {
	if len(events) == 0 {
		return "", false
	}
	for _, ev := range events[1:] {
		if ev.OrgID != events[0].OrgID {
			return "", false
		}
	}
	return events[0].OrgID, true
}

// roundsPerOrg is how many transactions of one org's batches run at once.
const roundsPerOrg = 2

// orgBatches is one org's batches waiting for a transaction.
type orgBatches struct {
	running int
	queue   []*pendingBatch
}

type pendingBatch struct {
	ctx    context.Context // the caller's: a batch whose caller gave up is not applied
	events []UsageEvent
	done   chan []usageOutcome
}

// merged queues one org's batch and waits for its outcomes. When fewer than
// roundsPerOrg transactions of the org are running, it starts one, which
// goes on with whatever has queued until nothing has.
func (b *Batcher) merged(ctx context.Context, org string, events []UsageEvent) []usageOutcome {
	p := &pendingBatch{ctx: ctx, events: events, done: make(chan []usageOutcome, 1)}
	b.mu.Lock()
	g := b.orgs[org]
	if g == nil {
		g = &orgBatches{}
		b.orgs[org] = g
	}
	g.queue = append(g.queue, p)
	if g.running < roundsPerOrg {
		g.running++
		b.rounds.Add(1)
		go b.runRounds(b.roundsCtx, org, g)
	}
	b.mu.Unlock()
	select {
	case outs := <-p.done:
		return outs
	case <-ctx.Done():
		// The batch may still be applied; the task's retry is then a replay.
		outs := make([]usageOutcome, len(events))
		for i := range outs {
			outs[i].err = ctx.Err()
		}
		return outs
	}
}

// takeRound takes the queued batches of the next transaction: the first,
// and those after it while they fit in MaxMerge events. Batches whose caller
// gave up are dropped: the task's retry will bring them again. b.mu is held.
func (b *Batcher) takeRound(g *orgBatches) []*pendingBatch {
	g.queue = slices.DeleteFunc(g.queue, func(p *pendingBatch) bool { return p.ctx.Err() != nil })
	if len(g.queue) == 0 {
		return nil
	}
	n, events := 1, len(g.queue[0].events)
	for n < len(g.queue) && events+len(g.queue[n].events) <= b.cfg.MaxMerge {
		events += len(g.queue[n].events)
		n++
	}
	round := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	return round
}

// runRounds applies the org's queued batches, a round at a time, until none
// are left.
func (b *Batcher) runRounds(ctx context.Context, org string, g *orgBatches) {
	defer b.rounds.Done()
	for {
		b.mu.Lock()
		round := b.takeRound(g)
		if round == nil {
			g.running--
			if g.running == 0 {
				delete(b.orgs, org)
			}
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.applyRoundSafely(ctx, round)
	}
}

// applyRoundSafely is applyRound on a goroutine of the batcher's own, where
// no task middleware recovers a panic: it answers the round's batches with
// the panic as an error (their tasks are retried) instead of ending the
// process, and leaves the org's other batches to the next round.
func (b *Batcher) applyRoundSafely(ctx context.Context, round []*pendingBatch) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("usage batches panicked", "panic", r, "stack", string(debug.Stack()))
			err := fmt.Errorf("usage batch: panic: %v", r)
			for _, p := range round {
				outs := make([]usageOutcome, len(p.events))
				for i := range outs {
					outs[i].err = err
				}
				select {
				case p.done <- outs:
				default: // answered before the panic
				}
			}
		}
	}()
	b.applyRound(ctx, round)
}

// applyRound applies a round's batches in one transaction. When that fails,
// each batch is applied on its own, so that only a batch holding an event
// the ledger refuses for good falls back to one event at a time.
func (b *Batcher) applyRound(ctx context.Context, round []*pendingBatch) {
	if len(round) == 1 {
		round[0].done <- b.apply(ctx, round[0].events)
		return
	}
	var events []UsageEvent
	for _, p := range round {
		events = append(events, p.events...)
	}
	start := time.Now()
	outs, err := b.applyTx(ctx, events)
	if err != nil {
		// Whatever failed (an event refused for good, or something only one
		// batch causes) must not fail the other batches with it.
		b.log.Info("merged usage batches failed, applying them one batch at a time", "err", err, "batches", len(round), "events", len(events))
		outs = outs[:0]
		for _, p := range round {
			outs = append(outs, b.applyEach(ctx, p.events)...)
		}
	}
	if b.cfg.Observe != nil {
		b.observe(start, outs)
	}
	for _, p := range round {
		p.done <- outs[:len(p.events):len(p.events)]
		outs = outs[len(p.events):]
	}
}

// apply records events in one transaction. When the ledger refuses one of
// them for good (unknown org, reused event id), that must not fail the
// others: the events are then applied one by one so only it fails.
func (b *Batcher) apply(ctx context.Context, events []UsageEvent) []usageOutcome {
	start := time.Now()
	outs := b.applyEach(ctx, events)
	if b.cfg.Observe != nil {
		b.observe(start, outs)
	}
	return outs
}

// applyEach is apply without the report.
func (b *Batcher) applyEach(ctx context.Context, events []UsageEvent) []usageOutcome {
	outs, err := b.applyTx(ctx, events)
	if err == nil || len(events) == 1 || !IsPermanent(err) {
		return outs
	}
	b.log.Info("usage batch refused, applying its events one by one", "err", err, "events", len(events))
	for i, ev := range events {
		one, err := b.applyTx(ctx, []UsageEvent{ev})
		if err != nil {
			one[0].err = fmt.Errorf("usage %s/%s: %w", ev.OrgID, ev.EventID, err)
		}
		outs[i] = one[0]
	}
	return outs
}

// applyTx records events in one transaction (retried while the database
// asks for it). On failure every event has the error.
func (b *Batcher) applyTx(ctx context.Context, events []UsageEvent) ([]usageOutcome, error) {
	outs := make([]usageOutcome, len(events))
	var results []UsageResult
	err := WithRetry(ctx, b.db, func(tx pgx.Tx) (err error) {
		results, err = b.ledger.RecordUsage(ctx, tx, events)
		return err
	})
	for i := range outs {
		if err != nil {
			outs[i].err = err
		} else {
			outs[i].res = results[i]
		}
	}
	return outs, err
}

// observe reports a batch whose outcomes are in outs.
func (b *Batcher) observe(start time.Time, outs []usageOutcome) {
	r := BatchReport{Events: len(outs), Duration: time.Since(start), Results: make([]UsageResult, 0, len(outs))}
	for _, out := range outs {
		if out.err == nil {
			r.Results = append(r.Results, out.res)
		}
	}
	b.cfg.Observe(r)
}
