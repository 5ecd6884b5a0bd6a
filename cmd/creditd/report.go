package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
)

// runReport prints an org's usage over [--from, --to) grouped by team, user
// or feature: a table, one JSON document (--json) or CSV (--csv).
func runReport(a *app, c *command, args []string) error {
	fs := newFlagSet(c)
	from := fs.String("from", "", "start of the range, inclusive: RFC 3339, or YYYY-MM-DD for midnight in the org's time zone (required)")
	to := fs.String("to", "", "end of the range, exclusive: RFC 3339, or YYYY-MM-DD for midnight in the org's time zone (required)")
	by := fs.String("by", "", "group by team, user or feature (required)")
	asJSON := jsonFlag(fs)
	asCSV := fs.Bool("csv", false, "print CSV: "+strings.Join(render.ReportHeader, ","))
	pos, err := a.parse(c, fs, args, "org")
	if err != nil {
		return err
	}
	if *asJSON && *asCSV {
		return usageErrorf(c, "give --json or --csv, not both")
	}
	req := ledger.ReportRequest{OrgID: pos[0], From: *from, To: *to, By: ledger.ReportBy(*by)}
	if err := req.Validate(); err != nil {
		return err
	}
	if _, err := a.openOrg(req.OrgID); err != nil {
		return err
	}
	rep, err := a.ledger.Report(a.ctx, a.pool, req)
	if err != nil {
		return err
	}
	switch {
	case *asJSON:
		return a.printJSON(rep)
	case *asCSV:
		return render.ReportCSV(a.stdout, rep)
	}
	a.printReport(rep)
	return nil
}

// printReport prints the report as a table, its range in the org's zone.
func (a *app) printReport(rep ledger.UsageReport) {
	zone, err := time.LoadLocation(rep.TimeZone)
	if err != nil {
		zone = time.UTC
	}
	tw := a.table()
	fmt.Fprintf(tw, "org\t%s\n", rep.OrgID)
	fmt.Fprintf(tw, "from\t%s\n", rep.From.In(zone).Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "to\t%s (exclusive)\n", rep.To.In(zone).Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "time zone\t%s\n", rep.TimeZone)
	tw.Flush()
	a.printf("\n")
	tw = a.table()
	fmt.Fprintf(tw, "%s\tAPPLIED\tREJECTED\tCREDITS\tUNITS\tRUNS\tOVERAGE RUNS\n", map[ledger.ReportBy]string{
		ledger.ReportByTeam: "TEAM", ledger.ReportByUser: "USER", ledger.ReportByFeature: "FEATURE"}[rep.By])
	row := func(key string, u ledger.ReportUsage) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\n", key, u.Applied, u.Rejected, u.Credits, u.Units, u.Runs, u.OverageRuns)
	}
	for _, g := range rep.Groups {
		key := g.Key
		if key == "" {
			key = render.None
		}
		row(key, g.ReportUsage)
	}
	row("TOTAL", rep.Totals)
	tw.Flush()
}
