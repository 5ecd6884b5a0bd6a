package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/creditd/creditd/jobs"
	"github.com/creditd/creditd/ledger"
	"github.com/creditd/creditd/ledger/credits"
)

// DefaultNotificationsLimit is the page size of GET .../notifications
// without ?limit.
const DefaultNotificationsLimit = 100

// getNotifications answers as `creditd notifications ORG --json` prints:
// newest first, ?limit of them (default DefaultNotificationsLimit), older
// than the notification id ?before when given.
func (s *Server) getNotifications(w http.ResponseWriter, r *http.Request, org string) error {
	q, err := query(r, "before", "limit")
	if err != nil {
		return err
	}
	before, limit := int64(0), DefaultNotificationsLimit
	if v, ok := q["before"]; ok {
		before, err = strconv.ParseInt(v, 10, 64)
		if err != nil || before < 1 {
			return badRequest("before", fmt.Sprintf("%q is not a notification id (a positive integer)", v))
		}
	}
	if v, ok := q["limit"]; ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > ledger.MaxNotificationsPage {
			return badRequest("limit", fmt.Sprintf("%q: must be an integer from 1 to %d", v, ledger.MaxNotificationsPage))
		}
	}
	ns, err := s.cfg.Ledger.Notifications(r.Context(), s.cfg.DB, org, before, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, jobs.NotificationList(ns, limit, s.cfg.LinkBase))
	return nil
}

// getAlerts lists the org's rules, as `creditd alert list ORG --json`.
func (s *Server) getAlerts(w http.ResponseWriter, r *http.Request, org string) error {
	if _, err := query(r); err != nil {
		return err
	}
	rules, err := s.cfg.Ledger.AlertRules(r.Context(), s.cfg.DB, org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Rules []ledger.AlertRule `json:"rules"`
	}{rules})
	return nil
}

type alertRequest struct {
	Kind    ledger.AlertKind `json:"kind"`
	Amount  *string          `json:"amount"`
	Percent *string          `json:"percent"`
	Days    int              `json:"days"`
	Team    string           `json:"team"`
}

// postAlert adds a rule: 201 with it, 200 when the org has it already.
func (s *Server) postAlert(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req alertRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	rule := ledger.NewAlertRule{OrgID: org, Kind: req.Kind, Days: req.Days, Team: req.Team}
	if req.Amount != nil {
		a, err := parseAmount("amount", req.Amount)
		if err != nil {
			return err
		}
		rule.Amount = &a
	}
	if req.Percent != nil {
		p, err := credits.ParsePercent(*req.Percent)
		if err != nil {
			return badRequest("percent", fmt.Sprintf("%q: %v", *req.Percent, err))
		}
		rule.Percent = &p
	}
	if err := rule.Validate(); err != nil {
		return err
	}
	var out ledger.AlertRule
	var created bool
	err = ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		out, created, err = s.cfg.Ledger.AddAlertRule(r.Context(), tx, rule)
		return err
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
	return nil
}

// pathID reads a positive integer id from the path.
func pathID(r *http.Request, what string) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("id", fmt.Sprintf("%q is not a %s id", v, what))
	}
	return id, nil
}

// deleteAlert removes a rule: 204, or 404 when the org has no such rule.
func (s *Server) deleteAlert(w http.ResponseWriter, r *http.Request, org string) error {
	id, err := pathID(r, "rule")
	if err != nil {
		return err
	}
	if err := ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) error {
		return s.cfg.Ledger.RemoveAlertRule(r.Context(), tx, org, id)
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type webhookRequest struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// getWebhooks lists the org's receivers, without their secrets.
func (s *Server) getWebhooks(w http.ResponseWriter, r *http.Request, org string) error {
	if _, err := query(r); err != nil {
		return err
	}
	hooks, err := s.cfg.Ledger.Webhooks(r.Context(), s.cfg.DB, org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Webhooks []ledger.Webhook `json:"webhooks"`
	}{hooks})
	return nil
}

// postWebhook adds a receiver (201), checked against the delivery policy:
// https unless it is off, no private address unless allowed.
func (s *Server) postWebhook(w http.ResponseWriter, r *http.Request, org string) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := decodeStrict(data, &req, ""); err != nil {
		return err
	}
	if err := jobs.CheckWebhook(req.URL, req.Secret, s.cfg.WebhookPolicy); err != nil {
		return err
	}
	var hook ledger.Webhook
	if err := ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) (err error) {
		hook, err = s.cfg.Ledger.AddWebhook(r.Context(), tx, org, req.URL, req.Secret)
		return err
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, hook)
	return nil
}

// deleteWebhook stops new alerts to a receiver: 204, or 404.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, org string) error {
	id, err := pathID(r, "webhook")
	if err != nil {
		return err
	}
	if err := ledger.WithRetry(r.Context(), s.cfg.DB, func(tx pgx.Tx) error {
		return s.cfg.Ledger.RemoveWebhook(r.Context(), tx, org, id)
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
