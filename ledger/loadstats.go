package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/creditd/creditd/ledger/credits"
)

// Read-only queries for the load generator (`creditd load`): how far a run
// has got, and what its events went through. Both read only the orgs given,
// each by an index probe (the LATERAL form of load), so a run's polling costs
// the same whatever else the database holds.

// creditsUsedSQL sums the orgs' usage counters over all their cycles: one
// small row per org and cycle, so it is cheap to poll while usage_events
// grows by millions of rows.
const creditsUsedSQL = `
SELECT coalesce(sum(x.credits), 0)::bigint FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT c.credits FROM cycle_usage c
    WHERE c.org_id = k.org_id AND c.scope = 'org' AND c.subject = ''
    OFFSET 0
) x ON true`

// CreditsUsed returns the credits the orgs' applied usage events cost, in all
// their cycles together. Rejected events cost nothing and replays count once,
// so for events of a known cost it counts the events applied.
func (l *Ledger) CreditsUsed(ctx context.Context, db DBTX, orgIDs []string) (credits.Credits, error) {
	var used int64
	if err := db.QueryRow(ctx, creditsUsedSQL, orgIDs).Scan(&used); err != nil {
		return 0, fmt.Errorf("credits used: %w", mapError(err))
	}
	return credits.Credits(used), nil
}

// UsageStats describes the usage events of a set of orgs. Latency is
// recorded_at − occurred_at: from the instant the event says it happened
// (the load generator sets it to the instant it enqueued the event) to the
// instant of the ledger transaction that applied it. That instant is taken
// when the transaction starts loading, before it waits for the org's lock
// and before it commits, so under contention on one org the figures are a
// little low.
type UsageStats struct {
	Applied       int64
	Rejected      int64
	FirstOccurred time.Time // zero when there are no events
	LastRecorded  time.Time
	LatencyP50    time.Duration
	LatencyP99    time.Duration
	LatencyMax    time.Duration
}

// Percentiles are computed on intervals and returned in whole microseconds,
// Postgres' precision, so no float reaches Go.
const usageStatsSQL = `
SELECT count(*) FILTER (WHERE x.status = 'applied'),
       count(*) FILTER (WHERE x.status = 'rejected'),
       min(x.occurred_at), max(x.recorded_at),
       coalesce((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY x.latency)) * 1000000)::bigint, 0),
       coalesce((extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY x.latency)) * 1000000)::bigint, 0),
       coalesce((extract(epoch FROM max(x.latency)) * 1000000)::bigint, 0)
FROM unnest($1::text[]) AS k(org_id)
JOIN LATERAL (
    SELECT u.status, u.occurred_at, u.recorded_at, u.recorded_at - u.occurred_at AS latency
    FROM usage_events u WHERE u.org_id = k.org_id
    OFFSET 0
) x ON true`

// UsageStats counts the orgs' usage events and their latency percentiles.
// It reads every event of the orgs once.
func (l *Ledger) UsageStats(ctx context.Context, db DBTX, orgIDs []string) (UsageStats, error) {
	var s UsageStats
	var first, last *time.Time
	var p50, p99, pmax int64
	err := db.QueryRow(ctx, usageStatsSQL, orgIDs).Scan(&s.Applied, &s.Rejected, &first, &last, &p50, &p99, &pmax)
	if err != nil {
		return UsageStats{}, fmt.Errorf("usage stats: %w", mapError(err))
	}
	if first != nil {
		s.FirstOccurred = first.UTC()
	}
	if last != nil {
		s.LastRecorded = last.UTC()
	}
	s.LatencyP50, s.LatencyP99, s.LatencyMax = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond, time.Duration(pmax)*time.Microsecond
	return s, nil
}
