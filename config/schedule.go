package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
)

// EnvSchedule overrides entries of the scheduler's table, as
// "job=SPEC;job=SPEC" (e.g. "cycles=*/10 * * * *;holds=@every 1m").
const EnvSchedule = "CREDITD_SCHEDULE"

// Scheduled jobs. Each tick enqueues one sweep of that kind of due work.
const (
	JobCycles   = "cycles"   // cycle boundaries: expiry, rollover, allocation
	JobLots     = "lots"     // lots whose expiry has passed
	JobHolds    = "holds"    // holds whose time is up
	JobAlerts   = "alerts"   // alert rules evaluated again: runway forecasts, and a safety net
	JobInvoices = "invoices" // monthly invoices of the months that ended
	// JobReconcile compares recent Stripe payments with the ledger (a
	// payments:reconcile task, not a sweep of due work).
	JobReconcile = "reconcile"
)

// Schedule is the scheduler's table: a cron spec (robfig/cron's five fields,
// or a descriptor like "@every 5m") per job. Ticks are minute-granular: a
// tick is named by its minute, so two schedulers firing in the same minute
// enqueue it once.
type Schedule map[string]string

// DefaultSchedule runs the cycle and expiry sweeps every five minutes, the
// hold sweep every minute, the alert sweep every half hour (it visits every
// org with rules; every write evaluates what it may cross already) and the
// invoice sweep hourly (a month ends at midnight in each org's zone; zones
// differ by whole hours or half hours, so an org waits at most an hour). Sweeps are level-triggered, so a late or missed
// tick only delays work, and the next one catches up. Payment reconciliation runs every quarter hour.
func DefaultSchedule() Schedule {
	return Schedule{JobCycles: "*/5 * * * *", JobLots: "*/5 * * * *", JobHolds: "* * * * *", JobAlerts: "*/30 * * * *",
		JobInvoices: "2 * * * *", JobReconcile: "*/15 * * * *"}
}

// Jobs returns the scheduled jobs in a fixed order.
func (s Schedule) Jobs() []string {
	jobs := make([]string, 0, len(s))
	for j := range s {
		jobs = append(jobs, j)
	}
	slices.Sort(jobs)
	return jobs
}

// ScheduleFromEnv is the default table with the overrides of
// CREDITD_SCHEDULE applied. An empty spec ("holds=") turns a job off.
func ScheduleFromEnv(getenv func(string) string) (Schedule, error) {
	s := DefaultSchedule()
	v := strings.TrimSpace(getenv(EnvSchedule))
	if v == "" {
		return s, nil
	}
	for _, item := range strings.Split(v, ";") {
		job, spec, ok := strings.Cut(strings.TrimSpace(item), "=")
		job, spec = strings.TrimSpace(job), strings.TrimSpace(spec)
		if !ok {
			return nil, &EnvError{Var: EnvSchedule, Reason: fmt.Sprintf("%q is not job=SPEC", item)}
		}
		if _, known := s[job]; !known {
			return nil, &EnvError{Var: EnvSchedule, Reason: fmt.Sprintf("unknown job %q (jobs: %s)", job, strings.Join(DefaultSchedule().Jobs(), ", "))}
		}
		if spec == "" {
			delete(s, job)
			continue
		}
		if _, err := cron.ParseStandard(spec); err != nil {
			return nil, &EnvError{Var: EnvSchedule, Reason: fmt.Sprintf("%s: %q: %v", job, spec, err)}
		}
		s[job] = spec
	}
	return s, nil
}
