package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/creditd/creditd/ledger"
)

// getBalance answers as `creditd balance ORG --json` prints: a
// ledger.Balance, now or as of ?at=TIME (RFC 3339).
func (s *Server) getBalance(w http.ResponseWriter, r *http.Request, org string) error {
	q, err := query(r, "at")
	if err != nil {
		return err
	}
	var bal ledger.Balance
	if at, ok := q["at"]; ok {
		t, perr := time.Parse(time.RFC3339Nano, at)
		if perr != nil {
			return badRequest("at", fmt.Sprintf("%q is not an RFC 3339 time", at))
		}
		bal, err = s.cfg.Ledger.BalanceAt(r.Context(), s.cfg.DB, org, t)
	} else {
		bal, err = s.cfg.Ledger.Balance(r.Context(), s.cfg.DB, org)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, bal)
	return nil
}

// getHistory answers one page of `creditd history ORG --json`: entries with
// ids after ?after (default 0), at most ?limit (default
// DefaultHistoryLimit, at most ledger.MaxHistoryPage), oldest first, and
// next_after when more may follow.
func (s *Server) getHistory(w http.ResponseWriter, r *http.Request, org string) error {
	q, err := query(r, "after", "limit")
	if err != nil {
		return err
	}
	after, limit := int64(0), DefaultHistoryLimit
	if v, ok := q["after"]; ok {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			return badRequest("after", fmt.Sprintf("%q is not an entry id (a non-negative integer)", v))
		}
	}
	if v, ok := q["limit"]; ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > ledger.MaxHistoryPage {
			return badRequest("limit", fmt.Sprintf("%q: must be an integer from 1 to %d", v, ledger.MaxHistoryPage))
		}
	}
	entries, err := s.cfg.Ledger.History(r.Context(), s.cfg.DB, org, after, limit)
	if err != nil {
		return err
	}
	page := ledger.HistoryPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []ledger.Entry{}
	}
	if len(entries) == limit {
		next := entries[len(entries)-1].ID
		page.NextAfter = &next
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
