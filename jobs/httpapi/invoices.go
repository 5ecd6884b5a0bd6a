package httpapi

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/creditd/creditd/jobs/render"
	"github.com/creditd/creditd/ledger"
)

// invoiceList is GET /v1/orgs/{org}/invoices, as `creditd invoices ORG --json`.
type invoiceList struct {
	OrgID    string           `json:"org"`
	Invoices []ledger.Invoice `json:"invoices"`
}

// getInvoices lists the org's invoices, newest first.
func (s *Server) getInvoices(w http.ResponseWriter, r *http.Request, org string) error {
	if _, err := query(r); err != nil {
		return err
	}
	invs, err := s.cfg.Ledger.Invoices(r.Context(), s.cfg.DB, org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, invoiceList{OrgID: org, Invoices: invs})
	return nil
}

// getInvoice answers the org's invoice of a period (YYYY-MM) as `creditd
// invoice ORG --period P --json` prints it, or with ?format=csv|html as
// render.InvoiceCSV / render.InvoiceHTML. A read only: a month not invoiced
// yet is 404 until the sweep (or the CLI) makes it.
func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request, org string) error {
	q, err := query(r, "format")
	if err != nil {
		return err
	}
	format := q["format"]
	if format != "" && format != "json" && format != "csv" && format != "html" {
		return badRequest("format", fmt.Sprintf("%q: must be json, csv or html", format))
	}
	inv, err := s.cfg.Ledger.GetInvoice(r.Context(), s.cfg.DB, org, r.PathValue("period"))
	if err != nil {
		return err
	}
	// Rendered whole before the status is sent, so a failure is still a
	// JSON error.
	var buf bytes.Buffer
	switch format {
	case "", "json":
		writeJSON(w, http.StatusOK, inv)
		return nil
	case "csv":
		if err := render.InvoiceCSV(&buf, inv); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="invoice-`+inv.OrgID+"-"+inv.Period+`.csv"`)
	default:
		if err := render.InvoiceHTML(&buf, inv); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The page loads nothing and runs nothing: its one stylesheet is inline.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = buf.WriteTo(w) // a write error means the client is gone
	return nil
}
