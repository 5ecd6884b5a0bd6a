package httpapi

import (
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

type paymentMethodRequest struct {
	CustomerID      string `json:"customer_id"`
	PaymentMethodID string `json:"payment_method_id"`
	Brand           string `json:"brand"`
	Last4           string `json:"last4"`
}

// putPaymentMethod saves the org's default card (admins): 200 with it.
// Saving charges nothing.
func (s *Server) putPaymentMethod(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req paymentMethodRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	p := ledger.PaymentMethod{OrgID: org, CustomerID: req.CustomerID, PaymentMethodID: req.PaymentMethodID, Brand: req.Brand, Last4: req.Last4}
	if err := p.Validate(); err != nil {
		return err
	}
	if err := ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		p, err = s.cfg.Ledger.SetPaymentMethod(r.Context(), tx, p)
		return err
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type rechargeRequest struct {
	Enabled    *bool   `json:"enabled"`
	Threshold  *string `json:"threshold"`
	Amount     *string `json:"amount"`
	Target     *string `json:"target"`
	MonthlyCap *string `json:"monthly_cap"` // a decimal amount of the org's currency
}

// getRecharge answers the org's auto-recharge settings, as `creditd
// recharge show --json` without the attempts.
func (s *Server) getRecharge(w http.ResponseWriter, r *http.Request, org string) error {
	if _, err := query(r); err != nil {
		return err
	}
	rs, err := s.cfg.Ledger.Recharge(r.Context(), s.cfg.DB, org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}

// putRecharge sets or turns off (enabled false) auto-recharge (admins).
func (s *Server) putRecharge(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req rechargeRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	if req.Enabled == nil {
		return badRequest("enabled", "required")
	}
	rs := ledger.RechargeSettings{OrgID: org, Enabled: *req.Enabled}
	if rs.Enabled {
		if rs.Threshold, err = parseAmount("threshold", req.Threshold); err != nil {
			return err
		}
		for _, f := range []struct {
			name  string
			value *string
			into  **credits.Credits
		}{{"amount", req.Amount, &rs.Amount}, {"target", req.Target, &rs.Target}} {
			if f.value == nil {
				continue
			}
			v, err := parseAmount(f.name, f.value)
			if err != nil {
				return err
			}
			*f.into = &v
		}
		if req.MonthlyCap != nil {
			o, err := s.cfg.Ledger.GetOrg(r.Context(), s.cfg.DB, org)
			if err != nil {
				return err
			}
			m, err := credits.ParseMoney(*req.MonthlyCap, o.Currency)
			if err != nil {
				return badRequest("monthly_cap", err.Error())
			}
			rs.MonthlyCap = &m
		}
	}
	if err := rs.Validate(); err != nil {
		return err
	}
	if err := ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		rs, err = s.cfg.Ledger.SetRecharge(r.Context(), tx, rs)
		return err
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rs)
	return nil
}
