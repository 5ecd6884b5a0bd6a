package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
)

// Batcher is group commit for usage: the handlers of concurrent usage tasks
// hand their events to it, it applies up to MaxBatch of them (of any orgs) in
// one ledger transaction, and each handler returns once its event is
// committed. A burst becomes a few transactions instead of one per event,
// with no aggregation delay when the queue is quiet: a batch is flushed as
// soon as it is full or MaxWait after its first event.
type Batcher struct {
	ledger *ledger.Ledger
	db     ledger.TxBeginner
	cfg    BatchConfig
	log    *slog.Logger
	in     chan *pendingUsage
}

// BatchConfig bounds the batching.
type BatchConfig struct {
	MaxBatch int           // events per transaction; default 200
	MaxWait  time.Duration // how long a batch waits to fill; default 2ms
	Flushers int           // transactions in flight at once; default 4
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 200
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 2 * time.Millisecond
	}
	if c.Flushers <= 0 {
		c.Flushers = 4
	}
	return c
}

type pendingUsage struct {
	ev   ledger.UsageEvent
	done chan usageOutcome
}

type usageOutcome struct {
	res ledger.UsageResult
	err error
}

// ErrBatcherStopped: the batcher is no longer running.
var ErrBatcherStopped = errors.New("usage batcher stopped")

// NewBatcher returns a batcher; start it with Run.
func NewBatcher(l *ledger.Ledger, db ledger.TxBeginner, cfg BatchConfig, log *slog.Logger) *Batcher {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Batcher{ledger: l, db: db, cfg: cfg, log: log, in: make(chan *pendingUsage, cfg.MaxBatch*cfg.Flushers)}
}

// Run flushes batches until ctx is done. Stop it only after the asynq server
// has shut down: the handlers still running wait for it.
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
}

// Apply hands an event to the batcher and waits until it is committed or ctx
// ends. When ctx ends first the event may still be applied; the task's retry
// is then a replay.
func (b *Batcher) Apply(ctx context.Context, ev ledger.UsageEvent) (ledger.UsageResult, error) {
	p := &pendingUsage{ev: ev, done: make(chan usageOutcome, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return ledger.UsageResult{}, ctx.Err()
	}
	select {
	case out := <-p.done:
		return out.res, out.err
	case <-ctx.Done():
		return ledger.UsageResult{}, ctx.Err()
	}
}

func (b *Batcher) flushLoop(ctx context.Context) {
	batch := make([]*pendingUsage, 0, b.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			b.drain()
			return
		case p := <-b.in:
			batch = append(batch[:0], p)
		}
		timer := time.NewTimer(b.cfg.MaxWait)
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
	events := make([]ledger.UsageEvent, len(batch))
	for i, p := range batch {
		events[i] = p.ev
	}
	var results []ledger.UsageResult
	err := ledger.WithRetry(ctx, b.db, func(tx pgx.Tx) (err error) {
		results, err = b.ledger.RecordUsage(ctx, tx, events)
		return err
	})
	if err == nil {
		for i, p := range batch {
			p.done <- usageOutcome{res: results[i]}
		}
		return
	}
	if len(batch) == 1 || !isPermanent(err) {
		for _, p := range batch {
			p.done <- usageOutcome{err: err}
		}
		return
	}
	// One event the ledger refuses (unknown org, reused event id) must not
	// fail the others: apply them one by one so only it fails.
	b.log.Info("usage batch refused, applying its events one by one", "err", err, "events", len(batch))
	for _, p := range batch {
		var res []ledger.UsageResult
		err := ledger.WithRetry(ctx, b.db, func(tx pgx.Tx) (err error) {
			res, err = b.ledger.RecordUsage(ctx, tx, []ledger.UsageEvent{p.ev})
			return err
		})
		if err != nil {
			p.done <- usageOutcome{err: fmt.Errorf("usage %s/%s: %w", p.ev.OrgID, p.ev.EventID, err)}
			continue
		}
		p.done <- usageOutcome{res: res[0]}
	}
}
