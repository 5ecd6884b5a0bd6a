package httpapi

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
)

// getReport answers as `creditd report ORG --json` prints: the org's usage
// over [?from, ?to) grouped by ?by (team, user or feature). from and to are
// RFC 3339 instants or dates (midnight in the org's zone). ?format=csv
// answers render.ReportCSV as text/csv instead of JSON.
func (s *Server) getReport(w http.ResponseWriter, r *http.Request, org string) error {
	q, err := query(r, "from", "to", "by", "format")
	if err != nil {
		return err
	}
	format := q["format"]
	if format != "" && format != "json" && format != "csv" {
		return badRequest("format", fmt.Sprintf("%q: must be json or csv", format))
	}
	rep, err := s.cfg.Ledger.Report(r.Context(), s.cfg.DB, ledger.ReportRequest{OrgID: org, From: q["from"], To: q["to"], By: ledger.ReportBy(q["by"])})
	if err != nil {
		return err
	}
	if format != "csv" {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	// Rendered whole before the status is sent, so a failure is still a
	// JSON error.
	var buf bytes.Buffer
	if err := render.ReportCSV(&buf, rep); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="usage-`+rep.OrgID+"-"+string(rep.By)+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = buf.WriteTo(w) // a write error means the client is gone
	return nil
}
