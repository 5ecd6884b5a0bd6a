package httpapi

import (
	"net/http"

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
// invoice ORG --period P --json` prints it. A read only: a month not
// invoiced yet is 404 until the sweep (or the CLI) makes it.
func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request, org string) error {
	if _, err := query(r); err != nil {
		return err
	}
	inv, err := s.cfg.Ledger.GetInvoice(r.Context(), s.cfg.DB, org, r.PathValue("period"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inv)
	return nil
}
