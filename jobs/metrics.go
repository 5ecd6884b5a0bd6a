package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditd/creditd/ledger"
)

// Metrics are a worker's Prometheus metrics: tasks by type and outcome, task
// latency, usage batch sizes and the ledger writes the batches made. Build
// them with NewMetrics on a registry of the caller's own (never the global
// default one), put Middleware (or Chain) on the mux and ObserveBatch in the
// ledger.BatchConfig.
type Metrics struct {
	processed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	archived  *prometheus.CounterVec
	panics    *prometheus.CounterVec
	latency   *prometheus.HistogramVec

	batchEvents  prometheus.Histogram
	batchSeconds prometheus.Histogram
	usageEvents  *prometheus.CounterVec
	usageReplays prometheus.Counter

	types map[string]bool // the task_type labels; read-only after newMetrics
}

// otherType is the task_type label of a type this worker does not serve.
// Task types come from Redis, and whoever can enqueue can invent them: only
// the types of TaskTypes get labels of their own, so the number of series
// stays bounded (the exact-type guard archives the others anyway).
const otherType = "other"

// latencyBuckets span a usage task (milliseconds) to a cycle sweep (a minute).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// NewMetrics creates the metrics and registers them with reg; a nil reg
// registers nothing. It fails when reg already holds metrics of these names.
// The task series of every type in TaskTypes start at zero.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	return newMetrics(reg, TaskTypes())
}

func newMetrics(reg prometheus.Registerer, types []string) (*Metrics, error) {
	taskCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"task_type"})
	}
	m := &Metrics{
		processed: taskCounter("creditd_tasks_processed_total", "Task attempts a handler finished, successful or not."),
		failed:    taskCounter("creditd_tasks_failed_total", "Task attempts that returned an error or panicked."),
		retried:   taskCounter("creditd_tasks_retried_total", "Failed task attempts that asynq will retry."),
		archived:  taskCounter("creditd_tasks_archived_total", "Failed task attempts that asynq archives: SkipRetry (bad payload, refused by the ledger) or retries exhausted."),
		panics:    taskCounter("creditd_task_panics_total", "Task attempts whose handler panicked (also counted as failed)."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "creditd_task_duration_seconds", Help: "Time a handler took per task attempt, whatever its outcome.",
			Buckets: latencyBuckets,
		}, []string{"task_type"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "creditd_usage_batch_events", Help: "Usage events per ledger batch.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "creditd_usage_batch_duration_seconds", Help: "Time to commit a usage batch, database retries included.",
			Buckets: latencyBuckets,
		}),
		usageEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditd_ledger_usage_events_total",
			Help: "Usage events the ledger recorded for the first time, by status (applied, rejected) and rejection reason.",
		}, []string{"status", "reason"}),
		usageReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "creditd_ledger_usage_replays_total",
			Help: "Usage events the ledger had already recorded (a redelivered task): nothing changed.",
		}),
		types: make(map[string]bool, len(types)),
	}
	for _, typ := range slices.Concat(types, []string{otherType}) {
		m.types[typ] = true
		for _, vec := range []*prometheus.CounterVec{m.processed, m.failed, m.retried, m.archived, m.panics} {
			vec.WithLabelValues(typ)
		}
		m.latency.WithLabelValues(typ)
	}
	m.usageEvents.WithLabelValues(string(ledger.UsageApplied), "")
	for _, reason := range []string{ledger.ReasonInsufficientCredits, ledger.ReasonTeamLimit, ledger.ReasonUserLimit, ledger.ReasonMonthlyCap} {
		m.usageEvents.WithLabelValues(string(ledger.UsageRejected), reason)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.processed, m.failed, m.retried, m.archived, m.panics, m.latency,
		m.batchEvents, m.batchSeconds, m.usageEvents, m.usageReplays} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	return m, nil
}

// Middleware counts every task attempt by type and outcome and times it.
// It counts a panic only once Recover has turned it into a *PanicError, so
// it goes outside Recover (Chain orders them).
func (m *Metrics) Middleware() asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			err := next.ProcessTask(ctx, t)
			typ := t.Type()
			if !m.types[typ] {
				typ = otherType
			}
			m.latency.WithLabelValues(typ).Observe(time.Since(start).Seconds())
			m.processed.WithLabelValues(typ).Inc()
			if err == nil {
				return nil
			}
			m.failed.WithLabelValues(typ).Inc()
			switch outcomeOf(ctx, err) {
			case outcomeRetried:
				m.retried.WithLabelValues(typ).Inc()
			case outcomeArchived:
				m.archived.WithLabelValues(typ).Inc()
			}
			if _, ok := errors.AsType[*PanicError](err); ok {
				m.panics.WithLabelValues(typ).Inc()
			}
			return err
		})
	}
}

// ObserveBatch records a usage batch: its size, how long it took and what
// the ledger wrote. It is ledger.BatchConfig.Observe.
func (m *Metrics) ObserveBatch(r ledger.BatchReport) {
	m.batchEvents.Observe(float64(r.Events))
	m.batchSeconds.Observe(r.Duration.Seconds())
	for _, res := range r.Results {
		if res.Replayed {
			m.usageReplays.Inc()
			continue
		}
		m.usageEvents.WithLabelValues(string(res.Status), res.Reason).Inc()
	}
}
