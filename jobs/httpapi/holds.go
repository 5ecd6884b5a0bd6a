package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// Holds are applied to the ledger in the request, not through the queue:
// the caller is about to start work and needs the answer (reserved, or
// insufficient credits) now. Each is one transaction, retried on
// serialization failures and deadlocks; the ledger's keys (hold:ID,
// capture:ID) make a repeated request return the first answer.

type reserveRequest struct {
	HoldID     string  `json:"hold_id"`
	Amount     *string `json:"amount"`
	TTLSeconds *int64  `json:"ttl_seconds"`
	Feature    string  `json:"feature"`
	Team       string  `json:"team"`
	User       string  `json:"user"`
}

type captureRequest struct {
	Amount *string `json:"amount"`
}

func parseAmount(field string, s *string) (credits.Credits, error) {
	if s == nil {
		return 0, badRequest(field, "required")
	}
	c, err := credits.Parse(*s)
	if err != nil {
		return 0, badRequest(field, fmt.Sprintf("%q: %v", *s, err))
	}
	return c, nil
}

// postHold reserves credits: 201 with the hold, 200 when the same request
// was made before (a replay: nothing changed), 409 insufficient credits.
func (s *Server) postHold(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req reserveRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	amount, err := parseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	maxTTL := int64(ledger.MaxHoldTTL / time.Second)
	if req.TTLSeconds == nil {
		return badRequest("ttl_seconds", "required")
	}
	if *req.TTLSeconds < 1 || *req.TTLSeconds > maxTTL {
		return badRequest("ttl_seconds", fmt.Sprintf("must be between 1 and %d", maxTTL))
	}
	res := ledger.Reservation{OrgID: org, HoldID: req.HoldID, Amount: amount, TTL: time.Duration(*req.TTLSeconds) * time.Second,
		Feature: req.Feature, Team: req.Team, User: req.User}
	if err := res.Validate(); err != nil {
		return err
	}
	var out ledger.HoldResult
	err = ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		out, err = s.cfg.Ledger.Reserve(r.Context(), tx, res)
		return err
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if out.Replayed {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
	return nil
}

// captureHold spends a hold: {"amount"} may be more or less than was held.
func (s *Server) captureHold(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req captureRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	amount, err := parseAmount("amount", req.Amount)
	if err != nil {
		return err
	}
	holdID := r.PathValue("id")
	var out ledger.HoldResult
	err = ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		out, err = s.cfg.Ledger.Capture(r.Context(), tx, org, holdID, amount, "")
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// releaseHold gives a hold's credits back. The body may be empty or {}.
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		if err := decodeStrict(data, &struct{}{}, ""); err != nil {
			return err
		}
	}
	holdID := r.PathValue("id")
	var out ledger.HoldResult
	err = ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		out, err = s.cfg.Ledger.Release(r.Context(), tx, org, holdID)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
