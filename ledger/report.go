package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger/credits"
)

// UsageInRangeSQL is the rule that places a usage event in a period: the
// instant the ledger applied it (recorded_at: when its credits left the
// balance, or when it was rejected), inclusive at the start and exclusive at
// the end. It is the WHERE condition of usage_events for org $1 over
// [$2, $3). Invoices place their usage lines by this instant, because an
// invoice is a statement of the ledger: its usage must reconcile the opening
// balance with the closing one through the entries, which carry the instant
// of application. Usage reports select by the same rule, so a report over an
// invoice's period equals the invoice's usage, and the credits it reports are
// what history shows spent in the range.
//
// An event that occurred in one period and was applied in the next (sent
// late, or backdated with occurred_at) belongs to the period it was applied
// in. Its occurred_at is still stored and shown in history.
const UsageInRangeSQL = `org_id = $1 AND recorded_at >= $2 AND recorded_at < $3`

// ReportBy is what a usage report groups by.
type ReportBy string

// The groupings of a usage report.
const (
	ReportByTeam    ReportBy = "team"
	ReportByUser    ReportBy = "user"
	ReportByFeature ReportBy = "feature"
)

// MaxReportDays bounds a report's range, in calendar days of the org's zone:
// a report reads every event of the range, so its cost is bounded by the
// range times the org's rate of events.
const MaxReportDays = 400

// ReportRequest asks for an org's usage over [From, To) grouped by By. From
// and To are RFC 3339 instants (any offset) or dates (YYYY-MM-DD), which
// mean midnight at the start of that day in the org's time zone.
type ReportRequest struct {
	OrgID string
	From  string
	To    string
	By    ReportBy
}

// UsageReport is an org's usage over [From, To), one group per team, user or
// feature, as `creditd report --json` prints it. Key "" groups the usage that
// named no team, user or feature. Counts and sums of units, runs and credits
// are over applied events; rejected events are only counted.
type UsageReport struct {
	OrgID    string        `json:"org"`
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	TimeZone string        `json:"time_zone"`
	By       ReportBy      `json:"by"`
	Groups   []ReportGroup `json:"groups"`
	Totals   ReportUsage   `json:"totals"`
}

// ReportGroup is the usage of one team, user or feature.
type ReportGroup struct {
	Key string `json:"key"`
	ReportUsage
}

// ReportUsage is what a group (or the whole report) used.
type ReportUsage struct {
	Applied     int64           `json:"applied"`      // events applied
	Rejected    int64           `json:"rejected"`     // events rejected (policy, limits, cap)
	Credits     credits.Credits `json:"credits"`      // credits the applied events cost (debt included)
	Units       int64           `json:"units"`        // units of feature-priced events
	Runs        int64           `json:"runs"`         // runs counted
	OverageRuns int64           `json:"overage_runs"` // runs past the plan's included runs
}

// reportColumns maps a grouping to its column of usage_events.
var reportColumns = map[ReportBy]string{ReportByTeam: "team", ReportByUser: "user_id", ReportByFeature: "feature"}

// reportSQL is one query per grouping: a ROLLUP gives the groups and, in the
// row where grouping(...) = 1, the totals, computed by the database over the
// same rows. It reads the range through usage_events_recorded_range.
var reportSQL = func() map[ReportBy]string {
	m := make(map[ReportBy]string, len(reportColumns))
	for by, col := range reportColumns {
		m[by] = fmt.Sprintf(`
SELECT grouping(coalesce(%[1]s, '')) = 1, coalesce(coalesce(%[1]s, ''), ''), -- '' in the totals row too
       count(*) FILTER (WHERE status = 'applied'),
       count(*) FILTER (WHERE status = 'rejected'),
       coalesce(sum(amount) FILTER (WHERE status = 'applied'), 0)::bigint,
       coalesce(sum(units) FILTER (WHERE status = 'applied'), 0)::bigint,
       coalesce(sum(runs) FILTER (WHERE status = 'applied'), 0)::bigint,
       coalesce(sum(overage_runs) FILTER (WHERE status = 'applied'), 0)::bigint
FROM usage_events
WHERE %[2]s
GROUP BY ROLLUP (coalesce(%[1]s, ''))
ORDER BY 1, 2`, col, UsageInRangeSQL)
	}
	return m
}()

// Validate checks the request without the database: the org id, the
// grouping and the form of the bounds. Their order and the range's length
// depend on the org's zone and are checked by Report.
func (r ReportRequest) Validate() error {
	if err := validOrgID(r.OrgID); err != nil {
		return err
	}
	if _, ok := reportColumns[r.By]; !ok {
		if r.By == "" {
			return invalid("by", "required: team, user or feature")
		}
		return invalid("by", "must be team, user or feature, not %q", r.By)
	}
	if _, err := parseBound("from", r.From, time.UTC); err != nil {
		return err
	}
	_, err := parseBound("to", r.To, time.UTC)
	return err
}

// parseBound reads a report bound: an RFC 3339 instant, or a date meaning
// midnight at its start in zone. The instant is rounded up to the
// microsecond, the database's precision, which keeps "at or after from" and
// "before to" exact for the stored instants.
func parseBound(field, s string, zone *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalid(field, "required: an RFC 3339 time or a date YYYY-MM-DD")
	}
	if len(s) == len(time.DateOnly) {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, invalid(field, "%q is not a date YYYY-MM-DD", s)
		}
		return wallTime(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, zone).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(field, "%q is not an RFC 3339 time or a date YYYY-MM-DD", s)
	}
	if r := t.Truncate(time.Microsecond); r.Before(t) {
		t = r.Add(time.Microsecond)
	}
	return t.UTC(), nil
}

// Report sums the org's usage events applied in [From, To) (see
// UsageInRangeSQL) by team, user or feature. Dates are resolved in the
// org's time zone; the range must be non-empty and at most MaxReportDays
// days long. ErrNotFound when the org does not exist.
func (l *Ledger) Report(ctx context.Context, db DBTX, req ReportRequest) (UsageReport, error) {
	if err := req.Validate(); err != nil {
		return UsageReport{}, err
	}
	org, err := l.GetOrg(ctx, db, req.OrgID)
	if err != nil {
		return UsageReport{}, err
	}
	zone, err := loadZone(org.TimeZone)
	if err != nil {
		return UsageReport{}, fmt.Errorf("org %s: %w", org.ID, err)
	}
	from, err := parseBound("from", req.From, zone)
	if err != nil {
		return UsageReport{}, err
	}
	to, err := parseBound("to", req.To, zone)
	if err != nil {
		return UsageReport{}, err
	}
	if !to.After(from) {
		return UsageReport{}, invalid("to", "%s is not after from (%s)", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	if limit := from.In(zone).AddDate(0, 0, MaxReportDays); to.After(limit) {
		return UsageReport{}, invalid("to", "the range is longer than %d days", MaxReportDays)
	}
	rows, err := db.Query(ctx, reportSQL[req.By], org.ID, from, to)
	if err != nil {
		return UsageReport{}, fmt.Errorf("report %s: %w", org.ID, mapError(err))
	}
	rep := UsageReport{OrgID: org.ID, From: from, To: to, TimeZone: org.TimeZone, By: req.By, Groups: []ReportGroup{}}
	var (
		total bool
		g     ReportGroup
	)
	_, err = pgx.ForEachRow(rows, []any{&total, &g.Key, &g.Applied, &g.Rejected, &g.Credits, &g.Units, &g.Runs, &g.OverageRuns},
		func() error {
			if total {
				rep.Totals = g.ReportUsage
			} else {
				rep.Groups = append(rep.Groups, g)
			}
			return nil
		})
	if err != nil {
		return UsageReport{}, fmt.Errorf("report %s: %w", org.ID, mapError(err))
	}
	return rep, nil
}
