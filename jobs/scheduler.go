package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/creditd/creditd/config"
	"github.com/creditd/creditd/ledger"
)

// jobKinds maps the scheduled jobs to the due work their sweep finds.
var jobKinds = map[string]ledger.DueKind{
	config.JobCycles:   ledger.DueCycles,
	config.JobLots:     ledger.DueLots,
	config.JobHolds:    ledger.DueHolds,
	config.JobAlerts:   ledger.DueAlerts,
	config.JobInvoices: ledger.DueInvoices,
}

// Scheduler enqueues a sweep task on every tick of the schedule. It keeps no
// state: the task id is derived from the job and the tick's minute, so two
// schedulers running at once enqueue each tick once, and a scheduler that was
// down catches up because the sweeps act on everything due, not because
// missed ticks are replayed.
type Scheduler struct {
	client   *Client
	clock    ledger.Clock
	log      *slog.Logger
	schedule config.Schedule
	cron     *cron.Cron
	ctx      context.Context // ends with Stop, so no tick outlives it
	cancel   context.CancelFunc
	first    sync.WaitGroup // the ticks of Start
	ready    chan struct{}  // closed when the ticks of Start are done
	// window is how far back the reconciliation job looks.
	window time.Duration
}

// NewScheduler checks the schedule and prepares the cron table; start it with
// Start. The clock names each tick (the system clock in production).
func NewScheduler(client *Client, schedule config.Schedule, clock ledger.Clock, log *slog.Logger) (*Scheduler, error) {
	if clock == nil {
		clock = ledger.SystemClock
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Scheduler{client: client, clock: clock, log: log, schedule: schedule, cron: cron.New(cron.WithLocation(time.UTC)),
		window: config.DefaultReconcileWindow}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ready = make(chan struct{})
	for _, job := range schedule.Jobs() {
		if _, ok := jobKinds[job]; !ok && job != config.JobReconcile {
			return nil, fmt.Errorf("schedule: unknown job %q", job)
		}
		job := job
		if _, err := s.cron.AddFunc(schedule[job], func() { s.tick(job) }); err != nil {
			return nil, fmt.Errorf("schedule: %s: %q: %w", job, schedule[job], err)
		}
	}
	return s, nil
}

// Start ticks every job once at once, in the background (so a restarted
// scheduler catches up without waiting for the next tick, and a Redis that
// is down does not hold up the process), then runs the cron table.
func (s *Scheduler) Start() {
	s.first.Add(1)
	go func() {
		defer s.first.Done()
		defer close(s.ready)
		for _, job := range s.schedule.Jobs() {
			s.tick(job)
		}
	}()
	s.cron.Start()
}

// Ready is closed once the ticks of Start have been enqueued (or have
// failed, which the log says).
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Stop stops the table, ends ticks in progress and waits for them.
func (s *Scheduler) Stop() {
	s.cancel()
	<-s.cron.Stop().Done()
	s.first.Wait()
}

func (s *Scheduler) tick(job string) {
	at := s.clock.Now()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := s.Tick(ctx, job, at); err != nil {
		// The next tick sweeps whatever this one would have.
		s.log.Warn("tick not enqueued", "job", job, "at", at, "err", err)
	}
}

// SetReconcileWindow sets how far back the reconciliation job looks
// (config.DefaultReconcileWindow unless set); call it before Start.
func (s *Scheduler) SetReconcileWindow(d time.Duration) { s.window = d }

// Tick enqueues job's sweep (or the reconciliation) for the minute of at.
// Tests call it with the instants of a simulated clock.
func (s *Scheduler) Tick(ctx context.Context, job string, at time.Time) error {
	if job == config.JobReconcile {
		at = at.UTC().Truncate(time.Minute)
		id, err := s.client.Reconcile(ctx, at.Add(-s.window), at)
		if err != nil {
			return err
		}
		s.log.Debug("tick", "job", job, "task_id", id)
		return nil
	}
	kind, ok := jobKinds[job]
	if !ok {
		return fmt.Errorf("unknown job %q", job)
	}
	id, err := s.client.Sweep(ctx, kind, at.UTC().Truncate(time.Minute))
	if err != nil {
		return err
	}
	s.log.Debug("tick", "job", job, "task_id", id)
	return nil
}
